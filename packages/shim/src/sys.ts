import koffi from 'koffi';

// The two syscalls the shim needs that Node lacks and that are not runc's business: real pipes for a
// container's stdio (libuv's 'pipe' stdio is a socketpair, and a process whose stdout is a socket
// cannot open /dev/stdout), and TIOCSWINSZ for ResizePty. Loaded on first use.

interface Libc {
  pipe2: (fds: Int32Array, flags: number) => number;
  ioctlWinsize: (fd: number, req: number, ws: Uint16Array) => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as unknown as Libc['pipe2'],
    ioctlWinsize: lib.func(
      'int ioctl(int fd, unsigned long req, _In_ uint16_t *ws)',
    ) as unknown as Libc['ioctlWinsize'],
  };
  return libc;
}

const O_CLOEXEC = 0o2000000;
const TIOCSWINSZ = 0x5414;

function errnoError(what: string): Error {
  const errno = koffi.errno();
  const e = new Error(`${what}: errno ${errno}`) as NodeJS.ErrnoException;
  e.errno = errno;
  return e;
}

/** A pipe, both ends close-on-exec: [readFd, writeFd]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  if (load().pipe2(fds, O_CLOEXEC) !== 0) throw errnoError('pipe2');
  return [fds[0] as number, fds[1] as number];
}

/** Sets a terminal's window size (struct winsize: rows, cols, xpixel, ypixel). */
export function setWinsize(fd: number, cols: number, rows: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  if (load().ioctlWinsize(fd, TIOCSWINSZ, ws) !== 0) throw errnoError('ioctl TIOCSWINSZ');
}

let dupFn: ((fd: number) => number) | undefined;

/** dup(2) with close-on-exec, for a second libuv handle on one pty master. */
export function dupCloexec(fd: number): number {
  if (!dupFn) {
    const lib = koffi.load('libc.so.6');
    const fcntl = lib.func('int fcntl(int fd, int cmd, int arg)') as unknown as (
      a: number,
      b: number,
      c: number,
    ) => number;
    const F_DUPFD_CLOEXEC = 1030;
    dupFn = (f) => fcntl(f, F_DUPFD_CLOEXEC, 0);
  }
  const r = dupFn(fd);
  if (r < 0) throw errnoError('fcntl F_DUPFD_CLOEXEC');
  return r;
}
