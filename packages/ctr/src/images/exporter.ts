import { FailedPrecondition, NotFound } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import {
  Annotation,
  type Descriptor,
  familiarName,
  isIndexType,
  isManifestType,
  isNonDistributableLayer,
  MAX_INDEX_DEPTH,
  MediaType,
  normalizeReference,
  type Platform,
  parseDigest,
  platformRank,
} from '@ctrd/api-proto/oci';
import { TarWriter } from '@ctrd/api-proto/tar';
import type { Clients } from '../clients.js';
import { blobInfo, readBlob } from './content-io.js';
import { fromProto, readConfig, readIndex, readManifest } from './resolve.js';

// `ctr images export`: an OCI image layout as a tar stream (oci-layout, index.json, blobs/), the
// way containerd's archive exporter writes it: each named image is an index.json entry annotated
// with its full name (io.containerd.image.name) and its tag (org.opencontainers.image.ref.name),
// and a docker-style manifest.json is added so `docker load` reads it too. Only the content of
// the chosen platforms goes in; the index blobs themselves are kept whole.

export interface ExportOptions {
  /** Platforms to include; empty means the host's (ignored with allPlatforms). */
  platforms: Platform[];
  allPlatforms?: boolean;
  /** Include non-distributable (foreign) layers that are present. */
  includeNonDistributable?: boolean;
  /** Leave out the docker manifest.json. */
  skipManifestJson?: boolean;
  signal?: AbortSignal;
}

interface Named {
  name: string;
  target: Descriptor;
}

/** The OCI ref name of a full name: its tag (containerd's ociReferenceName), else the name. */
export function ociRefName(name: string): string {
  try {
    const ref = normalizeReference(name, { defaultTag: false });
    if (ref.tag) return ref.tag;
  } catch {
    // Not a reference: the name itself.
  }
  return name;
}

function dockerTag(name: string): string | undefined {
  try {
    const ref = normalizeReference(name, { defaultTag: false });
    return ref.tag && !ref.digest ? familiarName(ref) : undefined;
  } catch {
    return undefined;
  }
}

function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest, 'blob');
  return `blobs/${algorithm}/${hex}`;
}

export class ImageExporter {
  readonly #clients: Clients;
  readonly #opts: ExportOptions;
  readonly #blobs = new Map<string, Descriptor>();
  readonly #dockerEntries: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];

  constructor(clients: Clients, opts: ExportOptions) {
    this.#clients = clients;
    this.#opts = opts;
  }

  #wants(p: Platform | undefined): boolean {
    if (this.#opts.allPlatforms || !p) return true;
    return this.#opts.platforms.some((w) => platformRank(w, p) === 0);
  }

  /** Collects the blobs of one image for the chosen platforms. */
  async #collect(img: Named): Promise<void> {
    const { signal } = this.#opts;
    let found = false;
    const walk = async (desc: Descriptor, depth: number, viaPlatform: boolean): Promise<void> => {
      if (isIndexType(desc.mediaType)) {
        if (depth >= MAX_INDEX_DEPTH)
          throw new FailedPrecondition(`image "${img.name}": indexes nested too deep`);
        this.#blobs.set(desc.digest, desc);
        const index = await readIndex(this.#clients, desc, signal);
        for (const child of index.manifests) {
          if (child.platform && !this.#wants(child.platform)) continue;
          if (
            !child.platform &&
            !this.#opts.allPlatforms &&
            !(await blobInfo(this.#clients, child.digest, signal))
          ) {
            continue;
          }
          await walk(child, depth + 1, viaPlatform || Boolean(child.platform));
        }
        return;
      }
      if (!isManifestType(desc.mediaType)) return;
      const manifest = await readManifest(this.#clients, desc, signal);
      const config = await readConfig(this.#clients, manifest.config, signal);
      const own: Platform = { os: config.os, architecture: config.architecture };
      if (config.variant) own.variant = config.variant;
      if (!viaPlatform && depth > 0 && !this.#wants(own)) return;
      found = true;
      this.#blobs.set(desc.digest, desc);
      this.#blobs.set(manifest.config.digest, manifest.config);
      const layers: string[] = [];
      for (const layer of manifest.layers) {
        if (isNonDistributableLayer(layer.mediaType) && !this.#opts.includeNonDistributable) continue;
        this.#blobs.set(layer.digest, layer);
        layers.push(blobPath(layer.digest));
      }
      const tag = dockerTag(img.name);
      if (!this.#opts.skipManifestJson && tag && layers.length === manifest.layers.length) {
        const existing = this.#dockerEntries.find((e) => e.Config === blobPath(manifest.config.digest));
        if (existing) {
          if (!existing.RepoTags.includes(tag)) existing.RepoTags.push(tag);
        } else {
          this.#dockerEntries.push({
            Config: blobPath(manifest.config.digest),
            RepoTags: [tag],
            Layers: layers,
          });
        }
      }
    };
    await walk(img.target, 0, false);
    if (!found) {
      throw new NotFound(
        `image "${img.name}": no content for the requested platforms: use --all-platforms or --platform`,
      );
    }
  }

  /** Looks up the images and collects their content; call before `write`. */
  async prepare(names: readonly string[]): Promise<Named[]> {
    const images: Named[] = [];
    for (const name of names) {
      const res = await this.#clients.get(ImagesService).get({ name }, { signal: this.#opts.signal });
      const img = { name, target: fromProto(res.image?.target, `image "${name}"`) };
      await this.#collect(img);
      images.push(img);
    }
    for (const desc of this.#blobs.values()) {
      const info = await blobInfo(this.#clients, desc.digest, this.#opts.signal);
      if (!info) throw new NotFound(`blob ${desc.digest} (${desc.mediaType}): content not found`);
    }
    return images;
  }

  /** The archive's bytes: feed them to a file or stdout. */
  write(images: readonly Named[]): AsyncIterable<Uint8Array> {
    const tar = new TarWriter();
    const { signal } = this.#opts;
    const produce = async () => {
      const dir = { type: 'dir' as const, mode: 0o755, mtime: 0 };
      await tar.add({ name: 'blobs/', ...dir }, signal);
      const algorithms = new Set([...this.#blobs.keys()].map((d) => d.split(':')[0]!));
      for (const alg of [...algorithms].sort()) await tar.add({ name: `blobs/${alg}/`, ...dir }, signal);
      for (const desc of this.#blobs.values()) {
        await tar.add(
          {
            name: blobPath(desc.digest),
            type: 'file',
            mode: 0o444,
            mtime: 0,
            size: desc.size,
            body: readBlob(this.#clients, desc.digest, { signal }),
          },
          signal,
        );
      }
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: images.map((img) => ({
          ...img.target,
          annotations: {
            ...(img.target.annotations ?? {}),
            [Annotation.imageName]: img.name,
            [Annotation.refName]: ociRefName(img.name),
          },
        })),
      };
      const file = (name: string, value: unknown) => {
        const body = Buffer.from(JSON.stringify(value));
        return tar.add({ name, type: 'file', mode: 0o444, mtime: 0, size: body.length, body }, signal);
      };
      await file('index.json', index);
      await file('oci-layout', { imageLayoutVersion: '1.0.0' });
      if (!this.#opts.skipManifestJson && this.#dockerEntries.length > 0)
        await file('manifest.json', this.#dockerEntries);
      await tar.finish(signal);
    };
    produce().catch((err: unknown) => tar.abort(err));
    return tar;
  }
}
