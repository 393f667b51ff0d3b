// Builds OCI images as archives for the image tests, the registry tests and the README demo: a
// directory becomes a gzip layer written with our TarWriter, an image config (Cmd, Env,
// WorkingDir, ...), a manifest, and an OCI image layout tar (oci-layout, index.json naming the
// image, blobs/sha256/*) that `ctr images import` (ours or containerd's) reads. Plain ESM on the
// built @ctrd/api-proto, so `node e2e/test/helpers/oci-image-cli.mjs` runs it without a build of
// the tests. The lower-level pieces (layers from entries, raw archives) let tests make bad images.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MediaType } from '@ctrd/api-proto/oci';
import { writeTar } from '@ctrd/api-proto/tar';

const run = promisify(execFile);

export const sha256 = (data) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The host's platform in OCI names. */
export function hostPlatform() {
  const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }[
    process.arch
  ];
  return { os: 'linux', architecture: arch ?? process.arch };
}

/** The bytes of a tar of `entries` (TarWriteEntry objects). */
export async function tarBytes(entries) {
  const parts = [];
  for await (const chunk of writeTar(entries)) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Tar entries for everything under `root` (names relative, dirs with a trailing slash), sorted. */
export async function dirEntries(root) {
  const out = [];
  const walk = async (rel) => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, path));
      const common = { mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        out.push({ name: `${path}/`, type: 'dir', ...common });
        await walk(path);
      } else if (st.isSymbolicLink()) {
        out.push({ name: path, type: 'symlink', linkname: await readlink(join(root, path)), ...common });
      } else if (st.isFile()) {
        out.push({ name: path, type: 'file', body: await readFile(join(root, path)), ...common });
      }
    }
  };
  await walk('');
  return out;
}

/** A gzip layer from an uncompressed tar: its descriptor and diff id. */
export function makeLayer(tar, mediaType = MediaType.ociLayerGzip) {
  const gz = mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip') ? gzipSync(tar) : tar;
  return { tar, blob: gz, diffId: sha256(tar), desc: { mediaType, digest: sha256(gz), size: gz.length } };
}

/**
 * An image from layers: config (run config merged in, diff ids unless overridden), manifest, and
 * every blob by digest. `manifestExtra` is merged into the manifest JSON (to build bad ones).
 */
export function makeImage({
  layers,
  config = {},
  platform = hostPlatform(),
  diffIds,
  layerDescs,
  manifestExtra = {},
}) {
  const configBytes = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config,
      rootfs: { type: 'layers', diff_ids: diffIds ?? layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'oci-image.mjs' })),
    }),
  );
  const configDesc = {
    mediaType: MediaType.ociConfig,
    digest: sha256(configBytes),
    size: configBytes.length,
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: configDesc,
      layers: layerDescs ?? layers.map((l) => l.desc),
      ...manifestExtra,
    }),
  );
  const blobs = new Map([[configDesc.digest, configBytes]]);
  for (const l of layers) blobs.set(l.desc.digest, l.blob);
  const manifestDesc = { mediaType: MediaType.ociManifest, digest: sha256(manifest), size: manifest.length };
  blobs.set(manifestDesc.digest, manifest);
  return { blobs, manifest, manifestDesc, config: configBytes, configDesc, layers };
}

/** The tag of a full name (`docker.io/library/busybox:1` → `1`), as containerd's exporter writes it. */
export function refName(name) {
  const at = name.indexOf('@');
  const base = at === -1 ? name : name.slice(0, at);
  const colon = base.lastIndexOf(':');
  return colon > base.lastIndexOf('/') ? base.slice(colon + 1) : 'latest';
}

/**
 * An OCI image layout tar of `images` ([{image, name}]); each index.json entry names its image in
 * io.containerd.image.name and org.opencontainers.image.ref.name. `corrupt` names a digest whose
 * blob is written with one byte changed (a digest mismatch in the archive).
 */
export async function ociLayoutTar(images, { corrupt, extraBlobs = new Map(), annotations } = {}) {
  const blobs = new Map(extraBlobs);
  for (const { image } of images) for (const [d, b] of image.blobs) blobs.set(d, b);
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map(({ image, name }) => ({
      ...image.manifestDesc,
      annotations: annotations ?? {
        'io.containerd.image.name': name,
        'org.opencontainers.image.ref.name': refName(name),
      },
    })),
  };
  const entries = [
    { name: 'oci-layout', type: 'file', mode: 0o644, body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', type: 'file', mode: 0o644, body: Buffer.from(JSON.stringify(index)) },
    { name: 'blobs/', type: 'dir', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'dir', mode: 0o755 },
  ];
  for (const [digest, data] of blobs) {
    let body = data;
    if (digest === corrupt) {
      body = Buffer.from(data);
      body[body.length - 1] ^= 0xff;
    }
    entries.push({ name: `blobs/sha256/${digest.slice('sha256:'.length)}`, type: 'file', mode: 0o644, body });
  }
  return tarBytes(entries);
}

/** A root filesystem holding /bin/busybox with its applets, /etc/passwd and /etc/group. */
export async function busyboxRootfs(dir, busybox = '/bin/busybox') {
  await mkdir(join(dir, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc', 'root'])
    await mkdir(join(dir, d), { recursive: true });
  await copyFile(busybox, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  const { stdout } = await run(busybox, ['--list']);
  for (const name of stdout.split('\n')) {
    if (name !== '' && name !== 'busybox') await symlink('busybox', join(dir, 'bin', name)).catch(() => {});
  }
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\n');
}

/** The run config the demo image gets unless one is given. */
export const DEFAULT_CONFIG = {
  Cmd: ['sh', '-c', 'echo "$GREETING from $(pwd)"'],
  Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello'],
  WorkingDir: '/srv',
};

/**
 * A one-layer busybox image from the directory `rootfs` (built with busyboxRootfs or the e2e
 * builder), with `config` as its run config; returns the image (see makeImage).
 */
export async function busyboxImageFromDir(rootfs, config = DEFAULT_CONFIG) {
  await mkdir(join(rootfs, (config.WorkingDir ?? '/').slice(1)), { recursive: true });
  const layer = makeLayer(await tarBytes(await dirEntries(rootfs)));
  return makeImage({ layers: [layer], config });
}

/** Writes a busybox OCI archive for `name` to `out`, building the rootfs in a temp dir. */
export async function writeBusyboxImageTar(out, name, config = DEFAULT_CONFIG) {
  const dir = await mkdtemp(join(tmpdir(), 'oci-image-'));
  try {
    await busyboxRootfs(dir);
    const image = await busyboxImageFromDir(dir, config);
    await writeFile(out, await ociLayoutTar([{ image, name }]));
    return image;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
