import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';

// The libc calls Node does not expose: receiving a file descriptor over a unix socket (SCM_RIGHTS),
// prctl(PR_SET_CHILD_SUBREAPER), waitpid for one pid, TIOCSWINSZ, posix_spawn. Bound through koffi on first use so
// that importing the package costs nothing and argv building works where libc cannot be loaded.

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: null, len: null, flags: number): number;
  recvmsg(fd: number, msg: Buffer, flags: number): number;
  close(fd: number): number;
  pipe2(fds: Int32Array, flags: number): number;
  /** fcntl(fd, F_DUPFD_CLOEXEC, 0) */
  dupCloexec(fd: number): number;
  prctl(option: number, arg2: number, arg3: number, arg4: number, arg5: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  /** waitid(2); `info` is a siginfo_t (128 bytes). */
  waitid(idtype: number, id: number, info: Buffer, options: number): number;
  ioctlWinsize(fd: number, req: number, ws: Uint16Array): number;
  /**
   * posix_spawn(3) on koffi's worker thread: the vfork'ed child runs until its exec while the event
   * loop goes on. Calls back with an errno value (0 on success), not -1.
   */
  posixSpawnAsync(
    pid: Int32Array,
    path: string,
    fileActions: Buffer,
    attr: null,
    argv: (string | null)[],
    envp: (string | null)[],
    done: (err: unknown, rc: number) => void,
  ): void;
  spawnFileActionsInit(fa: Buffer): number;
  spawnFileActionsAddDup2(fa: Buffer, fd: number, newfd: number): number;
  spawnFileActionsAddOpen(fa: Buffer, fd: number, path: string, flags: number, mode: number): number;
  spawnFileActionsDestroy(fa: Buffer): number;
}

let libc: Libc | undefined;

export function loadLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const f = (decl: string) => lib.func(decl) as never;
  libc = {
    socket: f('int socket(int domain, int type, int protocol)'),
    bind: f('int bind(int fd, const void *addr, uint32_t len)'),
    listen: f('int listen(int fd, int backlog)'),
    accept4: f('int accept4(int fd, void *addr, void *len, int flags)'),
    recvmsg: f('long recvmsg(int fd, void *msg, int flags)'),
    close: f('int close(int fd)'),
    pipe2: f('int pipe2(_Out_ int *fds, int flags)'),
    dupCloexec: (() => {
      const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
      return (fd: number) => fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0) as number;
    })() as never,
    prctl: f('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
    waitpid: f('int waitpid(int pid, _Out_ int *status, int options)'),
    waitid: f('int waitid(int idtype, int id, _Out_ void *info, int options)'),
    ioctlWinsize: f('int ioctl(int fd, unsigned long req, const uint16_t *ws)'),
    posixSpawnAsync: (() => {
      const spawn = lib.func(
        'int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)',
      );
      return (...args: unknown[]) => spawn.async(...args);
    })() as never,
    spawnFileActionsInit: f('int posix_spawn_file_actions_init(void *fa)'),
    spawnFileActionsAddDup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
    spawnFileActionsAddOpen: f(
      'int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, unsigned int mode)',
    ),
    spawnFileActionsDestroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
  };
  return libc;
}

export function errno(): number {
  return koffi.errno();
}

/** The address of a Buffer's memory, for pointers inside structs built by hand. */
export function addressOf(buf: Buffer): bigint {
  return koffi.address(buf);
}

export function pollReadable(fd: number, cb: () => void): { close(): void } {
  // koffi 3.3.4 calls back with (status, events), not as its typings say; any wakeup (including an
  // error status) is a reason to retry the non-blocking call, which reports the real error.
  const handle = koffi.node.poll(fd, { readable: true }, (() => cb()) as never);
  return { close: () => handle.close() };
}

const F_DUPFD_CLOEXEC = 1030;

export const EAGAIN = 11;
export const EINTR = 4;
export const ECHILD = 10;

/** The errno's name (ENOENT...), from libuv's table; undefined for a number it does not know. */
export function errnoName(err: number): string | undefined {
  if (!(err > 0)) return undefined;
  const name = getSystemErrorName(-err);
  return name.startsWith('E') ? name : undefined;
}

/** An Error shaped like Node's system errors (code, errno, syscall). */
export function sysError(syscall: string, what: string, err = errno()): NodeJS.ErrnoException {
  const name = errnoName(err);
  const e = new Error(`${what}: ${syscall} failed with ${name ?? `errno ${err}`}`) as NodeJS.ErrnoException;
  e.errno = err;
  e.code = name ?? 'UNKNOWN';
  e.syscall = syscall;
  return e;
}
