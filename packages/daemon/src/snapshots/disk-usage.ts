import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';

// What a snapshot's own files take on disk, counted as containerd's fs.DiskUsage counts it: every
// inode once (hard links share one), its allocated 512-byte blocks, the top directory included.

export interface Usage {
  size: number;
  inodes: number;
}

const statOf = (path: string) => lstat(path, { bigint: true });

export async function diskUsage(root: string, signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (path: string, top: boolean): Promise<void> => {
    signal?.throwIfAborted();
    let st: Awaited<ReturnType<typeof statOf>>;
    try {
      st = await statOf(path);
    } catch (e) {
      // A file of an active snapshot removed while we walk: it no longer takes space.
      if (!top && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      size += Number(st.blocks) * 512;
    }
    if (!st.isDirectory()) return;
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(path);
    } catch (e) {
      if (!top && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for await (const e of dir) await visit(join(path, e.name), false);
  };
  await visit(root, true);
  return { size, inodes: seen.size };
}
