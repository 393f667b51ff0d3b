// Image archives for e2e tests: the builders of oci-image.mjs, plus a busybox image whose rootfs
// comes from the shared e2e builder (helpers/rootfs.ts), so images match the bundles other suites run.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BuiltImage,
  busyboxImageFromDir,
  DEFAULT_CONFIG,
  ociLayoutTar,
  type RunConfig,
} from './oci-image.mjs';
import { buildBusyboxRootfs } from './rootfs.js';

export * from './oci-image.mjs';

/** A one-layer busybox image (rootfs from buildBusyboxRootfs) with `config` as its run config. */
export async function busyboxImage(config: RunConfig = DEFAULT_CONFIG): Promise<BuiltImage> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-rootfs-'));
  try {
    await buildBusyboxRootfs(dir);
    return await busyboxImageFromDir(dir, config);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes an OCI layout tar of a busybox image named `name` to `out`; returns the image. */
export async function busyboxImageTar(
  out: string,
  name: string,
  config: RunConfig = DEFAULT_CONFIG,
): Promise<BuiltImage> {
  const image = await busyboxImage(config);
  await writeFile(out, await ociLayoutTar([{ image, name }]));
  return image;
}
