import { lstat, readlink } from 'node:fs/promises';
import { InvalidArgument } from '@ctrd/api-proto';

// Paths from a layer resolved inside a root directory, the way containerd's apply does it
// (continuity's fs.RootPath): the name is cleaned with `..` clamped at the root, so `/abs`,
// `../x` and `a/../../x` all land inside; then each existing component is looked at with lstat
// and a symlink among them is followed as if the root were `/` (an absolute target restarts at
// the root, `..` in a target stops at the root). Nothing is ever opened through a symlink: the
// result names real directories under the root, and callers never follow its last component.

/** Symlinks followed while resolving one path, as continuity's limit. */
const MAX_LINKS = 255;

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

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

export class RootResolver {
  /** Cleaned relative dir path → resolved absolute path of an existing real directory. */
  private readonly dirs = new Map<string, string>();
  /** Absolute paths known to be real directories (not symlinks). */
  private readonly realDirs = new Set<string>();

  /** root must be an absolute real path (no symlinks), without a trailing slash. */
  constructor(readonly root: string) {}

  /** Forgets cached resolutions: after anything is removed or a symlink is created. */
  invalidate(): void {
    this.dirs.clear();
    this.realDirs.clear();
  }

  /** Records that a cleaned relative path is now an existing real directory at `abs`. */
  rememberDir(rel: string, abs: string): void {
    this.dirs.set(rel, abs);
    this.realDirs.add(abs);
  }

  /**
   * The absolute path of `components` inside the root, every symlink among them followed
   * within the root. Components that do not exist are kept as they are (the caller may create
   * them). Throws when a component that must be a directory is something else.
   */
  async resolve(components: readonly string[], what: string): Promise<string> {
    const key = components.join('/');
    const cached = this.dirs.get(key);
    if (cached !== undefined) return cached;
    const resolved: string[] = [];
    const pending = [...components];
    let links = 0;
    let missing = false;
    while (pending.length > 0) {
      const c = pending.shift()!;
      if (c === '.' || c === '') continue;
      if (c === '..') {
        resolved.pop();
        // Going up out of a missing component may land on existing ones again.
        missing = false;
        continue;
      }
      if (missing) {
        resolved.push(c);
        continue;
      }
      const abs = this.abs([...resolved, c]);
      if (this.realDirs.has(abs)) {
        resolved.push(c);
        continue;
      }
      let st: Awaited<ReturnType<typeof lstat>>;
      try {
        st = await lstat(abs);
      } catch (e) {
        if (code(e) === 'ENOENT') {
          missing = true;
          resolved.push(c);
          continue;
        }
        if (code(e) === 'ENOTDIR') {
          throw new InvalidArgument(`${what}: ${this.rel(resolved)} is not a directory`, { cause: e });
        }
        throw e;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new InvalidArgument(`${what}: too many levels of symbolic links`);
        const target = await readlink(abs);
        if (target.startsWith('/')) resolved.length = 0;
        pending.unshift(...target.split('/'));
        continue;
      }
      if (!st.isDirectory() && pending.some((p) => p !== '' && p !== '.')) {
        // A file in the middle of the path: only `..` right after it could still make sense,
        // and the kernel refuses that too.
        throw new InvalidArgument(`${what}: ${this.rel([...resolved, c])} is not a directory`);
      }
      if (st.isDirectory()) this.realDirs.add(abs);
      resolved.push(c);
    }
    return this.abs(resolved);
  }

  abs(components: readonly string[]): string {
    return components.length === 0 ? this.root : `${this.root}/${components.join('/')}`;
  }

  /** A resolved absolute path shown relative to the root, for messages. */
  rel(components: readonly string[]): string {
    return `/${components.join('/')}`;
  }

  /** Whether an absolute path is the root or inside it. */
  contains(abs: string): boolean {
    return abs === this.root || abs.startsWith(`${this.root}/`);
  }
}
