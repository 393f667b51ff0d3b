import { execFile } from 'node:child_process';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
} from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  Canceled,
  CtrdError,
  FailedPrecondition,
  InvalidArgument,
  type Logger,
  ResourceExhausted,
  silentLogger,
  Unknown,
} from '@ctrd/api-proto';
import { digestHasher } from '@ctrd/api-proto/oci';
import { readTar, type TarEntry } from '@ctrd/api-proto/tar';
import { cleanComponents, RootResolver } from './root-path.js';
import { setXattrs, type XattrFailure, xattrToolAvailable } from './xattrs.js';

// Applying an OCI layer tar to a directory (a mounted snapshot), with containerd's semantics
// (pkg/archive/tar.go applyNaive) and its safety rules: every name is resolved inside the root
// (root-path.ts), the entry's own path is never followed (existing entries are removed, not
// written through; files are created O_EXCL|O_NOFOLLOW; ownership, mode and times go through
// an fd or the l* calls), hardlinks only join files already inside the root, whiteouts cannot
// name anything outside their directory, and sizes, counts and names are bounded.

const run = promisify(execFile);

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Largest device numbers the kernel's 32-bit dev_t encoding keeps (12-bit major, 20-bit minor). */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;
/** Largest uid/gid: 2^32-1 means "unchanged" to chown. */
const MAX_ID = 2 ** 32 - 2;
/** Times are clamped to a range every filesystem call accepts (about ±1000 years). */
const MAX_TIME = 2 ** 35;

export interface ApplyOptions {
  signal?: AbortSignal;
  logger?: Logger;
  /** Most entries one layer may have (default 1,000,000). */
  maxEntries?: number;
  /** Longest entry name or link target (default 64 KiB). */
  maxNameLength?: number;
  /**
   * Device nodes: 'auto' (default) creates them when running as root outside a user namespace
   * and skips them otherwise; 'skip' never creates them.
   */
  devices?: 'auto' | 'skip';
  /** Keep the caller's ownership instead of the tar's (containerd's NoSameOwner). */
  noSameOwner?: boolean;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar: the layer's diffID. */
  digest: string;
  /** Uncompressed size in bytes. */
  size: number;
  entries: number;
}

const DEFAULT_MAX_ENTRIES = 1_000_000;

let userNamespace: Promise<boolean> | undefined;
/** Whether this process runs in a user namespace (its uid map is not the identity). */
export function inUserNamespace(): Promise<boolean> {
  userNamespace ??= readFile('/proc/self/uid_map', 'utf8').then(
    (text) => !/^\s*0\s+0\s+4294967295\s*$/.test(text),
    () => false,
  );
  return userNamespace;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function clampTime(t: number): number {
  return Math.max(-MAX_TIME, Math.min(MAX_TIME, t));
}

function shown(name: string): string {
  return name.length > 200 ? `${name.slice(0, 200)}...` : name;
}

interface PendingXattrs {
  path: string;
  xattrs: Record<string, Uint8Array>;
}

/** Applies the layer tar `source` (uncompressed) to the directory `root`. */
export async function applyLayer(
  root: string,
  source: AsyncIterable<Uint8Array>,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const log = options.logger ?? silentLogger;
  const signal = options.signal;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const realRoot = await realpath(root);
  const rootStat = await lstat(realRoot);
  if (!rootStat.isDirectory()) throw new InvalidArgument(`apply layer: ${root} is not a directory`);
  const resolver = new RootResolver(realRoot);

  const hash = digestHasher('sha256');
  let size = 0;
  const tap = async function* (): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };

  const devices =
    options.devices === 'skip'
      ? 'skip'
      : process.getuid?.() === 0 && !(await inUserNamespace())
        ? 'create'
        : 'skip';

  // Paths this layer wrote (for opaque whiteouts), directories whose times are set at the end,
  // and xattrs set in one batch at the end (dropped for paths removed in between).
  const unpacked = new Set<string>();
  const opaqueDone = new Set<string>();
  const dirTimes: Array<{ path: string; mtime: number }> = [];
  let pending: PendingXattrs[] = [];
  let entries = 0;

  const removed = (path: string) => {
    resolver.invalidate();
    const prefix = `${path}/`;
    pending = pending.filter((p) => p.path !== path && !p.path.startsWith(prefix));
    for (const u of unpacked) if (u === path || u.startsWith(prefix)) unpacked.delete(u);
  };

  const removeAll = async (path: string) => {
    await rm(path, { recursive: true, force: true });
    removed(path);
  };

  /** Creates the missing directories of a resolved parent path (0755, as containerd does). */
  const mkparent = async (key: string, ppath: string) => {
    const rel = ppath.slice(realRoot.length + 1).split('/');
    let at = realRoot;
    for (const c of rel) {
      at = `${at}/${c}`;
      let st: Stats | undefined;
      try {
        st = await lstat(at);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
      if (st === undefined) {
        try {
          await mkdir(at, { mode: 0o755 });
        } catch (e) {
          if (errno(e) !== 'EEXIST') throw e;
        }
        continue;
      }
      // Resolution only hands back real directories for existing components.
      if (!st.isDirectory())
        throw new InvalidArgument(`apply layer: parent /${rel.join('/')}: not a directory`);
    }
    resolver.rememberDir(key, ppath);
  };

  const opaque = async (dir: string, what: string) => {
    try {
      await lstat(dir);
    } catch (e) {
      throw new InvalidArgument(`${what}: opaque directory is missing`, { cause: e });
    }
    const walk = async (d: string): Promise<void> => {
      for (const name of await readdir(d)) {
        const p = `${d}/${name}`;
        if (!unpacked.has(p)) {
          await rm(p, { recursive: true, force: true });
          continue;
        }
        const st = await lstat(p);
        if (st.isDirectory()) await walk(p);
      }
    };
    await walk(dir);
    resolver.invalidate();
  };

  const owner = (entry: TarEntry) => {
    if (options.noSameOwner) return undefined;
    for (const [k, v] of [
      ['uid', entry.uid],
      ['gid', entry.gid],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || v > MAX_ID) {
        throw new InvalidArgument(`layer entry "${shown(entry.name)}": ${k} ${v} out of range`);
      }
    }
    return { uid: entry.uid, gid: entry.gid };
  };

  /** chown, chmod, times through an open fd (regular files and directories). */
  const setThroughFd = async (fh: FileHandle, entry: TarEntry, times: boolean) => {
    const o = owner(entry);
    if (o) await fh.chown(o.uid, o.gid);
    await fh.chmod(entry.mode);
    if (times) {
      const t = clampTime(entry.mtime);
      await fh.utimes(t, t);
    }
  };

  /** chown, chmod, times by path for things that cannot be opened safely; never follows. */
  const setByPath = async (path: string, entry: TarEntry, st: Stats) => {
    const o = owner(entry);
    if (o) await lchown(path, o.uid, o.gid);
    // chmod follows symlinks, and Linux has no lchmod: a symlink's mode is left alone, which
    // is exactly what the HardlinkSymlinkChmod breakout needs.
    if (!st.isSymbolicLink()) await chmod(path, entry.mode);
    const t = clampTime(entry.mtime);
    await lutimes(path, t, t);
  };

  const addXattrs = (path: string, entry: TarEntry) => {
    if (Object.keys(entry.xattrs).length > 0) pending.push({ path, xattrs: entry.xattrs });
  };

  const writeFile = async (path: string, entry: TarEntry) => {
    const fh = await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      let written = 0;
      for await (const chunk of entry.body) {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
        written += chunk.length;
      }
      if (written !== entry.size) {
        throw new InvalidArgument(`layer entry "${shown(entry.name)}": ${written} of ${entry.size} bytes`);
      }
      await setThroughFd(fh, entry, true);
    } finally {
      await fh.close();
    }
  };

  const makeDir = async (path: string, entry: TarEntry, existed: boolean) => {
    if (!existed) await mkdir(path, { mode: 0o700 });
    const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      await setThroughFd(fh, entry, false);
    } finally {
      await fh.close();
    }
  };

  const makeNode = async (path: string, entry: TarEntry): Promise<boolean> => {
    const mode = (entry.mode & 0o7777).toString(8);
    let args: string[];
    if (entry.type === 'fifo') {
      args = ['-m', mode, '--', path, 'p'];
    } else {
      if (entry.devmajor > MAX_MAJOR || entry.devminor > MAX_MINOR) {
        throw new InvalidArgument(
          `layer entry "${shown(entry.name)}": device ${entry.devmajor}:${entry.devminor} out of range (major <= ${MAX_MAJOR}, minor <= ${MAX_MINOR})`,
        );
      }
      if (devices === 'skip') {
        log.warn(
          { name: entry.name },
          'apply layer: device node skipped (not privileged or in a user namespace)',
        );
        return false;
      }
      args = [
        '-m',
        mode,
        '--',
        path,
        entry.type === 'chardev' ? 'c' : 'b',
        String(entry.devmajor),
        String(entry.devminor),
      ];
    }
    try {
      await run('mknod', args, { signal });
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? '');
      if (entry.type !== 'fifo' && /not permitted/i.test(stderr)) {
        log.warn({ name: entry.name }, 'apply layer: device node skipped (mknod not permitted)');
        return false;
      }
      throw new FailedPrecondition(
        `layer entry "${shown(entry.name)}": mknod: ${stderr.trim() || (e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    return true;
  };

  const applyEntry = async (entry: TarEntry) => {
    const comps = cleanComponents(entry.name);
    // The root itself (".", "/", "..", ""): containerd ignores it.
    if (comps.length === 0) return;
    const what = `layer entry "${shown(entry.name)}"`;
    const base = comps[comps.length - 1]!;
    const parentKey = comps.slice(0, -1).join('/');
    const ppath = await resolver.resolve(comps.slice(0, -1), what);
    if (!resolver.contains(ppath)) throw new InvalidArgument(`${what}: resolves outside the root`);
    if (ppath !== realRoot) await mkparent(parentKey, ppath);
    const path = `${ppath}/${base}`;

    if (base === OPAQUE) {
      if (!opaqueDone.has(ppath)) {
        opaqueDone.add(ppath);
        await opaque(ppath, what);
      }
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const original = base.slice(WHITEOUT_PREFIX.length);
      if (original === '' || original === '.' || original === '..') {
        throw new InvalidArgument(
          `${what}: invalid whiteout name: it would remove its own directory or a parent`,
        );
      }
      await removeAll(`${ppath}/${original}`);
      return;
    }

    let existing: Stats | undefined;
    try {
      existing = await lstat(path);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    // Anything in the way goes, except a directory that the entry merges into.
    if (existing && !(existing.isDirectory() && entry.type === 'dir')) {
      await removeAll(path);
      existing = undefined;
    }

    switch (entry.type) {
      case 'dir':
        await makeDir(path, entry, existing !== undefined);
        resolver.rememberDir(comps.join('/'), path);
        dirTimes.push({ path, mtime: entry.mtime });
        break;
      case 'file':
        await writeFile(path, entry);
        break;
      case 'symlink': {
        // Any target is allowed: it is the later writes through it that resolution keeps inside.
        await symlink(entry.linkname, path);
        await setByPath(path, entry, await lstat(path));
        break;
      }
      case 'hardlink': {
        const target = await hardlinkTarget(resolver, entry, what);
        await link(target, path);
        const st = await lstat(path);
        if (st.isFile()) {
          const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
          try {
            await setThroughFd(fh, entry, true);
          } finally {
            await fh.close();
          }
        } else {
          await setByPath(path, entry, st);
        }
        break;
      }
      case 'fifo':
      case 'chardev':
      case 'blockdev': {
        if (!(await makeNode(path, entry))) return;
        await setByPath(path, entry, await lstat(path));
        break;
      }
    }
    addXattrs(path, entry);
    unpacked.add(path);
  };

  let tarSize = 0;
  try {
    for await (const entry of readTar(tap(), {
      signal,
      drainTrailing: true,
      ...(options.maxNameLength ? { maxNameLength: options.maxNameLength } : {}),
    })) {
      if (signal?.aborted) throw new Canceled('apply layer: aborted', { cause: signal.reason });
      if (++entries > maxEntries) {
        throw new ResourceExhausted(`apply layer: more than ${maxEntries} entries`);
      }
      tarSize += entry.size;
      try {
        await applyEntry(entry);
      } catch (e) {
        throw wrap(e, `layer entry "${shown(entry.name)}"`);
      }
    }

    for (const { path, mtime } of dirTimes) {
      const st = await lstat(path).catch(() => undefined);
      if (st?.isDirectory()) {
        const t = clampTime(mtime);
        await lutimes(path, t, t);
      }
    }
    await applyXattrs(pending, log, signal);
  } catch (e) {
    throw wrap(e, 'apply layer');
  }
  log.debug({ root, entries, size, tarSize }, 'layer applied');
  return { digest: `sha256:${hash.digest('hex')}`, size, entries };
}

async function hardlinkTarget(resolver: RootResolver, entry: TarEntry, what: string): Promise<string> {
  const comps = cleanComponents(entry.linkname);
  if (comps.length === 0) throw new InvalidArgument(`${what}: hardlink to the root directory`);
  const parent = await resolver.resolve(comps.slice(0, -1), what);
  const target = `${parent}/${comps[comps.length - 1]}`;
  if (!resolver.contains(target)) throw new InvalidArgument(`${what}: hardlink target outside the root`);
  let st: Stats;
  try {
    st = await lstat(target);
  } catch (e) {
    throw new InvalidArgument(`${what}: hardlink target "${shown(entry.linkname)}" not found`, { cause: e });
  }
  if (st.isDirectory()) throw new InvalidArgument(`${what}: hardlink to a directory`);
  return target;
}

async function applyXattrs(pending: PendingXattrs[], log: Logger, signal?: AbortSignal): Promise<void> {
  if (pending.length === 0) return;
  if (!(await xattrToolAvailable())) {
    log.warn({ files: pending.length }, 'apply layer: xattrs not set: python3 is not available to set them');
    return;
  }
  for (const f of await setXattrs(pending, signal)) {
    const st = await lstat(f.path).catch(() => undefined);
    const verdict = xattrFailureVerdict(f, st);
    if (verdict === 'error')
      throw new FailedPrecondition(`apply layer: setxattr ${f.name} on ${f.path}: ${f.code}`);
    log[verdict === 'ignore' ? 'debug' : 'warn'](
      { path: f.path, xattr: f.name, code: f.code },
      'apply layer: xattr ignored',
    );
  }
}

/**
 * What a failed setxattr means, as containerd decides it: trusted.* refused (EPERM: not
 * privileged) is ignored, an unsupporting filesystem is a warning, user.* on anything but a
 * regular file or directory is a warning (the kernel allows it nowhere else); the rest fail.
 */
export function xattrFailureVerdict(f: XattrFailure, st: Stats | undefined): 'ignore' | 'warn' | 'error' {
  if (f.code === 'EPERM' && f.name.startsWith('trusted.')) return 'ignore';
  if (f.code === 'ENOTSUP' || f.code === 'EOPNOTSUPP') return 'warn';
  if (f.code === 'EPERM' && f.name.startsWith('user.') && st && !st.isFile() && !st.isDirectory())
    return 'warn';
  return 'error';
}

function wrap(e: unknown, what: string): Error {
  if (e instanceof CtrdError) return e;
  const code = errno(e);
  const message = (e as Error).message ?? String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new ResourceExhausted(`${what}: ${message}`, { cause: e });
  if (code === 'ENAMETOOLONG') return new InvalidArgument(`${what}: ${message}`, { cause: e });
  if ((e as Error).name === 'AbortError') return new Canceled(`${what}: aborted`, { cause: e });
  return new Unknown(`${what}: ${message}`, { cause: e });
}
