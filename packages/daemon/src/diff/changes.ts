import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { Canceled } from '@ctrd/api-proto';
import { decodeName, encodeName, type TarWriteEntry } from '@ctrd/api-proto/tar';
import { getXattrs } from './xattrs.js';

// The changes between two trees as an OCI layer, in containerd's way (continuity's double walk
// fs.Changes + archive.ChangeWriter): both trees walked together in byte order of names, a file
// compared by lstat (type, mode, owner, device, size, mtime; content and link target when the
// mtimes look truncated), removed paths written as `.wh.<name>` whiteouts, parents included
// before their children, hard links kept as links, sockets left out.

export type ChangeKind = 'add' | 'modify' | 'delete' | 'unmodified';

export interface Change {
  kind: ChangeKind;
  /** Relative path with '/' separators, no leading slash. */
  path: string;
  /** The upper (right) side's lstat; absent for deletions. */
  stat?: Stats;
}

// Paths here are strings whose invalid UTF-8 bytes are escaped (api-proto's tar names), so a name
// is written to the layer with exactly the bytes it has on disk; fsPath gives the bytes back for
// every filesystem call.
function fsPath(path: string): Buffer {
  return Buffer.from(encodeName(path));
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(fsPath(a), fsPath(b));
}

async function names(dir: string | undefined): Promise<string[]> {
  if (dir === undefined) return [];
  return (await readdir(fsPath(dir), { encoding: 'buffer' })).map(decodeName);
}

async function readLink(path: string): Promise<string> {
  return decodeName(await readlink(fsPath(path), { encoding: 'buffer' }));
}

async function stat(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(fsPath(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function sameContent(a: string, b: string, signal?: AbortSignal): Promise<boolean> {
  const ia = createReadStream(fsPath(a), { highWaterMark: 64 * 1024, signal })[Symbol.asyncIterator]();
  const ib = createReadStream(fsPath(b), { highWaterMark: 64 * 1024, signal })[Symbol.asyncIterator]();
  let bufA: Buffer = Buffer.alloc(0);
  let bufB: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      if (bufA.length === 0) {
        const n = await ia.next();
        if (!n.done) bufA = n.value as Buffer;
      }
      if (bufB.length === 0) {
        const n = await ib.next();
        if (!n.done) bufB = n.value as Buffer;
      }
      if (bufA.length === 0 || bufB.length === 0) return bufA.length === bufB.length;
      const n = Math.min(bufA.length, bufB.length);
      if (!bufA.subarray(0, n).equals(bufB.subarray(0, n))) return false;
      bufA = bufA.subarray(n);
      bufB = bufB.subarray(n);
    }
  } finally {
    await ia.return?.();
    await ib.return?.();
  }
}

function fileType(s: Stats): number {
  return s.mode & 0o170000;
}

/** continuity's sameFile: whether the upper entry is unchanged from the lower one. */
async function sameFile(
  lowerPath: string,
  l: Stats,
  upperPath: string,
  u: Stats,
  signal?: AbortSignal,
): Promise<boolean> {
  if (l.dev === u.dev && l.ino === u.ino) return true;
  if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid || l.rdev !== u.rdev) return false;
  if (u.isDirectory()) return true;
  if (l.size !== u.size) return false;
  const ls = Math.floor(Number(l.mtimeMs) / 1000);
  const us = Math.floor(Number(u.mtimeMs) / 1000);
  if (ls !== us) return false;
  const lNanos = nanosOf(l);
  const uNanos = nanosOf(u);
  if (lNanos === 0 && uNanos === 0) {
    // Both times look truncated (copied from a tar): the bytes decide.
    if (u.isSymbolicLink()) return (await readLink(lowerPath)) === (await readLink(upperPath));
    if (u.size === 0 || !u.isFile()) return true;
    return sameContent(lowerPath, upperPath, signal);
  }
  if (lNanos !== uNanos) return false;
  if (u.isSymbolicLink()) return (await readLink(lowerPath)) === (await readLink(upperPath));
  return true;
}

function nanosOf(s: Stats): number {
  // Stats.mtimeNs exists only on bigint stats; the sub-second part from mtimeMs is good to the
  // microsecond, which is enough to tell "truncated" (0) from "not".
  return Math.round((Number(s.mtimeMs) % 1000) * 1000);
}

/** Every change from `lower` to `upper`, in the order a layer lists them. */
export async function changes(lower: string, upper: string, signal?: AbortSignal): Promise<Change[]> {
  const out: Change[] = [];
  const walk = async (rel: string, lowerDir: string | undefined, upperDir: string): Promise<void> => {
    if (signal?.aborted) throw new Canceled('diff: aborted', { cause: signal.reason });
    const all = new Set([...(await names(lowerDir)), ...(await names(upperDir))]);
    for (const name of [...all].sort(byteOrder)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const lp = lowerDir === undefined ? undefined : `${lowerDir}/${name}`;
      const up = `${upperDir}/${name}`;
      const l = lp === undefined ? undefined : await stat(lp);
      const u = await stat(up);
      if (u === undefined) {
        if (l !== undefined) out.push({ kind: 'delete', path });
        continue;
      }
      if (l === undefined) {
        out.push({ kind: 'add', path, stat: u });
      } else if (fileType(l) === fileType(u) && (await sameFile(lp!, l, up, u, signal))) {
        // Unchanged entries matter only as possible sources of hard links to changed ones.
        if (!u.isDirectory() && u.nlink > 1) out.push({ kind: 'unmodified', path, stat: u });
      } else {
        out.push({ kind: 'modify', path, stat: u });
      }
      if (u.isDirectory()) await walk(path, l?.isDirectory() ? lp : undefined, up);
    }
  };
  await walk('', lower, upper);
  return out;
}

function entryType(s: Stats): TarWriteEntry['type'] | undefined {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isCharacterDevice()) return 'chardev';
  if (s.isBlockDevice()) return 'blockdev';
  if (s.isFIFO()) return 'fifo';
  return undefined;
}

function major(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}

/**
 * The tar entries of a layer from `lower` to `upper` (containerd's ChangeWriter): whiteouts
 * with time 0, times truncated to seconds, security.capability kept, hard links as links.
 */
export async function* layerEntries(
  lower: string,
  upper: string,
  signal?: AbortSignal,
): AsyncGenerator<TarWriteEntry> {
  const list = await changes(lower, upper, signal);

  const addedDirs = new Set<string>();
  const inodeSource = new Map<string, string>();
  const inodeRefs = new Map<string, string[]>();
  const queue: TarWriteEntry[] = [];

  const header = (path: string, s: Stats): TarWriteEntry | undefined => {
    const type = entryType(s);
    if (type === undefined) return undefined;
    const entry: TarWriteEntry = {
      name: type === 'dir' ? `${path}/` : path,
      type,
      mode: s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      mtime: Math.floor(Number(s.mtimeMs) / 1000),
    };
    if (type === 'chardev' || type === 'blockdev') {
      entry.devmajor = major(Number(s.rdev));
      entry.devminor = minor(Number(s.rdev));
    }
    return entry;
  };

  const includeParents = async (name: string) => {
    const trimmed = name.replace(/\/+$/, '');
    const slash = trimmed.lastIndexOf('/');
    if (slash < 0) return;
    const parent = trimmed.slice(0, slash);
    if (addedDirs.has(parent)) return;
    addedDirs.add(parent);
    const st = await lstat(fsPath(`${upper}/${parent}`));
    await handle({ kind: 'modify', path: parent, stat: st });
  };

  const push = async (entry: TarWriteEntry) => {
    await includeParents(entry.name);
    if (entry.type === 'dir') addedDirs.add(entry.name.replace(/\/+$/, ''));
    queue.push(entry);
  };

  const handle = async (c: Change): Promise<void> => {
    if (c.kind === 'delete') {
      const slash = c.path.lastIndexOf('/');
      const name = slash < 0 ? `.wh.${c.path}` : `${c.path.slice(0, slash)}/.wh.${c.path.slice(slash + 1)}`;
      await push({ name, type: 'file', mode: 0, mtime: 0 });
      return;
    }
    const s = c.stat!;
    if (s.isSocket()) return;
    const entry = header(c.path, s);
    if (!entry) return;
    if (s.isSymbolicLink()) entry.linkname = await readLink(`${upper}/${c.path}`);
    let extraLinks: string[] = [];
    if (!s.isDirectory() && s.nlink > 1) {
      const inode = `${s.dev}:${s.ino}`;
      const source = inodeSource.get(inode);
      if (source !== undefined) {
        entry.type = 'hardlink';
        entry.linkname = source;
      } else {
        if (c.kind === 'unmodified') {
          inodeRefs.set(inode, [...(inodeRefs.get(inode) ?? []), c.path]);
          return;
        }
        inodeSource.set(inode, c.path);
        extraLinks = inodeRefs.get(inode) ?? [];
        inodeRefs.delete(inode);
      }
    } else if (c.kind === 'unmodified') {
      return;
    }
    // security.capability is the one xattr containerd's ChangeWriter keeps (on regular files).
    if (entry.type === 'file') {
      const caps = getXattrs(fsPath(`${upper}/${c.path}`), ['security.capability']);
      if (Object.keys(caps).length > 0) entry.xattrs = caps;
    }
    if (entry.type === 'file') {
      entry.size = s.size;
      if (s.size > 0) entry.body = fileBody(`${upper}/${c.path}`, s.size, signal);
    }
    await push(entry);
    for (const extra of extraLinks) {
      await push({ ...header(extra, s)!, name: extra, type: 'hardlink', linkname: c.path });
    }
  };

  for (const c of list) {
    await handle(c);
    // Entries go out one change at a time: a file body is read only when the writer gets to it.
    while (queue.length > 0) yield queue.shift()!;
  }
}

/** A file's bytes, opened when first read; exactly `size` of them or an error. */
async function* fileBody(path: string, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  let left = size;
  for await (const chunk of createReadStream(fsPath(path), { highWaterMark: 256 * 1024, signal })) {
    const c = chunk as Buffer;
    if (c.length > left) throw new Error(`diff: ${path} grew while it was being read`);
    left -= c.length;
    yield c;
  }
  if (left !== 0) throw new Error(`diff: ${path} shrank while it was being read`);
}
