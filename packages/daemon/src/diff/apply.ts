import { lstatSync } from 'node:fs';
import { readFile, utimes } from 'node:fs/promises';
import {
  Canceled,
  CtrdError,
  InvalidArgument,
  type Logger,
  ResourceExhausted,
  silentLogger,
  TimeSlice,
  Unknown,
} from '@ctrd/api-proto';
import { digestHasher } from '@ctrd/api-proto/oci';
import { readTar, type TarEntry } from '@ctrd/api-proto/tar';
import { clampTime, type EntryContext, writers } from './entries.js';
import { at, cleanComponents, RootDir } from './root-dir.js';
import { OPAQUE, opaque, removeEntry, UnpackedPaths, WHITEOUT_PREFIX, whiteoutTarget } from './whiteouts.js';
import { XattrBudget } from './xattrs.js';

// Applying an OCI layer tar to a directory (a mounted snapshot), with containerd's semantics
// (pkg/archive/tar.go applyNaive) and its safety rules. Every entry is resolved inside the root
// when it is applied (root-dir.ts: openat2 RESOLVE_IN_ROOT, or a no-follow descriptor walk), and
// everything about it is done then, on that resolved directory: nothing is queued as a path
// string that a later entry could redirect (a parent swapped for a symlink), except directory
// times, which are resolved again the same way at the end. The entry's own name is never
// followed (what is in the way is removed, files are created O_EXCL|O_NOFOLLOW, metadata goes
// through a descriptor or the l* calls), hardlinks only join entries inside the root, whiteouts
// cannot name anything outside their directory, and sizes, counts, xattrs and names are bounded.
// Each entry type has its writer (entries.ts); whiteouts are in whiteouts.ts.

export interface ApplyOptions {
  signal?: AbortSignal;
  logger?: Logger;
  /** Most entries one layer may have (default 1,000,000). */
  maxEntries?: number;
  /** Longest entry name or link target (default 64 KiB). */
  maxNameLength?: number;
  /** Most bytes of xattrs (names and values) in one layer (default 16 MiB). */
  maxXattrBytes?: number;
  /**
   * Device nodes: 'auto' (default) creates them when running as root outside a user namespace
   * and skips them otherwise; 'skip' never creates them.
   */
  devices?: 'auto' | 'skip';
  /** Keep the caller's ownership instead of the tar's (containerd's NoSameOwner). */
  noSameOwner?: boolean;
  /** Resolve names with the descriptor walk even where openat2 exists (tests). */
  noOpenat2?: boolean;
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

function shown(name: string): string {
  return name.length > 200 ? `${name.slice(0, 200)}...` : name;
}

/**
 * The event loop gets a turn every TURN_MS (api-proto's TimeSlice). A layer's entries can follow
 * each other without any real wait (the tar is buffered, lookups are synchronous), and a layer of
 * 100,000 symlinks must not hold the daemon's only thread for the seconds it takes.
 */
const TURN_MS = 10;

/** What one layer keeps while it is applied. */
class LayerState {
  readonly unpacked = new UnpackedPaths();
  readonly opaqueDone = new Set<string>();
  /** Directories whose times are set at the end, by their cleaned names. */
  readonly dirTimes: Array<{ comps: string[]; mtime: number; name: string }> = [];

  constructor(
    readonly ctx: EntryContext,
    readonly xattrs: XattrBudget,
  ) {}
}

async function applyEntry(state: LayerState, entry: TarEntry): Promise<void> {
  const comps = cleanComponents(entry.name);
  // The root itself (".", "/", "..", ""): containerd ignores it.
  if (comps.length === 0) return;
  const what = `layer entry "${shown(entry.name)}"`;
  state.xattrs.check(entry.xattrs, what);
  const base = comps[comps.length - 1]!;
  const parent = state.ctx.root.dir(comps.slice(0, -1), what, true)!;
  try {
    if (base === OPAQUE) {
      if (!state.opaqueDone.has(parent.path)) {
        state.opaqueDone.add(parent.path);
        await opaque(parent, state.unpacked);
      }
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await removeEntry(parent, whiteoutTarget(base, what), state.unpacked);
      return;
    }
    // Anything in the way goes, except a directory that the entry merges into.
    const existing = lstatSync(at(parent.fd, base), { throwIfNoEntry: false });
    if (existing && !(existing.isDirectory() && entry.type === 'dir')) {
      await removeEntry(parent, base, state.unpacked);
    }
    if (!(await writers[entry.type](state.ctx, parent, base, entry, what))) return;
    if (entry.type === 'dir') state.dirTimes.push({ comps, mtime: entry.mtime, name: entry.name });
    state.unpacked.add(`${parent.path}/${base}`);
  } finally {
    parent.close();
  }
}

/**
 * Directory times last (entries inside changed them), each directory resolved anew inside the
 * root, symlinks followed there as containerd's RootPath does. A directory that a later entry
 * removed fails the layer, as it does in containerd.
 */
async function setDirTimes(state: LayerState): Promise<void> {
  const slice = new TimeSlice(TURN_MS);
  for (const { comps, mtime, name } of state.dirTimes) {
    let dir: ReturnType<RootDir['dir']>;
    try {
      dir = state.ctx.root.dir(comps, `layer entry "${shown(name)}"`);
    } catch (e) {
      // Something other than a directory is there now: containerd would set its times; nothing
      // of this entry is left to set.
      if (e instanceof InvalidArgument) continue;
      throw e;
    }
    if (!dir) {
      throw new InvalidArgument(
        `layer entry "${shown(name)}": the directory is gone when its times are set (a later entry removed it)`,
      );
    }
    try {
      const t = clampTime(mtime);
      // Through the descriptor's own /proc link: exactly this directory.
      await utimes(at(dir.fd), t, t);
    } finally {
      dir.close();
    }
    if (slice.due) await slice.yield();
  }
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
  let rootDir: RootDir;
  try {
    rootDir = RootDir.open(root, options.noOpenat2 ? { noOpenat2: true } : {});
  } catch (e) {
    throw new InvalidArgument(`apply layer: ${root} is not a directory`, { cause: e });
  }

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
  const state = new LayerState(
    { root: rootDir, log, devices, noSameOwner: options.noSameOwner === true },
    new XattrBudget(options.maxXattrBytes),
  );
  let entries = 0;
  const slice = new TimeSlice(TURN_MS);
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
      try {
        await applyEntry(state, entry);
      } catch (e) {
        throw wrap(e, `layer entry "${shown(entry.name)}"`);
      }
      if (slice.due) await slice.yield();
    }
    await setDirTimes(state);
  } catch (e) {
    throw wrap(e, 'apply layer');
  } finally {
    rootDir.close();
  }
  log.debug({ root, entries, size }, 'layer applied');
  return { digest: `sha256:${hash.digest('hex')}`, size, entries };
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
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
