import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { finished } from 'node:stream/promises';
import { FailedPrecondition, InvalidArgument, isNotFound, ResourceExhausted } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import {
  Annotation,
  type Descriptor,
  isIndexType,
  isManifestType,
  isNonDistributableLayer,
  isValidReference,
  MAX_INDEX_DEPTH,
  MediaType,
  normalizeReference,
  type Platform,
  parseDigest,
  parseImageLayout,
  parseIndex,
  platformRank,
  sha256Digest,
} from '@ctrd/api-proto/oci';
import { decompressStream, detectCompression, readTar } from '@ctrd/api-proto/tar';
import type { Clients } from '../clients.js';
import { blobInfo, readBlob, updateBlobLabels, writeBlob } from './content-io.js';
import { childGcLabels, readConfig, readIndex, readManifest, toProto } from './resolve.js';
import { callOptions } from './with-lease.js';

// `ctr images import`: an OCI image layout or a `docker save` archive, read as one tar stream.
// Blobs are written to the content store as they stream past (the daemon checks each digest);
// the small JSON files are kept (bounded), and files of the old docker layout are spooled to a
// temp dir so their digests can be computed. Only when the whole archive has been read and every
// image it names has been walked and checked are image records created: a bad archive leaves no
// image behind, and the blobs it did write are held by nothing but the caller's lease.

/** Largest index.json, manifest.json, repositories or legacy config accepted (containerd: 20 MiB). */
export const MAX_IMPORT_JSON = 20 * 1024 * 1024;
/** Most non-blob files of an archive kept or spooled. */
const MAX_OTHER_FILES = 4096;

export interface ImportOptions {
  lease: string;
  /** `--base-name`: names without a repository get it; full names not under it are dropped. */
  baseName?: string;
  /** `--index-name`: also name the whole index.json. */
  indexName?: string;
  /** Check content for every platform, not only `platform`. */
  allPlatforms?: boolean;
  platform: Platform;
  signal?: AbortSignal;
  progress?: (line: string) => void;
  /** Date used in the default `import-YYYY-MM-DD` prefix. */
  now?: Date;
}

export interface ImportedImage {
  name: string;
  target: Descriptor;
  /** The name was new (not an update of an existing image). */
  created: boolean;
}

interface Spooled {
  path: string;
  digest: string;
  size: number;
}

interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function cleanPath(name: string): string {
  return posix.normalize(`/${name}`).slice(1);
}

const BLOB_PATH = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/;

async function collect(source: AsyncIterable<Uint8Array>, cap: number, what: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > cap) throw new ResourceExhausted(`${what}: over the limit of ${cap} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

async function spool(
  source: AsyncIterable<Uint8Array>,
  path: string,
): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  const out = createWriteStream(path, { mode: 0o600 });
  let size = 0;
  try {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.byteLength;
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  } finally {
    out.end();
    await finished(out);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function* fileChunks(path: string): AsyncIterable<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
}

async function* bytes(data: Uint8Array): AsyncIterable<Uint8Array> {
  yield data;
}

function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new InvalidArgument(`${what}: invalid json: ${(err as Error).message}`, { cause: err });
  }
}

function parseDockerManifest(data: Buffer): DockerManifestEntry[] {
  const doc = parseJson(data, 'manifest.json');
  if (!Array.isArray(doc)) throw new InvalidArgument('manifest.json: want an array of images');
  return doc.map((e, i) => {
    const what = `manifest.json entry ${i}`;
    if (typeof e !== 'object' || e === null) throw new InvalidArgument(`${what}: want an object`);
    const { Config, RepoTags, Layers } = e as Record<string, unknown>;
    if (typeof Config !== 'string') throw new InvalidArgument(`${what}: Config must be a string`);
    const tags = RepoTags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
      throw new InvalidArgument(`${what}: RepoTags must be an array of strings`);
    }
    if (!Array.isArray(Layers) || Layers.some((l) => typeof l !== 'string')) {
      throw new InvalidArgument(`${what}: Layers must be an array of strings`);
    }
    return { Config, RepoTags: tags as string[], Layers: Layers as string[] };
  });
}

/** containerd's refTranslator: `tag` → `<prefix>:tag`; a full name is kept (with --base-name, only under it). */
export function translateRefName(ref: string, prefix: string, filter: boolean): string | undefined {
  if (/[/:@]/.test(ref)) {
    if (filter && !(ref.startsWith(prefix) && /^[:@]/.test(ref.slice(prefix.length)))) return undefined;
    return ref;
  }
  return `${prefix}:${ref}`;
}

/** The image name of an index.json entry: containerd's annotation, else the OCI ref name translated. */
export function entryName(desc: Descriptor, prefix: string, filter: boolean): string | undefined {
  const full = desc.annotations?.[Annotation.imageName];
  if (full) return full;
  const ref = desc.annotations?.[Annotation.refName];
  return ref ? translateRefName(ref, prefix, filter) : undefined;
}

export class ArchiveImporter {
  readonly #clients: Clients;
  readonly #opts: ImportOptions;
  readonly #written = new Map<string, number>();
  readonly #json = new Map<string, Buffer>();
  readonly #spooled = new Map<string, Spooled>();
  #tmp: string | undefined;

  constructor(clients: Clients, opts: ImportOptions) {
    this.#clients = clients;
    this.#opts = opts;
  }

  /** Reads the archive, writes its blobs and creates (or updates) its images; returns them. */
  async import(source: AsyncIterable<Uint8Array>): Promise<ImportedImage[]> {
    try {
      await this.#read(source);
      const images = await this.#images();
      if (images.length === 0)
        throw new InvalidArgument(
          'archive: no image names found (use --base-name or --index-name to name them)',
        );
      for (const img of images) await this.#check(img);
      return await this.#record(images);
    } finally {
      if (this.#tmp) await rm(this.#tmp, { recursive: true, force: true });
    }
  }

  async #read(source: AsyncIterable<Uint8Array>): Promise<void> {
    const { signal } = this.#opts;
    let others = 0;
    for await (const entry of readTar(decompressStream(source, { signal }), {
      signal,
      allowMissingEnd: true,
    })) {
      if (entry.type !== 'file') continue;
      const path = cleanPath(entry.name);
      const blob = BLOB_PATH.exec(path);
      if (blob) {
        const digest = `${blob[1]}:${blob[2]}`;
        parseDigest(digest, `archive entry ${path}`);
        if (this.#written.has(digest)) continue;
        const res = await writeBlob(
          this.#clients,
          { ref: `import-${digest}`, digest, size: entry.size },
          entry.body,
          { signal, lease: this.#opts.lease, abortOnError: true },
        ).catch((err: unknown) => {
          throw new FailedPrecondition(`archive entry ${path}: ${(err as Error).message}`, { cause: err });
        });
        this.#written.set(digest, res.size);
        continue;
      }
      if (++others > MAX_OTHER_FILES)
        throw new ResourceExhausted(`archive: more than ${MAX_OTHER_FILES} files outside blobs/`);
      if (path.endsWith('.json') || path === 'oci-layout' || path === 'repositories') {
        this.#json.set(path, await collect(entry.body, MAX_IMPORT_JSON, `archive entry ${path}`));
      } else if (path.endsWith('.tar') || path.endsWith('.tar.gz')) {
        this.#tmp ??= await mkdtemp(join(tmpdir(), 'ctr-import-'));
        const file = join(this.#tmp, String(others));
        this.#spooled.set(path, { path: file, ...(await spool(entry.body, file)) });
      }
    }
  }

  async #writeFromArchive(path: string, mediaType: string): Promise<Descriptor> {
    const json = this.#json.get(path);
    if (json) {
      const digest = sha256Digest(json);
      if (!this.#written.has(digest)) {
        await writeBlob(this.#clients, { ref: `import-${digest}`, digest, size: json.length }, bytes(json), {
          lease: this.#opts.lease,
          signal: this.#opts.signal,
          abortOnError: true,
        });
        this.#written.set(digest, json.length);
      }
      return { mediaType, digest, size: json.length };
    }
    const file = this.#spooled.get(path);
    if (!file) throw new InvalidArgument(`archive: ${path} is named in manifest.json but not in the archive`);
    if (!this.#written.has(file.digest)) {
      await writeBlob(
        this.#clients,
        { ref: `import-${file.digest}`, digest: file.digest, size: file.size },
        fileChunks(file.path),
        {
          lease: this.#opts.lease,
          signal: this.#opts.signal,
          abortOnError: true,
        },
      );
      this.#written.set(file.digest, file.size);
    }
    return { mediaType, digest: file.digest, size: file.size };
  }

  /** A blob path of the archive (`blobs/sha256/<hex>`) or a legacy file, as a descriptor of `mediaType`. */
  async #archiveDescriptor(path: string, mediaType: string): Promise<Descriptor> {
    const clean = cleanPath(path);
    const blob = BLOB_PATH.exec(clean);
    if (blob) {
      const digest = `${blob[1]}:${blob[2]}`;
      const size = this.#written.get(digest);
      if (size === undefined)
        throw new InvalidArgument(`archive: ${clean} is named in manifest.json but not in the archive`);
      return { mediaType, digest, size };
    }
    return this.#writeFromArchive(clean, mediaType);
  }

  async #layerMediaType(path: string): Promise<string> {
    const clean = cleanPath(path);
    const blob = BLOB_PATH.exec(clean);
    const head = new Uint8Array(8);
    let headLength = 0;
    if (blob) {
      for await (const chunk of readBlob(this.#clients, `${blob[1]}:${blob[2]}`, { size: 8 })) {
        head.set(chunk.subarray(0, 8 - headLength), headLength);
        headLength += Math.min(chunk.byteLength, 8 - headLength);
      }
    } else {
      const file = this.#spooled.get(clean);
      if (!file)
        throw new InvalidArgument(`archive: layer ${clean} is named in manifest.json but not in the archive`);
      for await (const chunk of createReadStream(file.path, { start: 0, end: 7 })) {
        const c = chunk as Buffer;
        head.set(c.subarray(0, 8 - headLength), headLength);
        headLength += Math.min(c.byteLength, 8 - headLength);
      }
    }
    const kind = detectCompression(head.subarray(0, headLength));
    if (kind === 'gzip') return MediaType.dockerLayerGzip;
    if (kind === 'zstd') return MediaType.dockerLayerZstd;
    return MediaType.dockerLayer;
  }

  async #images(): Promise<ImportedImage[]> {
    const out: ImportedImage[] = [];
    const { baseName, indexName } = this.#opts;
    const date = (this.#opts.now ?? new Date()).toISOString().slice(0, 10);
    const prefix = baseName || `import-${date}`;
    const layout = this.#json.get('oci-layout');
    if (layout) parseImageLayout(layout);
    const indexJson = this.#json.get('index.json');
    if (indexJson) {
      const index = parseIndex(indexJson, { name: 'index.json' });
      for (const desc of index.manifests) {
        const name = entryName(desc, prefix, Boolean(baseName));
        if (name) out.push({ name, target: asTarget(desc), created: false });
      }
      if (indexName) {
        const target = await this.#writeFromArchive('index.json', index.mediaType ?? MediaType.ociIndex);
        out.push({ name: indexName, target, created: false });
      }
    } else if (this.#json.has('manifest.json')) {
      if (indexName) throw new InvalidArgument('--index-name: a docker archive has no index.json to name');
      for (const entry of parseDockerManifest(this.#json.get('manifest.json')!)) {
        if (entry.RepoTags.length === 0) {
          this.#opts.progress?.(`skipping untagged image ${entry.Config} of manifest.json`);
          continue;
        }
        const target = await this.#dockerManifest(entry);
        for (const tag of entry.RepoTags)
          out.push({ name: normalizeReference(tag).reference, target, created: false });
      }
    } else {
      throw new InvalidArgument(
        'archive: neither index.json (OCI layout) nor manifest.json (docker save) found',
      );
    }
    for (const img of out) {
      if (!isValidReference(img.name) && !isPlainName(img.name)) {
        throw new InvalidArgument(`archive: image name ${JSON.stringify(img.name)} is not a valid reference`);
      }
    }
    return out;
  }

  /** A docker schema2 manifest for one manifest.json entry, written to the content store. */
  async #dockerManifest(entry: DockerManifestEntry): Promise<Descriptor> {
    const config = await this.#archiveDescriptor(entry.Config, MediaType.dockerConfig);
    const named = /([a-f0-9]{64})\.json$/.exec(cleanPath(entry.Config));
    if (named && `sha256:${named[1]}` !== config.digest) {
      throw new FailedPrecondition(
        `archive: ${entry.Config} has digest ${config.digest}, its name says sha256:${named[1]}`,
      );
    }
    const layers: Descriptor[] = [];
    for (const path of entry.Layers) {
      layers.push(await this.#archiveDescriptor(path, await this.#layerMediaType(path)));
    }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers }),
    );
    const digest = sha256Digest(manifest);
    this.#json.set(`manifest-${digest}.json`, manifest);
    return this.#writeFromArchive(`manifest-${digest}.json`, MediaType.dockerManifest);
  }

  /**
   * Walks an image to be created: every index, manifest and config parses within its limits, and
   * the content for the platform (or every platform) is present with the size its descriptor says.
   * gc.ref labels go on each parent so the collector keeps what the image needs.
   */
  async #check(img: ImportedImage): Promise<void> {
    const { signal, platform, allPlatforms } = this.#opts;
    const present = async (desc: Descriptor) => {
      const info = await blobInfo(this.#clients, desc.digest, signal);
      if (!info)
        throw new FailedPrecondition(
          `image "${img.name}": blob ${desc.digest} (${desc.mediaType}) is not in the archive`,
        );
      if (Number(info.size) !== desc.size) {
        throw new FailedPrecondition(
          `image "${img.name}": blob ${desc.digest} has ${info.size} bytes, its descriptor says ${desc.size}`,
        );
      }
    };
    const walk = async (desc: Descriptor, depth: number, platformChecked: boolean): Promise<void> => {
      await present(desc);
      if (isIndexType(desc.mediaType)) {
        if (depth >= MAX_INDEX_DEPTH) {
          throw new InvalidArgument(
            `image "${img.name}": indexes nested deeper than ${MAX_INDEX_DEPTH} levels`,
          );
        }
        const index = await readIndex(this.#clients, desc, signal);
        for (const child of index.manifests) {
          if (!allPlatforms) {
            // Content for other platforms may be left out of an archive; only this platform's must be there.
            if (child.platform && platformRank(platform, child.platform) < 0) continue;
            if (!child.platform && !(await blobInfo(this.#clients, child.digest, signal))) continue;
          }
          await walk(child, depth + 1, platformChecked || Boolean(child.platform));
        }
        await this.#label(desc, index.manifests);
      } else if (isManifestType(desc.mediaType)) {
        const manifest = await readManifest(this.#clients, desc, signal);
        await present(manifest.config);
        const config = await readConfig(this.#clients, manifest.config, signal);
        const own: Platform = { os: config.os, architecture: config.architecture };
        if (config.variant) own.variant = config.variant;
        if (!allPlatforms && !platformChecked && depth > 0 && platformRank(platform, own) < 0) return;
        if (config.rootfs.diff_ids.length !== manifest.layers.length) {
          throw new InvalidArgument(
            `image "${img.name}": manifest ${desc.digest} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff ids`,
          );
        }
        for (const layer of manifest.layers) {
          // Foreign layers live at their URLs, not in archives.
          if (
            isNonDistributableLayer(layer.mediaType) &&
            !(await blobInfo(this.#clients, layer.digest, signal))
          ) {
            continue;
          }
          await present(layer);
        }
        await this.#label(desc, [manifest.config, ...manifest.layers]);
      }
    };
    if (!isIndexType(img.target.mediaType) && !isManifestType(img.target.mediaType)) {
      throw new InvalidArgument(
        `image "${img.name}": target media type ${img.target.mediaType} is neither a manifest nor an index`,
      );
    }
    await walk(img.target, 0, false);
  }

  async #label(desc: Descriptor, kids: Descriptor[]): Promise<void> {
    const labels = childGcLabels(desc, kids);
    await updateBlobLabels(this.#clients, desc.digest, labels, {
      signal: this.#opts.signal,
      lease: this.#opts.lease,
    });
  }

  /** Images.Update of the target, Images.Create when the name is new (containerd's import). */
  async #record(images: ImportedImage[]): Promise<ImportedImage[]> {
    const api = this.#clients.get(ImagesService);
    const opts = callOptions(this.#opts.lease, this.#opts.signal);
    const out: ImportedImage[] = [];
    for (const img of images) {
      const image = { name: img.name, labels: {}, target: toProto(img.target) };
      try {
        await api.update({ image, updateMask: { paths: ['target'] } }, opts);
        out.push({ ...img, created: false });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await api.create({ image }, opts);
        out.push({ ...img, created: true });
      }
    }
    return out;
  }
}

/** Names such as `import-2024-01-01:latest` are references too; this accepts the rare others containerd would store. */
function isPlainName(name: string): boolean {
  return name.length > 0 && name.length <= 4096 && !/[\s\0]/.test(name);
}

/** The image target: the index.json entry as containerd stores it (annotations kept, no platform field). */
function asTarget(desc: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.annotations) out.annotations = { ...desc.annotations };
  return out;
}
