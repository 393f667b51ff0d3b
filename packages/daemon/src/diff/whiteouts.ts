import { closeSync, constants, lstatSync, openSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { InvalidArgument } from '@ctrd/api-proto';
import { decodeName } from '@ctrd/api-proto/tar';
import { O_PATH } from '../sys/libc.js';
import { at, type Dir } from './root-dir.js';

// Whiteouts (OCI image spec, "Representing Changes"): `.wh.<name>` removes <name> from the
// lower layers; `.wh..wh..opq` empties its directory of everything the lower layers put there,
// keeping what this layer has already unpacked into it. Both work on a directory descriptor
// resolved inside the root, and every removal also leaves the bookkeeping of what this layer
// unpacked, so nothing keyed by a removed path survives it.

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE = '.wh..wh..opq';

/** The paths (as the kernel names them) this layer has made so far. */
export class UnpackedPaths {
  private readonly paths = new Set<string>();

  add(path: string): void {
    this.paths.add(path);
  }

  has(path: string): boolean {
    return this.paths.has(path);
  }

  /**
   * Forgets `path` and, when it was a directory, everything below it (a walk of all the paths:
   * only directories pay for it, so a layer of many whiteouts of files stays linear).
   */
  forget(path: string, wasDirectory: boolean): void {
    this.paths.delete(path);
    if (!wasDirectory) return;
    const prefix = `${path}/`;
    for (const p of this.paths) if (p.startsWith(prefix)) this.paths.delete(p);
  }
}

/** Removes `name` (and all below it) from `dir`, if it is there. */
export async function removeEntry(dir: Dir, name: string, unpacked: UnpackedPaths): Promise<void> {
  const st = lstatSync(at(dir.fd, name), { throwIfNoEntry: false });
  if (!st) return;
  await rm(at(dir.fd, name), { recursive: true, force: true });
  unpacked.forget(`${dir.path}/${name}`, st.isDirectory());
}

/** The name a `.wh.` entry removes; refuses names that would remove the directory or a parent. */
export function whiteoutTarget(base: string, what: string): string {
  const original = base.slice(WHITEOUT_PREFIX.length);
  if (original === '' || original === '.' || original === '..') {
    throw new InvalidArgument(
      `${what}: invalid whiteout name: it would remove its own directory or a parent`,
    );
  }
  return original;
}

/** Empties `dir` of everything this layer did not unpack, at any depth. */
export async function opaque(dir: Dir, unpacked: UnpackedPaths): Promise<void> {
  const walk = async (fd: number, path: string): Promise<void> => {
    for (const raw of readdirSync(at(fd), { encoding: 'buffer' })) {
      const name = decodeName(raw);
      const p = `${path}/${name}`;
      const isDirectory = lstatSync(at(fd, name)).isDirectory();
      if (!unpacked.has(p)) {
        await rm(at(fd, name), { recursive: true, force: true });
        // A lower directory may hold what this layer has unpacked into it.
        unpacked.forget(p, isDirectory);
        continue;
      }
      if (!isDirectory) continue;
      const child = openSync(at(fd, name), O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        await walk(child, p);
      } finally {
        closeSync(child);
      }
    }
  };
  await walk(dir.fd, dir.path);
}
