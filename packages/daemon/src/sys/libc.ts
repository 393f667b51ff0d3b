import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';

// The daemon's native layer: the file calls Node does not have, for work on untrusted trees
// (layer unpack and diff). openat2(2) resolves a path inside a root in the kernel; mknodat(2)
// makes device nodes and fifos; lsetxattr/lgetxattr set and read extended attributes without
// following a symlink. Everything else goes through Node's fs, on paths relative to a
// descriptor (/proc/self/fd/N/name), so no path string is ever resolved twice.
// Bound through koffi on first use: importing this costs nothing.

interface Bound {
  syscall: (...args: unknown[]) => number;
  mknodat: (dirfd: number, path: Uint8Array, mode: number, dev: number) => number;
  lsetxattr: (path: Uint8Array, name: string, value: Uint8Array, size: number, flags: number) => number;
  lgetxattr: (path: Uint8Array, name: string, value: Uint8Array | null, size: number) => number;
}

let bound: Bound | undefined;

function libc(): Bound {
  if (bound) return bound;
  const lib = koffi.load('libc.so.6');
  const f = (decl: string) => lib.func(decl) as never;
  bound = {
    syscall: f('long syscall(long number, ...)'),
    mknodat: f('int mknodat(int dirfd, const void *path, uint32_t mode, uint64_t dev)'),
    lsetxattr: f(
      'int lsetxattr(const void *path, const char *name, const void *value, size_t size, int flags)',
    ),
    lgetxattr: f('long lgetxattr(const void *path, const char *name, void *value, size_t size)'),
  };
  return bound;
}

/** openat2 has the same number on every Linux architecture (the unified syscall table). */
const SYS_OPENAT2 = 437;

/** O_PATH: a descriptor that names an inode without opening it (x86, arm, riscv; generic value). */
export const O_PATH = 0o10000000;
/** O_CLOEXEC (Node adds it to its own opens; openat2 needs it said). */
export const O_CLOEXEC = 0o2000000;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_IN_ROOT = 0x10;

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** An Error shaped like Node's system errors (code, errno, syscall). */
export function sysError(syscall: string, what: string, err = koffi.errno()): NodeJS.ErrnoException {
  const name = err > 0 ? getSystemErrorName(-err) : 'UNKNOWN';
  const e = new Error(`${syscall} ${what}: ${name}`) as NodeJS.ErrnoException;
  e.errno = err;
  e.code = name;
  e.syscall = syscall;
  return e;
}

/** A NUL-terminated copy of a path for the C calls. */
function cpath(path: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(path.length + 1);
  b.set(path, 0);
  b[path.length] = 0;
  return b;
}

/** openat2(dirfd, path, {flags, mode: 0, resolve}): a descriptor, or throws with the errno. */
export function openat2(dirfd: number, path: Uint8Array, flags: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const fd = libc().syscall(
    SYS_OPENAT2,
    'int',
    dirfd,
    'const void *',
    cpath(path),
    'const void *',
    how,
    'size_t',
    how.length,
  );
  if (fd < 0) throw sysError('openat2', Buffer.from(path).toString());
  return fd;
}

/** The kernel's 64-bit dev_t encoding (glibc's makedev). */
export function makedev(major: number, minor: number): number {
  return (
    (minor & 0xff) +
    (major & 0xfff) * 2 ** 8 +
    (minor & 0xfff00) * 2 ** 12 +
    Math.floor(major / 2 ** 12) * 2 ** 44 +
    Math.floor(minor / 2 ** 20) * 2 ** 52
  );
}

export function mknodat(dirfd: number, name: Uint8Array, mode: number, dev: number): void {
  if (libc().mknodat(dirfd, cpath(name), mode, dev) < 0)
    throw sysError('mknodat', Buffer.from(name).toString());
}

/** lsetxattr: the last component of `path` is never followed. */
export function lsetxattr(path: Uint8Array, name: string, value: Uint8Array): void {
  if (libc().lsetxattr(cpath(path), name, value, value.length, 0) < 0) throw sysError('lsetxattr', name);
}

const ENODATA = 61;

/** lgetxattr: the value, or undefined when the attribute is not set (or not supported). */
export function lgetxattr(path: Uint8Array, name: string): Uint8Array | undefined {
  const p = cpath(path);
  for (;;) {
    const size = libc().lgetxattr(p, name, null, 0);
    if (size < 0) {
      const err = koffi.errno();
      if (err === ENODATA || err === 95 /* EOPNOTSUPP */) return undefined;
      throw sysError('lgetxattr', name, err);
    }
    const out = Buffer.alloc(size);
    const got = libc().lgetxattr(p, name, out, size);
    if (got >= 0) return out.subarray(0, got);
    // ERANGE: it grew between the two calls; ask again.
    if (koffi.errno() !== 34) throw sysError('lgetxattr', name);
  }
}
