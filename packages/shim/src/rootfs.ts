import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { COMPACT_AT, mountCommand } from '@ctrd/api-proto/mount';
import { EBUSY, EINVAL, ENOENT, MNT_DETACH, mount, umount2 } from './sys.js';

// The rootfs mounts of a Create request (a snapshot: one overlay, or a bind) are mounted at
// bundle/rootfs, and unmounted when the task is deleted or its creation fails. An overlay is mounted
// with mount(2), its options split the way mount(8) and containerd split them: flag words become
// mount flags, the rest is the filesystem's data. Other types, options that mount(8) treats itself
// (bind, remount, loop, propagation, x-*), and an overlay whose data comes near the kernel's one
// page go through mount(8), which knows every type and runs from the lowerdirs' common directory.
// Starting mount(8) cost a fork of the shim and a libmount read of the whole mount table per start.

const run = promisify(execFile);

export interface MountSpec {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

const MS_RDONLY = 1;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_SYNCHRONOUS = 16;
const MS_MANDLOCK = 64;
const MS_DIRSYNC = 128;
const MS_NOATIME = 1024;
const MS_NODIRATIME = 2048;
const MS_RELATIME = 1 << 21;
const MS_STRICTATIME = 1 << 24;

/** mount(8)'s flag words: the flag each sets, or (negative) clears. */
const FLAG_WORDS: Record<string, number> = {
  ro: MS_RDONLY,
  rw: -MS_RDONLY,
  nosuid: MS_NOSUID,
  suid: -MS_NOSUID,
  nodev: MS_NODEV,
  dev: -MS_NODEV,
  noexec: MS_NOEXEC,
  exec: -MS_NOEXEC,
  sync: MS_SYNCHRONOUS,
  async: -MS_SYNCHRONOUS,
  mand: MS_MANDLOCK,
  nomand: -MS_MANDLOCK,
  dirsync: MS_DIRSYNC,
  noatime: MS_NOATIME,
  atime: -MS_NOATIME,
  nodiratime: MS_NODIRATIME,
  diratime: -MS_NODIRATIME,
  relatime: MS_RELATIME,
  norelatime: -MS_RELATIME,
  strictatime: MS_STRICTATIME,
  nostrictatime: -MS_STRICTATIME,
};

/** Words mount(8) acts on itself rather than passing to the kernel. */
const MOUNT8_WORDS = new Set([
  'bind',
  'rbind',
  'remount',
  'move',
  'loop',
  'shared',
  'rshared',
  'private',
  'rprivate',
  'slave',
  'rslave',
  'unbindable',
  'runbindable',
]);

/** How `m` is mounted with mount(2), or undefined when it is left to mount(8). */
export function directMount(m: MountSpec): { flags: number; data: string } | undefined {
  if (m.type !== 'overlay') return undefined;
  let flags = 0;
  const data: string[] = [];
  for (const o of m.options) {
    const f = FLAG_WORDS[o];
    if (f !== undefined) {
      flags = f > 0 ? flags | f : flags & ~-f;
      continue;
    }
    if (o === 'defaults') continue;
    if (MOUNT8_WORDS.has(o) || /^x-/i.test(o)) return undefined;
    data.push(o);
  }
  const joined = data.join(',');
  // Data near a page goes through mount(8), which runs where the lowerdirs can be shortened.
  if (joined.length >= COMPACT_AT) return undefined;
  return { flags, data: joined };
}

export function rootfsPath(bundle: string): string {
  return join(bundle, 'rootfs');
}

/** Mounts each of `mounts` in order at bundle/rootfs; on failure undoes the ones already done. */
export async function mountRootfs(bundle: string, mounts: MountSpec[], signal?: AbortSignal): Promise<void> {
  if (mounts.length === 0) return;
  const target = rootfsPath(bundle);
  await mkdir(target, { recursive: true, mode: 0o711 });
  let done = 0;
  try {
    for (const m of mounts) {
      signal?.throwIfAborted();
      const direct = directMount(m);
      if (direct) {
        await mount(m.source === '' ? 'overlay' : m.source, target, 'overlay', direct.flags, direct.data);
      } else {
        const { args, cwd } = mountCommand(m, target);
        await run('mount', args, { signal, timeout: 30_000, ...(cwd ? { cwd } : {}) });
      }
      done++;
    }
  } catch (e) {
    for (let i = 0; i < done; i++) await unmountRootfs(bundle).catch(() => {});
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new Error(`mount rootfs at ${target}: ${msg}`, { cause: e });
  }
}

/** True when something is mounted at `path` (per /proc/self/mountinfo). */
export async function isMounted(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp !== undefined && unescapeMountinfo(mp) === path) return true;
  }
  return false;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/**
 * Unmounts everything stacked at bundle/rootfs (a busy one lazily); a no-op when nothing is mounted
 * there. umount2(2) says EINVAL once the path is no longer a mount point, so the mount table is
 * never read.
 */
export async function unmountRootfs(bundle: string, signal?: AbortSignal): Promise<void> {
  const target = rootfsPath(bundle);
  for (let i = 0; i < 16; i++) {
    signal?.throwIfAborted();
    try {
      await umount2(target, 0);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).errno;
      if (errno === EINVAL || errno === ENOENT) return;
      if (errno !== EBUSY) throw e;
      await umount2(target, MNT_DETACH);
    }
  }
}
