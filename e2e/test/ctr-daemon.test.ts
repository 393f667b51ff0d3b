import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callsLogged, type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { type Run, runCommand } from './helpers/run.js';

// Our ctr, as a user runs it (a separate node process on bin/run.js), against a real ctrd process on
// a private root, state dir and socket. Task tests run once the daemon serves Tasks; until then they
// report themselves skipped.

const execFileP = promisify(execFile);
const ctrBin = join(dirname(createRequire(import.meta.url).resolve('@ctrd/ctr/package.json')), 'bin/run.js');

let d: DaemonProcess;
let scratch: string;
let rootfs: string;
let fifoDir: string;
let tasksServed = false;

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: scratch,
    CTRD_ADDRESS: d.socket,
  };
}

function ctr(...args: string[]): Promise<Run> {
  return runCommand(process.execPath, [ctrBin, ...args], { timeout: 30_000, env: env() });
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ctr-daemon-e2e-'));
  rootfs = join(scratch, 'rootfs');
  fifoDir = join(scratch, 'fifo');
  await buildBusyboxRootfs(rootfs);
  d = await startDaemon();
  // Tasks.List may answer before Tasks.Create does: probe with a real start.
  await ctr('-n', 'e2e-probe', 'c', 'create', '--rootfs', rootfs, 'probe', 'true');
  const probe = await ctr('-n', 'e2e-probe', 't', 'start', '-d', 'probe');
  tasksServed = !/not implemented/.test(probe.stderr);
  await ctr('-n', 'e2e-probe', 'rm', '-f', 'probe');
});

afterAll(async () => {
  if (tasksServed) await ctr('-n', 'e2e-tasks', 'rm', '-f', 'echo1', 'sleeper').catch(() => undefined);
  await d?.dispose();
  await rm(scratch, { recursive: true, force: true });
  // ctr's spec puts each container in the cgroup /<namespace>/<id>; runc removes the leaf, the
  // namespace parents are ours.
  for (const c of readdirSync('/sys/fs/cgroup')) {
    for (const ns of ['e2e-probe', 'e2e-tasks']) await rmdir(join('/sys/fs/cgroup', c, ns)).catch(() => {});
  }
});

describe('ctr against ctrd', () => {
  it('version and the global flags in either order', async () => {
    const v = await ctr('version', '--json');
    expect(v.code).toBe(0);
    const json = JSON.parse(v.stdout);
    expect(json.client.version).toBe('0.1.0');
    expect(json.server.version).toMatch(/^\d+\.\d+\.\d+/);
    const before = await ctr('-a', d.socket, '-n', 'nowhere', 'containers', 'ls', '-q');
    const after = await ctr('containers', 'ls', '-q', '-a', d.socket, '-n', 'nowhere');
    expect(before).toEqual(after);
    expect(before.code).toBe(0);
  });

  it('namespaces: create with labels, label, ls, and rm only when empty', async () => {
    expect(await ctr('ns', 'create', 'team-a', 'owner=alice')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await ctr('namespaces', 'label', 'team-a', 'tier=gold', 'owner=')).stdout).toBe('tier=gold\n');
    expect((await ctr('ns', 'ls')).stdout).toMatch(/\nteam-a +tier=gold\n/);
    await ctr('-n', 'team-a', 'c', 'create', '--rootfs', rootfs, 'pinned', 'true');
    const busy = await ctr('ns', 'rm', 'team-a');
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^ctr: cannot remove namespace "team-a": .+/);
    expect((await ctr('-n', 'team-a', 'c', 'rm', 'pinned')).code).toBe(0);
    expect(await ctr('ns', 'rm', 'team-a')).toEqual({ code: 0, stdout: 'team-a\n', stderr: '' });
  });

  it('containers: create, ls (with the namespace said), info, label, the seed list, rm', async () => {
    const created = await ctr(
      '-n',
      'web',
      'c',
      'create',
      '--rootfs',
      rootfs,
      '-e',
      'A=1',
      'app',
      'sh',
      '-c',
      'echo hi',
    );
    expect(created).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await ctr('-n', 'web', 'c', 'ls')).toEqual({
      code: 0,
      stdout: 'CONTAINER    IMAGE    RUNTIME\napp          -        io.containerd.runc.v2\n',
      stderr: 'ctr: showing containers in namespace "web"; -n NAME or -A for others\n',
    });
    const elsewhere = await ctr('-n', 'empty-ns', 'c', 'ls');
    expect(elsewhere.stderr).toContain('there are some in');
    expect(elsewhere.stderr).toContain('"web" (1)');
    const all = await ctr('c', 'ls', '-A', '--json');
    expect(
      JSON.parse(all.stdout).map((c: { namespace: string; id: string }) => `${c.namespace}/${c.id}`),
    ).toContain('web/app');
    const info = JSON.parse((await ctr('-n', 'web', 'c', 'info', 'app')).stdout);
    expect(info.spec.process.args).toEqual(['sh', '-c', 'echo hi']);
    expect(info.spec.process.env).toContain('A=1');
    expect(info.spec.root.path).toBe(rootfs);
    expect((await ctr('-n', 'web', 'c', 'label', 'app', 'role=api')).stdout).toBe('role=api\n');
    const seed = await ctr('-n', 'web', 'containers');
    expect(seed.stdout.split('\n')[1]?.split(/\s+/)).toEqual(['app', rootfs, 'created', '-']);
    expect(await ctr('-n', 'web', 'c', 'rm', 'app')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await ctr('-n', 'web', 'c', 'info', 'app')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "app" in namespace "web": not found\n',
    });
  });

  it('events: a create as it happens, and --since replays the history', async () => {
    const subscribed = callsLogged(d, 'Events/Subscribe');
    const child = spawn(process.execPath, [ctrBin, '-n', 'ev', 'events', '--json'], { env: env() });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const started = new Date();
    try {
      // Subscribe is live only: wait until the daemon serves the stream.
      await expect.poll(() => callsLogged(d, 'Events/Subscribe')).toBeGreaterThan(subscribed);
      expect((await ctr('-n', 'ev', 'c', 'create', '--rootfs', rootfs, 'e1', 'true')).code).toBe(0);
      expect((await ctr('-n', 'ev', 'c', 'rm', 'e1')).code).toBe(0);
      await expect.poll(() => out.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(2);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    expect(child.exitCode).toBe(0);
    const live = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(live.map((e) => [e.type, e.id])).toEqual([
      ['containers/create', 'e1'],
      ['containers/delete', 'e1'],
    ]);
    const replay = await ctr(
      '-n',
      'ev',
      'events',
      '--since',
      new Date(started.getTime() - 1000).toISOString(),
      '--no-follow',
    );
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(
      /^TYPE +ID +PID +STATUS\ncontainers\/create +e1\ncontainers\/delete +e1\n$/,
    );
  });

  it('run --rm: output, exit status, nothing left behind', async (ctx) => {
    if (!tasksServed) ctx.skip();
    const ok = await ctr(
      '-n',
      'e2e-tasks',
      'run',
      '--rm',
      '--fifo-dir',
      fifoDir,
      '--rootfs',
      rootfs,
      'echo1',
      'sh',
      '-c',
      'echo out; echo err >&2; exit 7',
    );
    expect(ok).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    expect((await ctr('-n', 'e2e-tasks', 'c', 'ls', '-q')).stdout).toBe('');
  });

  it('run -d, tasks ls/exec/kill, logs, rm -f', async (ctx) => {
    if (!tasksServed) ctx.skip();
    const started = await ctr(
      '-n',
      'e2e-tasks',
      'run',
      '-d',
      '--rootfs',
      rootfs,
      'sleeper',
      'sh',
      '-c',
      'echo ready; sleep 300',
    );
    expect(started.code).toBe(0);
    const ls = await ctr('-n', 'e2e-tasks', 't', 'ls');
    expect(ls.stdout).toMatch(/\nsleeper +\d+ +RUNNING\n/);
    const exec = await ctr(
      '-n',
      'e2e-tasks',
      't',
      'exec',
      '--fifo-dir',
      fifoDir,
      '--exec-id',
      'x1',
      'sleeper',
      'sh',
      '-c',
      'id -u; exit 3',
    );
    expect(exec).toEqual({ code: 3, stdout: '0\n', stderr: '' });
    const logs = await ctr('-n', 'e2e-tasks', 'logs', 'sleeper');
    // The shim keeps one log per task: the exec's output is in it too.
    expect(logs).toEqual({ code: 0, stdout: 'ready\n0\n', stderr: '' });
    expect((await ctr('-n', 'e2e-tasks', 't', 'kill', '-s', 'KILL', 'sleeper')).code).toBe(0);
    expect(await ctr('-n', 'e2e-tasks', 'rm', '-f', 'sleeper')).toEqual({
      code: 0,
      stdout: 'sleeper\n',
      stderr: '',
    });
  });

  it('task events in the seed’s format, and the seed’s verbs on a real task', async (ctx) => {
    if (!tasksServed) ctx.skip();
    const subscribed = callsLogged(d, 'Events/Subscribe');
    const child = spawn(process.execPath, [ctrBin, '-n', 'e2e-tasks', 'events', 'topic~="/tasks/"'], {
      env: env(),
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      await expect.poll(() => callsLogged(d, 'Events/Subscribe')).toBeGreaterThan(subscribed);
      const res = await ctr(
        '-n',
        'e2e-tasks',
        'run',
        '--rm',
        '--null-io',
        '--rootfs',
        rootfs,
        'seedev',
        'sh',
        '-c',
        'exit 2',
      );
      expect(res.code).toBe(2);
      await expect.poll(() => out).toMatch(/\nexit +seedev/);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    expect(out).toMatch(/\nstart-container +seedev +\d+\n/);
    expect(out).toMatch(/\nexit +seedev +\d+ +2\n/);

    expect(
      (await ctr('-n', 'e2e-tasks', 'run', '-d', '--rootfs', rootfs, 'seedjob', 'sleep', '300')).code,
    ).toBe(0);
    expect((await ctr('-n', 'e2e-tasks', 't', 'pause', 'seedjob')).code).toBe(0);
    expect((await ctr('-n', 'e2e-tasks', 't', 'ls')).stdout).toMatch(/\nseedjob +\d+ +PAUSED\n/);
    expect((await ctr('-n', 'e2e-tasks', 't', 'resume', 'seedjob')).code).toBe(0);
    const ps = await ctr('-n', 'e2e-tasks', 't', 'ps', 'seedjob');
    expect(ps.stdout).toMatch(/^PID +INFO\n\d+ +-\n$/);
    const metrics = await ctr('-n', 'e2e-tasks', 't', 'metrics', 'seedjob');
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toMatch(/\npids\.current +1\n/);
    const seed = await ctr('-n', 'e2e-tasks', 'containers');
    expect(seed.stdout).toMatch(new RegExp(`\\nseedjob +${rootfs} +running +\\d+\\n`));
    expect((await ctr('-n', 'e2e-tasks', 'containers', 'kill', '-s', '9', 'seedjob')).code).toBe(0);
    await expect
      .poll(async () => (await ctr('-n', 'e2e-tasks', 't', 'ls')).stdout)
      .toMatch(/\nseedjob +\d+ +STOPPED\n/);
    expect(await ctr('-n', 'e2e-tasks', 'rm', 'seedjob')).toEqual({
      code: 0,
      stdout: 'seedjob\n',
      stderr: '',
    });
  });

  it('containers start runs an OCI bundle; --attach attaches; the bundle is its PATH', async (ctx) => {
    if (!tasksServed) ctx.skip();
    const bundle = join(scratch, 'bundle');
    await mkdir(bundle, { recursive: true });
    await execFileP('runc', ['spec'], { cwd: bundle });
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
    config.process.terminal = false;
    config.process.args = ['sh', '-c', 'echo from the bundle'];
    config.root.path = rootfs;
    config.linux.cgroupsPath = '/e2e-tasks/seedb';
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    const res = await ctr('-n', 'e2e-tasks', 'containers', 'start', '--attach', 'seedb', bundle);
    expect(res).toEqual({ code: 0, stdout: 'from the bundle\n', stderr: '' });
    // As containerd 0.x showed it: ID  PATH (the bundle)  STATUS  PID1.
    const rows = await ctr('-n', 'e2e-tasks', 'containers');
    expect(rows.stdout).toMatch(new RegExp(`\\nseedb +${bundle} +created +-\\n`));
    expect(await ctr('-n', 'e2e-tasks', 'rm', 'seedb')).toEqual({ code: 0, stdout: 'seedb\n', stderr: '' });
  });

  it('run -t: the process gets a terminal, ctr exits with its status', async (ctx) => {
    if (!tasksServed) ctx.skip();
    // util-linux `script` gives ctr a pty of its own, as a user's terminal would.
    const command = [process.execPath, ctrBin, '-n', 'e2e-tasks', 'run', '--rm', '-t', '--fifo-dir', fifoDir]
      .concat(['--rootfs', rootfs, 'tty1', 'sh', '-c', "'tty; exit 4'"])
      .join(' ');
    let code = 0;
    let stdout = '';
    try {
      ({ stdout } = await execFileP('script', ['-eqc', command, '/dev/null'], {
        env: env(),
        timeout: 30_000,
      }));
    } catch (e) {
      const err = e as { code?: number; stdout?: string };
      code = err.code ?? -1;
      stdout = err.stdout ?? '';
    }
    expect(code).toBe(4);
    // Each pty on the way (the container's, then ctr's) turns \n into \r\n.
    expect(stdout).toMatch(/^\/dev\/pts\/\d+\r*\n$/);
    expect((await ctr('-n', 'e2e-tasks', 'c', 'ls', '-q')).stdout).toBe('');
  });

  it('logs -f follows the output until the task stops', async (ctx) => {
    if (!tasksServed) ctx.skip();
    const script = 'for i in 1 2 3; do echo line $i; sleep 1; done; echo oops >&2';
    expect(
      (await ctr('-n', 'e2e-tasks', 'run', '-d', '--rootfs', rootfs, 'talker', 'sh', '-c', script)).code,
    ).toBe(0);
    const followed = await ctr('-n', 'e2e-tasks', 'logs', '-f', 'talker');
    expect(followed).toEqual({ code: 0, stdout: 'line 1\nline 2\nline 3\n', stderr: 'oops\n' });
    expect((await ctr('-n', 'e2e-tasks', 'logs', '--tail', '1', '--timestamps', 'talker')).stderr).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z oops\n$/,
    );
    expect(await ctr('-n', 'e2e-tasks', 'rm', 'talker')).toEqual({ code: 0, stdout: 'talker\n', stderr: '' });
  });
});
