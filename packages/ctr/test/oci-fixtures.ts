import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { MediaType } from '@ctrd/api-proto/oci';
import { type TarWriteEntry, writeTar } from '@ctrd/api-proto/tar';

// Small images built in memory for ctr's image tests: layers as gzip tars, a config, a manifest,
// and archives in the OCI layout or `docker save` shape.

export const sha = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export async function tarBytes(entries: TarWriteEntry[]): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of writeTar(entries)) parts.push(chunk);
  return Buffer.concat(parts);
}

export interface Layer {
  tar: Buffer;
  gz: Buffer;
  diffId: string;
  digest: string;
}

export async function layer(files: Record<string, string>): Promise<Layer> {
  const entries: TarWriteEntry[] = [];
  const dirs = new Set<string>();
  for (const [name, body] of Object.entries(files)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ name: dir, type: 'dir', mode: 0o755 });
      }
    }
    entries.push({ name, type: 'file', mode: 0o644, body: Buffer.from(body) });
  }
  const tar = await tarBytes(entries);
  const gz = gzipSync(tar);
  return { tar, gz, diffId: sha(tar), digest: sha(gz) };
}

export interface TestImage {
  blobs: Map<string, Buffer>;
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layers: Layer[];
}

export function image(
  layers: Layer[],
  runConfig: Record<string, unknown> = { Cmd: ['sh'] },
  opts: { architecture?: string; diffIds?: string[]; extraLayers?: number } = {},
): TestImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture:
        opts.architecture ?? { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64'] ?? process.arch,
      os: 'linux',
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map((l) => l.diffId) },
    }),
  );
  const layerDescs = layers.map((l) => ({
    mediaType: MediaType.ociLayerGzip,
    digest: l.digest,
    size: l.gz.length,
  }));
  for (let i = 0; i < (opts.extraLayers ?? 0); i++) layerDescs.push(layerDescs[0]!);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
      layers: layerDescs,
    }),
  );
  const blobs = new Map<string, Buffer>();
  blobs.set(sha(config), config);
  blobs.set(sha(manifest), manifest);
  for (const l of layers) blobs.set(l.digest, l.gz);
  return { blobs, manifest, manifestDigest: sha(manifest), config, configDigest: sha(config), layers };
}

/** An OCI layout tar: oci-layout, index.json naming the image, blobs/sha256/*. */
export async function ociArchive(
  img: TestImage,
  annotations: Record<string, string>,
  opts: { corrupt?: string } = {},
): Promise<Buffer> {
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: img.manifestDigest,
        size: img.manifest.length,
        annotations,
      },
    ],
  };
  const entries: TarWriteEntry[] = [
    { name: 'oci-layout', type: 'file', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', type: 'file', body: Buffer.from(JSON.stringify(index)) },
  ];
  for (const [digest, data] of img.blobs) {
    const body = digest === opts.corrupt ? Buffer.concat([data, Buffer.from('x')]) : data;
    entries.push({ name: `blobs/sha256/${digest.slice(7)}`, type: 'file', body });
  }
  return tarBytes(entries);
}

/** A `docker save` tar of the classic layout: <id>/layer.tar, <config hex>.json, manifest.json. */
export async function dockerArchive(img: TestImage, tags: string[]): Promise<Buffer> {
  const entries: TarWriteEntry[] = [];
  const layerPaths: string[] = [];
  img.layers.forEach((l, i) => {
    const path = `layer${i}/layer.tar`;
    layerPaths.push(path);
    entries.push({ name: `layer${i}/`, type: 'dir' }, { name: path, type: 'file', body: l.tar });
  });
  const configName = `${img.configDigest.slice(7)}.json`;
  entries.push({ name: configName, type: 'file', body: img.config });
  entries.push({
    name: 'manifest.json',
    type: 'file',
    body: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: tags, Layers: layerPaths }])),
  });
  return tarBytes(entries);
}
