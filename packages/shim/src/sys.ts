import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';

// Syscalls the shim needs that Node lacks: real pipes for a container's stdio (libuv's 'pipe' stdio
// is a socketpair, and a process whose stdout is a socket cannot open /dev/stdout), a close-on-exec
// dup for a second libuv handle on a pty master, and mount(2)/umount2(2) for task rootfs. Loaded on
// first use.

type AsyncCall = (...args: unknown[]) => void;

interface Libc {
  pipe2: (fds: Int32Array, flags: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  mount: { async: AsyncCall };
  umount2: { async: AsyncCall };
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as unknown as Libc['pipe2'],
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)') as unknown as Libc['fcntl'],
    mount: lib.func(
      'int mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data)',
    ) as unknown as Libc['mount'],
    umount2: lib.func('int umount2(const char *target, int flags)') as unknown as Libc['umount2'],
  };
  return libc;
}

const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;

/** An Error for a failed libc call: `errno` and, where known, `code` set (EINVAL...). */
function errnoError(what: string, errno = koffi.errno()): NodeJS.ErrnoException {
  const name = errno > 0 ? getSystemErrorName(-errno) : '';
  const code = name.startsWith('E') ? name : undefined;
  const e = new Error(`${what}: ${code ?? `errno ${errno}`}`) as NodeJS.ErrnoException;
  e.errno = errno;
  if (code) e.code = code;
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

/** Runs a libc call on koffi's worker thread; resolves its errno (0 when it returned 0). */
function callAsync(fn: { async: AsyncCall }, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, rc: number) => {
      if (err) reject(err);
      else resolve(rc === 0 ? 0 : koffi.errno());
    });
  });
}

/** mount(2), off the event loop. */
export async function mount(
  source: string,
  target: string,
  type: string,
  flags: number,
  data: string,
): Promise<void> {
  const errno = await callAsync(load().mount, source, target, type, flags, data);
  if (errno !== 0) throw errnoError(`mount ${type} at ${target}`, errno);
}

export const MNT_DETACH = 2;
export const EINVAL = 22;
export const ENOENT = 2;
export const EBUSY = 16;

/** umount2(2), off the event loop; rejects with the errno as `errno`/`code`. */
export async function umount2(target: string, flags: number): Promise<void> {
  const errno = await callAsync(load().umount2, target, flags);
  if (errno !== 0) throw errnoError(`umount ${target}`, errno);
}
