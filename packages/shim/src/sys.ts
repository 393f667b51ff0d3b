import koffi from 'koffi';

// Two syscalls the shim's stdio needs that Node lacks: real pipes for a container's stdio (libuv's
// 'pipe' stdio is a socketpair, and a process whose stdout is a socket cannot open /dev/stdout), and
// a close-on-exec dup for a second libuv handle on a pty master. Loaded on first use.

interface Libc {
  pipe2: (fds: Int32Array, flags: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as unknown as Libc['pipe2'],
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)') as unknown as Libc['fcntl'],
  };
  return libc;
}

const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;

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

/** dup(2) with close-on-exec. */
export function dupCloexec(fd: number): number {
  const r = load().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r < 0) throw errnoError('fcntl F_DUPFD_CLOEXEC');
  return r;
}
