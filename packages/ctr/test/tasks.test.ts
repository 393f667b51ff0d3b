import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectRouter } from '@connectrpc/connect';
import { OCI_SPEC_URL, unpackJson } from '@ctrd/api-proto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { OciSpec } from '../src/oci-spec.js';
import { FakeDaemon } from './fake-daemon.js';
import { FakeTasks } from './fake-tasks.js';
import { runCtr } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-tasks-'));
const rootfs = join(dir, 'rootfs');
const fifoDir = join(dir, 'fifo');
mkdirSync(rootfs);
mkdirSync(fifoDir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let d: FakeDaemon;
let t: FakeTasks;
let routes: (router: ConnectRouter) => void;

beforeEach(() => {
  d = new FakeDaemon();
  t = new FakeTasks();
  t.argsOf = (ns, id) => {
    const c = d.containers.get(ns)?.get(id);
    return c?.spec ? unpackJson<OciSpec>(c.spec, OCI_SPEC_URL).process.args : [];
  };
  routes = (router) => {
    d.routes(router);
    t.routes(router);
  };
});

const run = (args: string[], stdin?: string) =>
  runCtr(['run', '--fifo-dir', fifoDir, ...args], { routes, stdin });

describe('ctr run', () => {
  it('--rm runs the command through fifos, waits before start, cleans up everything', async () => {
    const res = await run(['--rm', '--rootfs', rootfs, 'web', 'echo', 'hi']);
    expect(res).toEqual({ code: 0, stdout: 'ran echo hi\n', stderr: '' });
    const order = [...d.calls, ...t.calls].filter((c) => !c.startsWith('Tasks.closeIO'));
    // After the task is deleted, --rm removes the container as `ctr c rm` does (Tasks.get finds no task).
    expect(t.calls.filter((c) => !c.startsWith('Tasks.closeIO'))).toEqual([
      'Tasks.create default',
      'Tasks.wait default',
      'Tasks.start default',
      'Tasks.delete default',
      'Tasks.get default',
    ]);
    expect(order).toContain('Containers.delete default');
    expect(d.containers.get('default')?.has('web')).toBe(false);
    expect(readdirSync(fifoDir)).toEqual([]);
  });

  it('exits with the container’s status and passes stderr and stdin through', async () => {
    t.program = async (io) => {
      const input = await io.stdin;
      io.stdout?.write(input.toUpperCase());
      io.stderr?.write('oops\n');
      return 3;
    };
    const res = await run(['--rootfs', rootfs, 'job', 'cat'], 'hello\n');
    expect(res).toEqual({ code: 3, stdout: 'HELLO\n', stderr: 'oops\n' });
    expect(t.calls).toContain('Tasks.closeIO default');
    // Without --rm the container stays; its task is deleted.
    expect(d.containers.get('default')?.has('job')).toBe(true);
    expect(t.procs.size).toBe(0);
  });

  it('-d starts without fifos and returns; `--` generates an id', async () => {
    t.program = (io) => io.killed.then((sig) => 128 + sig);
    const res = await run(['-d', '--rootfs', rootfs, '--', 'sleep', '100']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^[0-9a-f]{12}\n$/);
    const id = res.stdout.trim();
    const proc = t.procs.get(`default/${id}/`);
    expect(proc?.paths).toEqual({ stdin: '', stdout: '', stderr: '', terminal: false });
    expect(t.calls).not.toContain('Tasks.wait default');
    const ls = await runCtr(['t', 'ls'], { routes });
    expect(ls.stdout).toBe(`TASK            PID     STATUS\n${id}    ${proc?.pid}    RUNNING\n`);
  });

  it('-t asks for a terminal: stdin and stdout fifos only, and the pty sized like ours', async () => {
    t.program = async (io) => {
      io.stdout?.write('# ');
      return 0;
    };
    const res = await runCtr(['run', '--fifo-dir', fifoDir, '--rm', '-t', '--rootfs', rootfs, 'sh1', 'sh'], {
      routes,
      size: { columns: 120, rows: 40 },
    });
    expect(res).toEqual({ code: 0, stdout: '# ', stderr: '' });
    expect(t.calls).toContain('Tasks.resizePty 120x40 default');
    expect(t.created[0]).toMatchObject({ terminal: true, stderr: '' });
    expect(t.created[0]?.stdin).toMatch(/sh1-stdin$/);
    expect(t.created[0]?.stdout).toMatch(/sh1-stdout$/);
  });

  it('a failed start deletes the task (and with --rm the container) and reports the runtime error', async () => {
    t.startError = 'runc start: exec: "nope": executable file not found in $PATH';
    const kept = await run(['--rootfs', rootfs, 'bad', 'nope']);
    expect(kept).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: runc start: exec: "nope": executable file not found in $PATH: unknown\n',
    });
    expect(t.procs.size).toBe(0);
    expect(d.containers.get('default')?.has('bad')).toBe(true);
    expect((await run(['--rm', '--rootfs', rootfs, 'bad2', 'nope'])).code).toBe(1);
    expect(d.containers.get('default')?.has('bad2')).toBe(false);
    expect(readdirSync(fifoDir)).toEqual([]);
  });

  it('refuses --rm with -d and a missing command', async () => {
    expect((await run(['--rm', '-d', '--rootfs', rootfs, 'x', 'true'])).code).toBe(2);
    const none = await run(['--rootfs', rootfs, 'x']);
    expect(none).toEqual({
      code: 2,
      stdout: '',
      stderr: 'ctr: give the command to run after the container id\n',
    });
  });
});

describe('ctr tasks', () => {
  async function startDetached(id: string) {
    t.program = (io) => io.killed.then((sig) => 128 + sig);
    const res = await run(['-d', '--rootfs', rootfs, id, 'sleep', '100']);
    expect(res.code).toBe(0);
  }

  it('start attaches to a created container and exits with its status', async () => {
    await runCtr(['c', 'create', '--rootfs', rootfs, 'app', 'false'], { routes });
    t.program = async () => 1;
    const res = await runCtr(['tasks', 'start', '--fifo-dir', fifoDir, 'app'], { routes });
    expect(res).toEqual({ code: 1, stdout: '', stderr: '' });
    expect(t.calls.filter((c) => c !== 'Tasks.closeIO default')).toEqual([
      'Tasks.create default',
      'Tasks.wait default',
      'Tasks.start default',
      'Tasks.delete default',
    ]);
  });

  it('kill sends SIGTERM by default, the stop-signal label, or -s', async () => {
    await startDetached('web');
    await runCtr(['t', 'kill', '-s', 'HUP', 'web'], { routes });
    const web = d.containers.get('default')?.get('web');
    if (web) web.labels['io.containerd.image.config.stop-signal'] = 'SIGQUIT';
    await runCtr(['t', 'kill', 'web'], { routes });
    expect(t.calls.filter((c) => c.startsWith('Tasks.kill'))).toEqual([
      'Tasks.kill 1 default',
      'Tasks.kill 3 default',
    ]);
    const bad = await runCtr(['t', 'kill', '-s', 'SIGNOPE', 'web'], { routes });
    expect(bad).toEqual({
      code: 2,
      stdout: '',
      stderr: 'ctr: signal "SIGNOPE": expected a name such as SIGTERM or KILL, or a number\n',
    });
  });

  it('rm refuses a running task unless -f, which kills and waits', async () => {
    await startDetached('web');
    const refused = await runCtr(['t', 'rm', 'web'], { routes });
    expect(refused).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: task "web" is running: stop it first (ctr tasks kill web) or use --force\n',
    });
    const forced = await runCtr(['t', 'rm', '-f', 'web'], { routes });
    expect(forced).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(t.calls).toContain('Tasks.kill 9 all default');
    expect(t.procs.size).toBe(0);
  });

  it('pause, resume, ps and metrics', async () => {
    await startDetached('web');
    await runCtr(['t', 'pause', 'web'], { routes });
    expect((await runCtr(['t', 'ls', '-q'], { routes })).stdout).toBe('web\n');
    const json = JSON.parse((await runCtr(['t', 'ls', '--json'], { routes })).stdout);
    expect(json).toEqual([{ namespace: 'default', id: 'web', pid: expect.any(Number), status: 'paused' }]);
    await runCtr(['t', 'resume', 'web'], { routes });
    const ps = await runCtr(['t', 'ps', 'web'], { routes });
    expect(ps.stdout).toMatch(/^PID {5}INFO\n\d+ {4}-\n$/);
    const metrics = await runCtr(['t', 'metrics', 'web'], { routes });
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toContain(
      'ID     TIMESTAMP\nweb    2026-11-23T08:00:00.000Z\n\nMETRIC                VALUE\npids.current          3\n',
    );
    expect(metrics.stdout).toContain('memory.usage_limit    1048576\n');
    const mj = JSON.parse((await runCtr(['t', 'metrics', '--json', 'web'], { routes })).stdout);
    expect(mj.type).toBe('io.containerd.cgroups.v2.Metrics');
    expect(mj.data.memory.usage).toBe('4096');
  });

  it('exec runs a process with a generated exec id and exits with its status', async () => {
    await startDetached('web');
    t.program = async (io) => {
      io.stdout?.write(`exec ${io.args.join(' ')}\n`);
      return io.args[0] === 'false' ? 1 : 0;
    };
    const res = await runCtr(['t', 'exec', '--fifo-dir', fifoDir, 'web', 'sh', '-c', 'echo x'], { routes });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('exec sh -c echo x\n');
    expect(res.stderr).toMatch(/^ctr: exec id exec-[0-9a-f]{8}\n$/);
    const program = t.program;
    t.program = async (io) => {
      io.stdout?.write((await io.stdin).toUpperCase());
      return 0;
    };
    const piped = await runCtr(['t', 'exec', '--exec-id', 'cat1', '--fifo-dir', fifoDir, 'web', 'cat'], {
      routes,
      stdin: 'abc\n',
    });
    expect(piped).toEqual({ code: 0, stdout: 'ABC\n', stderr: '' });
    t.program = program;
    const failed = await runCtr(['t', 'exec', '--exec-id', 'e1', '--fifo-dir', fifoDir, 'web', 'false'], {
      routes,
    });
    expect(failed).toEqual({ code: 1, stdout: 'exec false\n', stderr: '' });
    expect(t.calls).toContain('Tasks.deleteProcess e1 default');
  });
});

describe('containerd 0.x’s verbs', () => {
  it('`ctr containers` lists ID PATH STATUS PID1', async () => {
    t.program = (io) => io.killed.then(() => 0);
    await run(['-d', '--rootfs', rootfs, 'redis', 'redis-server']);
    await runCtr(['c', 'create', '--rootfs', rootfs, 'idle', 'true'], { routes });
    const res = await runCtr(['containers'], { routes });
    const pid = t.procs.get('default/redis/')?.pid;
    expect(res.code).toBe(0);
    const lines = res.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    expect(lines).toEqual([
      ['ID', 'PATH', 'STATUS', 'PID1'],
      ['idle', rootfs, 'created', '-'],
      ['redis', rootfs, 'running', String(pid)],
    ]);
  });

  it('containers start runs an OCI bundle; exec --id and kill -p address processes', async () => {
    const bundle = join(dir, 'bundle');
    mkdirSync(join(bundle, 'rootfs'), { recursive: true });
    writeFileSync(
      join(bundle, 'config.json'),
      JSON.stringify({
        ociVersion: '1.0.2',
        process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 }, env: [] },
        root: { path: 'rootfs' },
      }),
    );
    t.program = (io) => io.killed.then(() => 0);
    const started = await runCtr(['containers', 'start', 'seed', bundle], { routes });
    expect(started).toEqual({ code: 0, stdout: '', stderr: '' });
    // PATH is the bundle, as containerd 0.x's `ctr containers` showed it.
    const rows = await runCtr(['containers'], { routes });
    expect(rows.stdout).toMatch(new RegExp(`^ID +PATH +STATUS +PID1\\nseed +${bundle} +running +\\d+\\n$`));
    expect(JSON.parse((await runCtr(['containers', '--json'], { routes })).stdout)[0].path).toBe(bundle);
    // -a is --address here as everywhere: the bundle directory is taken for the socket.
    const attach = await runCtr(['containers', 'start', '-a', 'other', bundle], { routes });
    expect(attach.code).toBe(2);
    expect(attach.stderr).toMatch(/^ctr: missing 1 required arg:\nbundle/i);
    const spec = unpackJson<OciSpec>(d.containers.get('default')?.get('seed')?.spec, OCI_SPEC_URL);
    expect(spec.root.path).toBe(join(bundle, 'rootfs'));
    const exec = await runCtr(['containers', 'exec', '--id', 'seed', 'top'], { routes });
    expect(exec.code).toBe(0);
    const execId = exec.stdout.trim();
    expect(execId).toMatch(/^exec-[0-9a-f]{8}$/);
    const pid = t.procs.get(`default/seed/${execId}`)?.pid;
    await runCtr(['containers', 'kill', '-p', String(pid), '-s', '9', 'seed'], { routes });
    expect(t.calls).toContain(`Tasks.kill 9 ${execId} default`);
  });
});
