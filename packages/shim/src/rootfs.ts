import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountCommand } from '@ctrd/api-proto/mount';

// The rootfs mounts of a Create request (a snapshot: one overlay, or a bind) are mounted at
// bundle/rootfs with mount(8), which knows every type and option syntax, and unmounted when the task
// is deleted or its creation fails.

const run = promisify(execFile);

export interface MountSpec {
  type: string;
  source: string;
  target?: string;
  options: string[];
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
      // An overlay over a long chain is made to fit the kernel's one page of mount data.
      const { args, cwd } = mountCommand(m, target);
      await run('mount', args, { signal, timeout: 30_000, ...(cwd ? { cwd } : {}) });
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

/** Unmounts everything stacked at bundle/rootfs (lazily if busy); a no-op when nothing is mounted. */
export async function unmountRootfs(bundle: string, signal?: AbortSignal): Promise<void> {
  const target = rootfsPath(bundle);
  for (let i = 0; i < 16 && (await isMounted(target)); i++) {
    try {
      await run('umount', [target], { signal, timeout: 30_000 });
    } catch {
      await run('umount', ['-l', target], { signal, timeout: 30_000 });
    }
  }
}
