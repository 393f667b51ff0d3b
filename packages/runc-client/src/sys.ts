import { ECHILD, EINTR, loadLibc, sysError } from './libc.js';

// Process helpers for callers that run containers detached: the container's init is not a child of
// the caller (runc forks it and exits), so its exit status is only visible to a subreaper.

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
const P_ALL = 0;
// siginfo_t is 128 bytes; for SIGCHLD, si_pid follows si_signo, si_errno, si_code and the union's
// 8-byte alignment on 64-bit Linux.
const SIGINFO_SIZE = 128;
const SI_PID_OFFSET = 16;
const TIOCSWINSZ = 0x5414;

/**
 * Makes this process the subreaper of its descendants (prctl PR_SET_CHILD_SUBREAPER): a container
 * started with `create`/`run --detach`/`exec --detach` is reparented to it when runc exits, and
 * `waitPid(pid)` then collects its exit status.
 */
export function setChildSubreaper(): void {
  if (loadLibc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) !== 0) {
    throw sysError('prctl', 'set child subreaper');
  }
}

export interface WaitResult {
  pid: number;
  /** The exit code, or 128+signal when a signal ended the process (containerd's convention). */
  exitStatus: number;
  signaled: boolean;
  /** The signal number when signaled. */
  signal?: number;
}

export interface WaitPidOptions {
  /** Return undefined at once when the process is still running (WNOHANG). */
  noHang?: boolean;
}

/**
 * waitpid(2) for one pid. Never call it with -1: libuv reaps the children Node spawned by pid and
 * would lose their status. Without noHang it blocks the thread until the process exits, so use it
 * after SIGCHLD or with noHang. Throws an ECHILD error when pid is not a child (or already reaped).
 */
export function waitPid(pid: number, opts: WaitPidOptions = {}): WaitResult | undefined {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`waitPid: pid must be a positive integer, got ${pid}`);
  }
  const status = new Int32Array(1);
  for (;;) {
    const r = loadLibc().waitpid(pid, status, opts.noHang ? WNOHANG : 0);
    if (r === 0) return undefined;
    if (r > 0) return decodeWaitStatus(r, status[0] as number);
    const e = sysError('waitpid', `wait for pid ${pid}`);
    if (e.errno === EINTR) continue;
    if (e.errno === ECHILD)
      e.message = `wait for pid ${pid}: not a child of this process (or already reaped)`;
    throw e;
  }
}

/**
 * The pid of a child that has exited and is waiting to be reaped, or undefined when there is none:
 * waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT), which leaves the child as it is. A subreaper learns
 * which child a SIGCHLD was for without asking each child in turn; it then reaps that pid (waitPid)
 * only if the pid is its own to reap (not one Node spawned, which libuv reaps).
 */
export function peekExitedChild(): number | undefined {
  const info = Buffer.alloc(SIGINFO_SIZE);
  for (;;) {
    const r = loadLibc().waitid(P_ALL, 0, info, WEXITED | WNOHANG | WNOWAIT);
    if (r === 0) {
      const pid = info.readInt32LE(SI_PID_OFFSET);
      return pid > 0 ? pid : undefined;
    }
    const e = sysError('waitid', 'look for an exited child');
    if (e.errno === EINTR) continue;
    if (e.errno === ECHILD) return undefined;
    throw e;
  }
}

/** Decodes a raw wait(2) status word. */
export function decodeWaitStatus(pid: number, raw: number): WaitResult {
  const termsig = raw & 0x7f;
  if (termsig === 0) return { pid, exitStatus: (raw >> 8) & 0xff, signaled: false };
  return { pid, exitStatus: 128 + termsig, signaled: true, signal: termsig };
}

/** Sets a terminal's window size (TIOCSWINSZ) on a pty master fd. */
export function setWinsize(fd: number, size: { cols: number; rows: number }): void {
  const ws = new Uint16Array([size.rows, size.cols, 0, 0]);
  if (loadLibc().ioctlWinsize(fd, TIOCSWINSZ, ws) !== 0) throw sysError('ioctl', `resize terminal fd ${fd}`);
}

/** close(2) for an fd that no Node handle owns. */
export function closeFd(fd: number): void {
  loadLibc().close(fd);
}
