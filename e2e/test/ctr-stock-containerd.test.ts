import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StockContainerd, startStockContainerd } from './helpers/containerd.js';
import { type Run, runCommand } from './helpers/run.js';

// Our ctr driving a real, stock containerd 1.6 (Debian's) on a private socket, root and state dir:
// the CLI speaks containerd's wire API, not just ctrd's. No tasks are run here: the stock shim would
// use /run/containerd, which tests must not touch.

const STOCK_CTR = '/usr/bin/ctr';
const execFileP = promisify(execFile);
const ctrBin = join(dirname(createRequire(import.meta.url).resolve('@ctrd/ctr/package.json')), 'bin/run.js');

let dir: string;
let socket: string;
let daemon: StockContainerd | undefined;

function ctr(...args: string[]): Promise<Run> {
  return runCommand(process.execPath, [ctrBin, '-a', socket, ...args], {
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctr-stock-containerd-'));
  await mkdir(join(dir, 'rootfs', 'etc'), { recursive: true });
  daemon = await startStockContainerd(dir, 60_000);
  socket = daemon.socket;
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('ctr against a stock containerd 1.6', () => {
  it('version names the server', async () => {
    const res = await ctr('version');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Server:\n {2}Version: {2}1\.6\.\d+/);
    const json = JSON.parse((await ctr('version', '--json')).stdout);
    expect(json.server.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('namespaces create, label, ls and rm', async () => {
    expect(await ctr('ns', 'create', 'e2e', 'team=a')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await ctr('namespaces', 'label', 'e2e', 'tier=gold')).stdout).toBe('team=a,tier=gold\n');
    const ls = await ctr('ns', 'ls');
    expect(ls.stdout).toContain('e2e     team=a,tier=gold\n');
    expect(await ctr('ns', 'rm', 'e2e')).toEqual({ code: 0, stdout: 'e2e\n', stderr: '' });
    expect((await ctr('ns', 'ls', '-q')).stdout).not.toContain('e2e');
  });

  it('containers create, ls, info, label, rm; the stock ctr reads what we wrote', async () => {
    const rootfs = join(dir, 'rootfs');
    const created = await ctr(
      '-n',
      'web',
      'containers',
      'create',
      '--rootfs',
      rootfs,
      '--env',
      'A=1',
      'app',
      'sh',
      '-c',
      'echo hi',
    );
    expect(created).toEqual({ code: 0, stdout: '', stderr: '' });
    const ls = await ctr('c', 'ls', '-n', 'web');
    expect(ls).toEqual({
      code: 0,
      stdout: 'CONTAINER    IMAGE    RUNTIME\napp          -        io.containerd.runc.v2\n',
      stderr: 'ctr: showing containers in namespace "web"; -n NAME or -A for others\n',
    });
    const empty = await ctr('c', 'ls');
    expect(empty.stderr).toBe(
      'ctr: no containers in namespace "default"; there are some in "web" (1): use -n NAME or -A\n',
    );

    const stock = await execFileP(STOCK_CTR, ['-a', socket, '-n', 'web', 'c', 'info', 'app']);
    const info = JSON.parse(stock.stdout);
    expect(info.Runtime.Name).toBe('io.containerd.runc.v2');
    expect(info.Spec.root.path).toBe(rootfs);
    expect(info.Spec.process.args).toEqual(['sh', '-c', 'echo hi']);
    expect(info.Spec.process.env).toContain('A=1');
    expect(info.Spec.linux.cgroupsPath).toBe('/web/app');

    const ours = JSON.parse((await ctr('-n', 'web', 'c', 'info', 'app')).stdout);
    expect(ours.spec).toEqual(info.Spec);
    expect((await ctr('-n', 'web', 'c', 'label', 'app', 'role=api')).stdout).toBe('role=api\n');
    expect(await ctr('-n', 'web', 'c', 'rm', 'app')).toEqual({ code: 0, stdout: '', stderr: '' });
    const gone = await ctr('-n', 'web', 'c', 'info', 'app');
    expect(gone).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "app" in namespace "web": not found\n',
    });
  });

  it('events shows a create and a delete as they happen', async () => {
    // Subscribe is live only, and containerd does not say when a stream is open: a probe container
    // is relabelled until the subscriber prints that, then the events happen.
    const PROBE = 'evprobe';
    expect((await ctr('c', 'create', '--rootfs', join(dir, 'rootfs'), PROBE, 'true')).code).toBe(0);
    const child = spawn(process.execPath, [ctrBin, '-a', socket, 'events', '--json'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const parsed = () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; id: string; namespace: string; event: unknown });
    const ours = () => parsed().filter((e) => e.id !== PROBE);
    try {
      let n = 0;
      await expect
        .poll(async () => {
          await ctr('c', 'label', PROBE, `n=${n++}`);
          return parsed().some((e) => e.id === PROBE);
        })
        .toBe(true);
      expect((await ctr('c', 'create', '--rootfs', join(dir, 'rootfs'), 'ev', 'true')).code).toBe(0);
      expect((await ctr('c', 'rm', 'ev')).code).toBe(0);
      await expect.poll(() => ours().length).toBeGreaterThanOrEqual(2);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
      await ctr('c', 'rm', PROBE);
    }
    const events = ours();
    expect(events.map((e) => [e.type, e.id, e.namespace])).toEqual([
      ['containers/create', 'ev', 'default'],
      ['containers/delete', 'ev', 'default'],
    ]);
    expect(events[0]?.event).toEqual({ id: 'ev', runtime: { name: 'io.containerd.runc.v2' } });
    expect(child.exitCode).toBe(0);
  });

  it('explains that --since needs ctrd', async () => {
    const res = await ctr('events', '--since', '1m');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('ctr: --since: this daemon keeps no event history');
  });

  it('logs says that a stock containerd keeps no output', async () => {
    const res = await ctr('logs', 'anything');
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `ctr: the daemon at ${socket} keeps no container output (it serves no ctrd.services.logs.v1.Logs): ` +
        'a stock containerd keeps none; read the output when the task runs (ctr run, ctr tasks start)\n',
    });
  });
});
