import { waitPid } from '../../src/index.js';

// posix_spawn'd processes are reaped by the caller; in tests a poll of waitpid stands in for a
// shim's reaper.
export const pollWaitExit = (pid: number): Promise<number> =>
  new Promise((resolve) => {
    const t = setInterval(() => {
      const r = waitPid(pid, { noHang: true });
      if (r) {
        clearInterval(t);
        resolve(r.exitStatus);
      }
    }, 2);
  });
