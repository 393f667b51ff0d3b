import { constants, lstatSync } from 'node:fs';
import { chmod, type FileHandle, lchown, link, lutimes, mkdir, open, symlink } from 'node:fs/promises';
import { FailedPrecondition, InvalidArgument, type Logger } from '@ctrd/api-proto';
import { encodeName, type TarEntry } from '@ctrd/api-proto/tar';
import { makedev, mknodat, S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/libc.js';
import { at, cleanComponents, type Dir, type RootDir } from './root-dir.js';
import { setEntryXattrs } from './xattrs.js';

// One writer per tar entry type. Each makes `base` in the resolved directory `parent` (nothing is
// in the way: apply.ts removed it) without following it, then sets owner, mode, xattrs and times
// on what it made, through its descriptor where it can be opened and by the no-follow calls
// where it cannot. Order matters: chown clears set-id bits and security.capability, so mode and
// xattrs come after it. Calls that change the tree go through the thread pool (a slow disk stalls
// a worker, not the daemon); lookups are synchronous.

/** Largest device numbers the kernel's 32-bit dev_t encoding keeps (12-bit major, 20-bit minor). */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;
/** Largest uid/gid: 2^32-1 means "unchanged" to chown. */
const MAX_ID = 2 ** 32 - 2;
/** Times are clamped to a range every filesystem call accepts (about ±1000 years). */
const MAX_TIME = 2 ** 35;

export interface EntryContext {
  root: RootDir;
  log: Logger;
  /** Device nodes are made ('create') or skipped with a warning ('skip'). */
  devices: 'create' | 'skip';
  /** Keep the caller's ownership instead of the tar's (containerd's NoSameOwner). */
  noSameOwner: boolean;
}

/** Makes the entry; false when it was skipped (a device node that may not be made here). */
export type EntryWriter = (
  ctx: EntryContext,
  parent: Dir,
  base: string,
  entry: TarEntry,
  what: string,
) => Promise<boolean>;

export function clampTime(t: number): number {
  return Math.max(-MAX_TIME, Math.min(MAX_TIME, t));
}

function owner(ctx: EntryContext, entry: TarEntry, what: string): { uid: number; gid: number } | undefined {
  if (ctx.noSameOwner) return undefined;
  for (const [k, v] of [
    ['uid', entry.uid],
    ['gid', entry.gid],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_ID)
      throw new InvalidArgument(`${what}: ${k} ${v} out of range`);
  }
  return { uid: entry.uid, gid: entry.gid };
}

/** Owner and mode through an open descriptor (regular files and directories). */
async function ownAndModeFd(ctx: EntryContext, fh: FileHandle, entry: TarEntry, what: string): Promise<void> {
  const o = owner(ctx, entry, what);
  if (o) await fh.chown(o.uid, o.gid);
  await fh.chmod(entry.mode);
}

/** Owner, mode, xattrs and times of a regular file open as `fh` (named by `path`). */
async function fileMetadata(
  ctx: EntryContext,
  fh: FileHandle,
  path: Buffer,
  entry: TarEntry,
  what: string,
): Promise<void> {
  await ownAndModeFd(ctx, fh, entry, what);
  setEntryXattrs(path, entry.xattrs, 'file', ctx.log, what);
  const t = clampTime(entry.mtime);
  await fh.utimes(t, t);
}

/**
 * Owner, mode, xattrs and times by the no-follow calls, for what cannot be opened safely
 * (symlinks, device nodes, fifos). A symlink's mode is left alone: Linux has no lchmod, and
 * chmod would follow it (the HardlinkSymlinkChmod breakout).
 */
async function metadataByPath(
  ctx: EntryContext,
  path: Buffer,
  entry: TarEntry,
  isSymlink: boolean,
  what: string,
): Promise<void> {
  const o = owner(ctx, entry, what);
  if (o) await lchown(path, o.uid, o.gid);
  if (!isSymlink) await chmod(path, entry.mode);
  setEntryXattrs(path, entry.xattrs, 'other', ctx.log, what);
  const t = clampTime(entry.mtime);
  await lutimes(path, t, t);
}

const writeDir: EntryWriter = async (ctx, parent, base, entry, what) => {
  const path = at(parent.fd, base);
  // An existing directory is merged into (apply.ts left it); otherwise made private until its
  // mode is set.
  if (!lstatSync(path, { throwIfNoEntry: false })) await mkdir(path, 0o700);
  const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await ownAndModeFd(ctx, fh, entry, what);
  } finally {
    await fh.close();
  }
  setEntryXattrs(path, entry.xattrs, 'dir', ctx.log, what);
  // Its times are set when the layer is done (apply.ts): later entries inside change them.
  return true;
};

const writeFile: EntryWriter = async (ctx, parent, base, entry, what) => {
  const path = at(parent.fd, base);
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
    if (written !== entry.size) throw new InvalidArgument(`${what}: ${written} of ${entry.size} bytes`);
    await fileMetadata(ctx, fh, path, entry, what);
  } finally {
    await fh.close();
  }
  return true;
};

const writeSymlink: EntryWriter = async (ctx, parent, base, entry, what) => {
  // Any target is allowed: it is the later lookups through it that resolution keeps inside.
  const path = at(parent.fd, base);
  await symlink(Buffer.from(encodeName(entry.linkname)), path);
  await metadataByPath(ctx, path, entry, true, what);
  return true;
};

const writeHardlink: EntryWriter = async (ctx, parent, base, entry, what) => {
  const comps = cleanComponents(entry.linkname);
  if (comps.length === 0) throw new InvalidArgument(`${what}: hardlink to the root directory`);
  const targetDir = ctx.root.dir(comps.slice(0, -1), what);
  if (!targetDir) throw new InvalidArgument(`${what}: hardlink target "${entry.linkname}" not found`);
  try {
    const target = at(targetDir.fd, comps[comps.length - 1]!);
    const st = lstatSync(target, { throwIfNoEntry: false });
    if (!st) throw new InvalidArgument(`${what}: hardlink target "${entry.linkname}" not found`);
    if (st.isDirectory()) throw new InvalidArgument(`${what}: hardlink to a directory`);
    // link(2) does not follow a symlink it is given: the link names the symlink itself.
    const path = at(parent.fd, base);
    await link(target, path);
    if (st.isFile()) {
      const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        await fileMetadata(ctx, fh, path, entry, what);
      } finally {
        await fh.close();
      }
    } else {
      await metadataByPath(ctx, path, entry, st.isSymbolicLink(), what);
    }
  } finally {
    targetDir.close();
  }
  return true;
};

const writeNode: EntryWriter = async (ctx, parent, base, entry, what) => {
  let type = S_IFIFO;
  let dev = 0;
  if (entry.type !== 'fifo') {
    if (entry.devmajor > MAX_MAJOR || entry.devminor > MAX_MINOR) {
      throw new InvalidArgument(
        `${what}: device ${entry.devmajor}:${entry.devminor} out of range (major <= ${MAX_MAJOR}, minor <= ${MAX_MINOR})`,
      );
    }
    if (ctx.devices === 'skip') {
      ctx.log.warn(
        { name: entry.name },
        'apply layer: device node skipped (not privileged or in a user namespace)',
      );
      return false;
    }
    type = entry.type === 'chardev' ? S_IFCHR : S_IFBLK;
    dev = makedev(entry.devmajor, entry.devminor);
  }
  try {
    mknodat(parent.fd, encodeName(base), type | (entry.mode & 0o7777), dev);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (entry.type !== 'fifo' && code === 'EPERM') {
      ctx.log.warn({ name: entry.name }, 'apply layer: device node skipped (mknod not permitted)');
      return false;
    }
    throw new FailedPrecondition(`${what}: mknod: ${code}`, { cause: e });
  }
  await metadataByPath(ctx, at(parent.fd, base), entry, false, what);
  return true;
};

export const writers: Readonly<Record<TarEntry['type'], EntryWriter>> = {
  dir: writeDir,
  file: writeFile,
  symlink: writeSymlink,
  hardlink: writeHardlink,
  fifo: writeNode,
  chardev: writeNode,
  blockdev: writeNode,
};
