import koffi from 'koffi';
import type { WaitPid } from '../../src/reaper.js';

// Test-only stand-ins for @ctrd/runc-client's setChildSubreaper/waitPid, so the reaper can be tested
// against real processes on its own.

const lib = koffi.load('libc.so.6');
const prctl = lib.func(
  'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
);
const waitpid = lib.func('int waitpid(int pid, _Out_ int *status, int options)');

export function becomeSubreaper(): void {
  if (prctl(36, 1, 0, 0, 0) !== 0) throw new Error(`prctl(PR_SET_CHILD_SUBREAPER): errno ${koffi.errno()}`);
}

export const testWaitPid: WaitPid = (pid) => {
  const status = new Int32Array(1);
  const r = waitpid(pid, status, 1) as number;
  if (r === 0) return 'running';
  if (r < 0) return 'not-child';
  const s = status[0] as number;
  const sig = s & 0x7f;
  return { exitStatus: sig === 0 ? (s >> 8) & 0xff : 128 + sig };
};
