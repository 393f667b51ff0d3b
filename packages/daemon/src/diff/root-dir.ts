import { closeSync, constants, fstatSync, mkdirSync, openSync, readlinkSync } from 'node:fs';
import { InvalidArgument } from '@ctrd/api-proto';
import { decodeName, encodeName } from '@ctrd/api-proto/tar';
import {
  O_CLOEXEC,
  O_PATH,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_XDEV,
} from '../sys/libc.js';

// A directory tree from an image, worked on through descriptors. A name is resolved inside the
// root at the moment it is used, never kept as a path string that a later entry could change:
// openat2(RESOLVE_IN_ROOT) lets the kernel follow symlinks as if the root were `/` (`..` stops at
// the root, an absolute target restarts there), refuses magic links and mount crossings. Where
// openat2 is missing (Linux < 5.6, or a seccomp filter), the same rules run as a walk of O_PATH
// descriptors, one component at a time with O_NOFOLLOW. The walk also creates missing
// directories (0755, as containerd's MkdirAll). Callers then work on the resolved directory's
// descriptor: `at(dir, name)` is a path through /proc/self/fd that names exactly that directory's
// entry, and every call made with it leaves its last component unfollowed (O_NOFOLLOW, l*
// calls, O_EXCL creation).

/** Symlinks followed while resolving one path (continuity's limit). */
export const MAX_LINKS = 255;

/** The components of a path, cleaned with `..` clamped at the root ('' is the root). */
export function cleanComponents(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

const fdPrefix = (fd: number) => `/proc/self/fd/${fd}`;

/** A path naming entry `name` of the directory open as `fd`, as bytes. */
export function at(fd: number, name?: string): Buffer {
  if (name === undefined) return Buffer.from(fdPrefix(fd));
  return Buffer.concat([Buffer.from(`${fdPrefix(fd)}/`), encodeName(name)]);
}

/** A resolved directory inside the root: its descriptor, and its path for bookkeeping. */
export interface Dir {
  readonly fd: number;
  /** Absolute path as the kernel names it (names decoded byte-exact). */
  readonly path: string;
  close(): void;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | O_CLOEXEC;
const RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

export interface RootDirOptions {
  /** Resolve with the descriptor walk even where openat2 exists (tests, diagnostics). */
  noOpenat2?: boolean;
}

export class RootDir {
  readonly fd: number;
  readonly path: string;
  private readonly dev: number;
  private useOpenat2: boolean;

  private constructor(fd: number, options: RootDirOptions) {
    this.fd = fd;
    this.path = pathOf(fd);
    this.dev = fstatSync(fd).dev;
    this.useOpenat2 = !options.noOpenat2;
  }

  /** Opens `root`, which must be a directory (the caller's, trusted path). */
  static open(root: string, options: RootDirOptions = {}): RootDir {
    const fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
    return new RootDir(fd, options);
  }

  close(): void {
    closeSync(this.fd);
  }

  /**
   * The directory `components` name inside the root, symlinks followed within it. Missing ones
   * are created when `create` is set; otherwise a missing one gives undefined. Anything that is
   * not a directory where one must be is InvalidArgument, named by `what`.
   */
  dir(components: readonly string[], what: string, create = false): Dir | undefined {
    if (components.length === 0) return this.rootDir();
    if (this.useOpenat2) {
      const fd = this.openat2(components, what);
      if (typeof fd === 'number') return dirOf(fd);
      // 'missing' still goes through the walk: `missing/../x` is x there, as in containerd.
    }
    return this.walk(components, what, create);
  }

  /** The root itself, as a Dir whose close leaves the root open. */
  private rootDir(): Dir {
    return { fd: this.fd, path: this.path, close: () => {} };
  }

  private openat2(components: readonly string[], what: string): number | 'missing' | 'fallback' {
    const rel = encodeName(components.join('/'));
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        return openat2(this.fd, rel, DIR_FLAGS, RESOLVE);
      } catch (e) {
        switch (errno(e)) {
          case 'ENOENT':
            return 'missing';
          case 'EAGAIN': // a rename raced the lookup: ask again
          case 'EINTR':
            continue;
          case 'ENOSYS':
          case 'EPERM': // seccomp filters answer EPERM for calls they do not know
          case 'E2BIG':
            this.useOpenat2 = false;
            return 'fallback';
          default:
            throw refusal(e, components, what);
        }
      }
    }
    return 'fallback';
  }

  /**
   * The same resolution as openat2's, one O_PATH|O_NOFOLLOW open per component. A component that
   * does not exist is carried by name, so a `..` after it cancels it as continuity's RootPath
   * does (`missing/../x` is `x`); what is still missing at the end is made when `create` is set.
   */
  private walk(components: readonly string[], what: string, create: boolean): Dir | undefined {
    const fds: number[] = [];
    const missing: string[] = [];
    const top = () => (fds.length > 0 ? fds[fds.length - 1]! : this.fd);
    const pending = [...components];
    let links = 0;
    try {
      while (pending.length > 0) {
        const c = pending.shift()!;
        if (c === '' || c === '.') continue;
        if (c === '..') {
          if (missing.length > 0) missing.pop();
          else {
            const up = fds.pop();
            if (up !== undefined) closeSync(up);
          }
          continue;
        }
        if (missing.length > 0) {
          missing.push(c);
          continue;
        }
        const fd = openNoFollow(top(), c);
        if (fd === undefined) {
          missing.push(c);
          continue;
        }
        const st = fstatSync(fd);
        if (st.isSymbolicLink()) {
          closeSync(fd);
          if (++links > MAX_LINKS) throw new InvalidArgument(`${what}: too many levels of symbolic links`);
          const target = decodeName(readlinkSync(at(top(), c), { encoding: 'buffer' }));
          if (target.startsWith('/')) for (const d of fds.splice(0)) closeSync(d);
          pending.unshift(...target.split('/'));
          continue;
        }
        fds.push(fd);
        if (!st.isDirectory()) throw new InvalidArgument(`${what}: /${c} is not a directory`);
        if (st.dev !== this.dev) throw new InvalidArgument(`${what}: /${c} is on another mount`);
      }
      if (missing.length > 0) {
        if (!create) return undefined;
        for (const c of missing) {
          const path = at(top(), c);
          try {
            mkdirSync(path, 0o755);
          } catch (e) {
            if (errno(e) !== 'EEXIST') throw e;
          }
          const fd = openNoFollow(top(), c);
          if (fd === undefined || !fstatSync(fd).isDirectory()) {
            if (fd !== undefined) closeSync(fd);
            throw new InvalidArgument(`${what}: /${c} changed while it was made`);
          }
          fds.push(fd);
        }
      }
      const fd = fds.pop();
      return fd === undefined ? this.rootDir() : dirOf(fd);
    } finally {
      for (const d of fds) closeSync(d);
    }
  }
}

/** An O_PATH descriptor of `name` in `dir`, the name itself (never followed); undefined if absent. */
function openNoFollow(dir: number, name: string): number | undefined {
  try {
    return openSync(at(dir, name), O_PATH | constants.O_NOFOLLOW);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

function refusal(e: unknown, components: readonly string[], what: string): Error {
  const shown = `/${components.join('/')}`;
  switch (errno(e)) {
    case 'ENOTDIR':
      return new InvalidArgument(`${what}: a component of ${shown} is not a directory`, { cause: e });
    case 'ELOOP':
      return new InvalidArgument(`${what}: too many levels of symbolic links in ${shown}`, { cause: e });
    case 'EXDEV':
      return new InvalidArgument(`${what}: ${shown} crosses a mount point`, { cause: e });
    default:
      return e as Error;
  }
}

function pathOf(fd: number): string {
  return decodeName(readlinkSync(at(fd), { encoding: 'buffer' }));
}

function dirOf(fd: number): Dir {
  let path: string;
  try {
    path = pathOf(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { fd, path, close: () => closeSync(fd) };
}
