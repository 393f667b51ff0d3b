import { mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExists, FailedPrecondition } from '@ctrd/api-proto';

// Bundles: state/bundles/<ns>/<id>, 0700, holding config.json (the stored spec's bytes, never
// re-encoded), rootfs/ (mounted by the shim), and what restart recovery needs: the shim's address
// and id.
//
// Creating and removing a bundle is a handful of small-file calls under the state dir (a tmpfs,
// /run/ctrd, by default), made synchronously: each takes microseconds, where the same calls through
// libuv's thread pool cost a round trip apiece, about 2 ms of every Tasks.Create at C=1.

export const ADDRESS_FILE = 'address';
export const SHIM_ID_FILE = 'shim-id';

export function bundlesDir(stateDir: string): string {
  return join(stateDir, 'bundles');
}

export function bundlePath(stateDir: string, namespace: string, id: string): string {
  return join(bundlesDir(stateDir), namespace, id);
}

export async function createBundle(
  stateDir: string,
  namespace: string,
  id: string,
  spec: Uint8Array,
): Promise<string> {
  mkdirSync(join(bundlesDir(stateDir), namespace), { recursive: true, mode: 0o711 });
  const path = bundlePath(stateDir, namespace, id);
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new AlreadyExists(`task ${id}: bundle ${path} already exists`, { cause: e });
    throw e;
  }
  try {
    writeFileSync(join(path, 'config.json'), spec, { mode: 0o600 });
    mkdirSync(join(path, 'rootfs'), { mode: 0o711 });
  } catch (e) {
    rmSync(path, { recursive: true, force: true });
    throw e;
  }
  return path;
}

export async function writeShimRecord(bundle: string, shimId: string, address: string): Promise<void> {
  writeFileSync(join(bundle, ADDRESS_FILE), address, { mode: 0o600 });
  writeFileSync(join(bundle, SHIM_ID_FILE), shimId, { mode: 0o600 });
}

export interface BundleRecord {
  namespace: string;
  id: string;
  path: string;
  shimId: string | undefined;
  address: string | undefined;
}

const readOptional = (p: string): Promise<string | undefined> =>
  readFile(p, 'utf8').then(
    (s) => s.trim() || undefined,
    () => undefined,
  );

/**
 * Every bundle on disk (restart recovery). The small files are read side by side: one after the
 * other, 1000 tasks meant 2000 awaited reads before the daemon could serve.
 */
export async function listBundles(stateDir: string): Promise<BundleRecord[]> {
  const root = bundlesDir(stateDir);
  const namespaces = await readdir(root, { withFileTypes: true }).catch(() => []);
  const perNamespace = await Promise.all(
    namespaces
      .filter((ns) => ns.isDirectory())
      .map(async (ns) => {
        const ids = await readdir(join(root, ns.name), { withFileTypes: true }).catch(() => []);
        return Promise.all(
          ids
            .filter((id) => id.isDirectory())
            .map(async (id): Promise<BundleRecord> => {
              const path = join(root, ns.name, id.name);
              const [shimId, address] = await Promise.all([
                readOptional(join(path, SHIM_ID_FILE)),
                readOptional(join(path, ADDRESS_FILE)),
              ]);
              return { namespace: ns.name, id: id.name, path, shimId, address };
            }),
        );
      }),
  );
  return perNamespace.flat();
}

/**
 * Removes a bundle. rootfs/ goes first with rmdir, which fails on a mount point or a non-empty
 * dir, so a rootfs still mounted is never walked into and its files never deleted.
 */
export async function removeBundle(path: string): Promise<void> {
  try {
    rmdirSync(join(path, 'rootfs'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT')
      throw new FailedPrecondition(
        `bundle ${path}: rootfs is still mounted or not empty (${code}): unmount it, then delete the task again`,
        { cause: e },
      );
  }
  rmSync(path, { recursive: true, force: true });
}
