import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdtemp, open, readlink, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FailedPrecondition, ResourceExhausted } from '@ctrd/api-proto/client';

// ctr reads a few files of an image's root filesystem itself (/etc/passwd and /etc/group to turn
// user names into ids), as containerd's ctr does: the snapshot's mounts go read-only on a private
// temp dir, the files are read, and the mounts come off again whatever happened. Paths inside the
// image are resolved against that root without ever following a symlink out of it.

const run = promisify(execFile);

export interface MountLike {
  type: string;
  source: string;
  options: string[];
}

function mountArgs(m: MountLike, target: string): string[] {
  const options = m.options.filter((o) => o !== 'rw' && o !== 'ro');
  const args: string[] = [];
  if (m.type === 'bind' || options.includes('bind') || options.includes('rbind')) {
    if (!options.includes('bind') && !options.includes('rbind')) options.unshift('bind');
  } else {
    args.push('-t', m.type === '' ? 'none' : m.type);
  }
  options.push('ro');
  args.push('-o', options.join(','), '--', m.source, target);
  return args;
}

/** Mounts `mounts` read-only on a fresh temp dir, runs `fn` with its path, then unmounts and removes it. */
export async function withReadOnlyMounts<T>(
  mounts: readonly MountLike[],
  fn: (root: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (mounts.length === 0) throw new FailedPrecondition('snapshot has no mounts to read');
  const dir = await mkdtemp(join(tmpdir(), 'ctr-mount-'));
  let mounted = 0;
  try {
    for (const m of mounts) {
      try {
        await run('mount', mountArgs(m, dir), { signal, timeout: 30_000 });
      } catch (err) {
        const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
        throw new FailedPrecondition(`mount ${m.type} ${m.source} read-only at ${dir}: ${msg}`, {
          cause: err,
        });
      }
      mounted++;
    }
    return await fn(dir);
  } finally {
    for (; mounted > 0; mounted--) {
      await run('umount', [dir], { timeout: 30_000 }).catch(() =>
        run('umount', ['-l', dir]).catch(() => undefined),
      );
    }
    await rmdir(dir).catch(() => undefined);
  }
}

const MAX_LINKS = 40;

/**
 * The host path of `path` inside `root`, with every symlink resolved inside root (an absolute
 * target restarts at root, `..` stops at root), like containerd's fs.RootPath. A missing final
 * component is fine; the path need not exist.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  let pending = path.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch {
      isLink = false;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new FailedPrecondition(`${path}: too many levels of symbolic links`);
    const target = await readlink(host);
    const parts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/')) done.length = 0;
    pending = [...parts, ...pending];
  }
  return join(root, ...done);
}

/**
 * Reads a regular file inside `root`; undefined when it does not exist. A file over `cap` bytes is
 * refused (an image's /etc/group of a gigabyte must not exhaust ctr).
 */
export async function readFileInRoot(root: string, path: string, cap: number): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new FailedPrecondition(`image ${path}: not a regular file`);
    if (st.size > cap)
      throw new ResourceExhausted(`image ${path}: ${st.size} bytes, over the limit of ${cap} bytes`);
    const buf = Buffer.alloc(cap + 1);
    let total = 0;
    while (total <= cap) {
      const { bytesRead } = await handle.read(buf, total, cap + 1 - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > cap) throw new ResourceExhausted(`image ${path}: over the limit of ${cap} bytes`);
    return buf.subarray(0, total).toString('utf8');
  } finally {
    await handle.close();
  }
}
