import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { type Run, runCommand } from './helpers/run.js';
import { busyboxRootfs, ctrOk, sweep } from './tasks-support.js';

// `ctr logs` over the API: containers started by the stock ctr 1.6 (which wires the task's stdio
// to fifos of its own) on a private ctrd, read by our ctr through --address alone: no state dir,
// no shared files, nothing but the socket.

const ctrBin = join(dirname(createRequire(import.meta.url).resolve('@ctrd/ctr/package.json')), 'bin/run.js');
const ns = `lg${randomBytes(4).toString('hex')}`;

let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;

/** Our ctr with only --address: no CTRD_* variables, HOME in the scratch dir. */
function ours(...args: string[]): Promise<Run> {
  return runCommand(process.execPath, [ctrBin, '--address', d.socket, '-n', ns, ...args], {
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
  });
}
const stock = (...args: string[]) => ctrOk(d, ['-n', ns, ...args]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctr-logs-e2e-'));
  rootfs = await busyboxRootfs(join(dir, 'rootfs'));
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd') });
}, 60_000);

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [ns]);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('ctr logs against a private ctrd', { timeout: 60_000 }, () => {
  it('reads the output of a task the stock ctr started, by --address alone', async () => {
    const script = 'echo out 1; echo err 1 >&2; echo out 2; sleep 300';
    await stock('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, 'c1', '/bin/sh', '-c', script);
    let res: Run = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 50; i++) {
      res = await ours('logs', 'c1');
      if (res.stdout === 'out 1\nout 2\n' && res.stderr === 'err 1\n') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res).toEqual({ code: 0, stdout: 'out 1\nout 2\n', stderr: 'err 1\n' });
    expect(await ours('logs', '--tail', '1', '--stream', 'stdout', 'c1')).toEqual({
      code: 0,
      stdout: 'out 2\n',
      stderr: '',
    });
    const json = await ours('logs', '--json', '--stream', 'stderr', 'c1');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ stream: 'stderr', log: 'err 1\n' });
    expect(JSON.parse(json.stdout).time).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    // Another namespace has no such container.
    const elsewhere = await runCommand(process.execPath, [ctrBin, '--address', d.socket, 'logs', 'c1'], {
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    });
    expect(elsewhere).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "c1" in namespace "default": not found\n',
    });
    await stock('t', 'kill', '-s', 'KILL', 'c1');
  });

  it('logs -f follows until the task has exited, and the output goes with the task', async () => {
    const script = 'echo line 1; sleep 1; echo line 2; sleep 1; echo bye >&2';
    await stock('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, 'c2', '/bin/sh', '-c', script);
    const started = Date.now();
    const followed = await ours('logs', '-f', 'c2');
    expect(followed).toEqual({ code: 0, stdout: 'line 1\nline 2\n', stderr: 'bye\n' });
    // It waited for the task to end rather than stopping at what was there.
    expect(Date.now() - started).toBeGreaterThan(1000);
    // A task that has exited keeps its output until it is deleted.
    expect((await ours('logs', '--stream', 'stderr', 'c2')).stderr).toBe('bye\n');
    await stock('t', 'rm', 'c2');
    expect(await ours('logs', 'c2')).toEqual({
      code: 1,
      stdout: '',
      stderr: `ctr: task of container "c2" in namespace "${ns}" (a task's output is kept until the task is deleted): not found\n`,
    });
    await stock('c', 'rm', 'c2');
  });
});
