import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWaitStatus, peekExitedChild, Runc, setChildSubreaper, waitPid } from '../src/index.js';
import { alive, makeSandbox, RUNC, type Sandbox } from './helpers/rootfs.js';

// The exit status of a detached container's init, learnt the way a shim does: as the subreaper the
// init is reparented to when runc exits. Own file: subreaper status sticks to the test process.

const canRun = process.getuid?.() === 0 && existsSync(RUNC) && existsSync('/bin/busybox');

async function reap(pid: number, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = waitPid(pid, { noHang: true });
    if (r) return r;
    if (Date.now() > end) throw new Error(`pid ${pid} did not exit`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('wait status decoding', () => {
  it('exit codes and signals (128+signal, like containerd)', () => {
    expect(decodeWaitStatus(10, 3 << 8)).toEqual({ pid: 10, exitStatus: 3, signaled: false });
    expect(decodeWaitStatus(10, 9)).toEqual({ pid: 10, exitStatus: 137, signaled: true, signal: 9 });
    expect(decodeWaitStatus(10, 15 | 0x80)).toEqual({ pid: 10, exitStatus: 143, signaled: true, signal: 15 });
  });

  it('waitPid refuses bad pids and says when a pid is not our child', () => {
    expect(() => waitPid(0)).toThrow(RangeError);
    expect(() => waitPid(1, { noHang: true })).toThrow(/not a child of this process/);
  });

  it('peekExitedChild names an exited child without reaping it', async () => {
    const child = spawn('/bin/sh', ['-c', 'exit 6']);
    const pid = child.pid as number;
    // libuv reaps its own children on SIGCHLD, so look before the loop runs again.
    const until = Date.now() + 30_000;
    let seen: number | undefined;
    while (seen === undefined && Date.now() < until) {
      seen = peekExitedChild();
      if (seen === undefined) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
    expect(seen).toBe(pid);
    // Still there to be reaped: asking again names it again, and Node still gets its status.
    expect(peekExitedChild()).toBe(pid);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(6);
    expect(peekExitedChild()).toBeUndefined();
  });

  it('waiting on one pid leaves Node its own children', async () => {
    const child = spawn('/bin/sh', ['-c', 'exit 4']);
    const pid = child.pid as number;
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Once it has exited, and before libuv (which reaps on SIGCHLD, when the loop runs) has its
    // status, a wait for some other pid (never -1) must not take that status from libuv.
    const until = Date.now() + 30_000;
    while (peekExitedChild() !== pid && Date.now() < until)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    expect(peekExitedChild()).toBe(pid);
    expect(() => waitPid(1, { noHang: true })).toThrow(/not a child/);
    expect(await exit).toBe(4);
  });
});

describe.runIf(canRun)('as a subreaper', () => {
  let sb: Sandbox;
  let runc: Runc;
  const pids: number[] = [];

  beforeAll(async () => {
    setChildSubreaper();
    sb = await makeSandbox('runc-client-reaper-');
    runc = new Runc({ binary: RUNC, root: sb.root });
  });
  afterAll(async () => {
    expect(await sb.cleanup()).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
  });

  it('collects the exit code of a detached container init', async () => {
    const bundle = await sb.bundle('exit7', { args: ['sh', '-c', 'exit 7'] });
    const { pid } = await runc.create('exit7', bundle);
    pids.push(pid);
    expect(waitPid(pid, { noHang: true })).toBeUndefined();
    await runc.start('exit7');
    expect(await reap(pid)).toEqual({ pid, exitStatus: 7, signaled: false });
    await runc.delete('exit7');
  });

  it('a signal ends it with 128+signal', async () => {
    const bundle = await sb.bundle('killed', { args: ['sleep', '1000'] });
    const { pid } = await runc.run('killed', bundle, { detach: true });
    pids.push(pid);
    await runc.kill('killed', 'SIGKILL');
    expect(await reap(pid)).toEqual({ pid, exitStatus: 137, signaled: true, signal: 9 });
    await runc.delete('killed');
  });

  it('an exec process detached is ours to reap too', async () => {
    const bundle = await sb.bundle('host', { args: ['sleep', '1000'] });
    const init = await runc.run('host', bundle, { detach: true });
    pids.push(init.pid);
    const ex = await runc.exec('host', { args: ['sh', '-c', 'exit 9'], detach: true });
    pids.push(ex.pid);
    expect(await reap(ex.pid)).toMatchObject({ pid: ex.pid, exitStatus: 9 });
    await runc.kill('host', 'KILL');
    expect((await reap(init.pid)).exitStatus).toBe(137);
    await runc.delete('host');
  });
});
