import { randomBytes } from 'node:crypto';
import { pipeline, Readable, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { create } from '@bufbuild/protobuf';
import type { Any } from '@bufbuild/protobuf/wkt';
import {
  AlreadyExists,
  InvalidArgument,
  type Logger,
  NotImplemented,
  silentLogger,
  validateLabels,
} from '@ctrd/api-proto';
import { ContentLabel, digestHasher, layerCompression, MediaType, validateDigest } from '@ctrd/api-proto/oci';
import { decompressStream, gzipStream, writeTar } from '@ctrd/api-proto/tar';
import { type Descriptor, DescriptorSchema, type Mount } from '@ctrd/api-proto/types';
import type { ContentWriter } from '../content/content-writer.js';
import type { LocalContent } from '../content/local-content.js';
import { readonlyMounts, withTempMounts } from '../mount/mount.js';
import { applyLayer } from './apply.js';
import { layerEntries } from './changes.js';

// The walking differ (containerd's diff/walking + diff/apply): Apply streams a layer blob from
// the content store through decompression into a temp mount of the target snapshot, computing
// the diffID on the way; Diff mounts two snapshots read-only, walks them together and writes
// the changes as a layer blob into the content store.

export interface LocalDiffOptions {
  /** The daemon root: temp mounts go in root/tmpmounts. */
  root: string;
  content: () => LocalContent;
  logger?: Logger | undefined;
  /** Largest uncompressed layer Apply accepts (default 64 GiB). */
  maxUncompressedBytes?: number | undefined;
  /**
   * Compressed layers may expand by at most this factor (default 200) once past
   * `ratioFloorBytes` (default 2 GiB): a bomb stops early, a real layer never gets near it.
   */
  maxRatio?: number | undefined;
  ratioFloorBytes?: number | undefined;
  /** Most entries in one layer (default 1,000,000). */
  maxEntries?: number | undefined;
}

export interface DiffOptions {
  mediaType?: string | undefined;
  ref?: string | undefined;
  labels?: Record<string, string> | undefined;
  lease?: string | undefined;
}

const GiB = 1024 ** 3;

function uniqueRef(): string {
  return `diff-${Date.now()}-${randomBytes(6).toString('base64url')}`;
}

export class LocalDiff {
  private readonly log: Logger;

  constructor(private readonly opts: LocalDiffOptions) {
    this.log = opts.logger ?? silentLogger;
  }

  /** The uncompressed-bytes cap for a blob of `size` bytes with this compression. */
  private applyLimit(size: number, compressed: boolean): number {
    const max = this.opts.maxUncompressedBytes ?? 64 * GiB;
    if (!compressed) return max;
    const ratio = (this.opts.maxRatio ?? 200) * size;
    return Math.min(max, Math.max(this.opts.ratioFloorBytes ?? 2 * GiB, ratio));
  }

  /**
   * Applies the layer `desc` (a blob in the content store) to the snapshot `mounts`; returns the
   * uncompressed layer's descriptor (its digest is the diffID).
   */
  async apply(
    ns: string,
    desc: Descriptor | undefined,
    mounts: readonly Mount[],
    _payloads: Record<string, Any> = {},
    signal?: AbortSignal,
  ): Promise<Descriptor> {
    if (!desc) throw new InvalidArgument('diff apply: a layer descriptor is required');
    validateDigest(desc.digest, 'diff apply: layer digest');
    const compression = layerCompression(desc.mediaType);
    if (compression === undefined) {
      throw new NotImplemented(
        `diff apply: layer ${desc.digest}: media type "${desc.mediaType}": no processor for media-type`,
      );
    }
    if (mounts.length === 0)
      throw new InvalidArgument(`diff apply: layer ${desc.digest}: no mounts to apply to`);
    const content = this.opts.content();
    const info = content.info(ns, desc.digest);
    const size = Number(info.size);
    const blob = content.readStream(ns, desc.digest, { signal });
    // An uncompressed media type is read as it is (containerd's stdProcessor); a compressed one
    // is decompressed by its magic bytes, whatever the media type says.
    const tar = decompressStream(blob, {
      signal,
      maxBytes: this.applyLimit(size, compression !== 'none'),
      ...(compression === 'none' ? { compression: 'none' as const } : {}),
    });
    const started = Date.now();
    const result = await withTempMounts(
      mounts,
      (dir) =>
        applyLayer(dir, tar, {
          signal,
          logger: this.log,
          ...(this.opts.maxEntries ? { maxEntries: this.opts.maxEntries } : {}),
        }),
      { root: this.opts.root, signal },
    );
    this.log.debug(
      {
        namespace: ns,
        layer: desc.digest,
        diffID: result.digest,
        size: result.size,
        ms: Date.now() - started,
      },
      'layer applied',
    );
    return create(DescriptorSchema, {
      mediaType: MediaType.ociLayer,
      digest: result.digest,
      size: BigInt(result.size),
    });
  }

  /**
   * Writes the changes from `left` to `right` as a layer blob (gzip'd unless the media type
   * says otherwise) labelled with its uncompressed digest; returns its descriptor.
   */
  async diff(
    ns: string,
    left: readonly Mount[],
    right: readonly Mount[],
    opts: DiffOptions = {},
    signal?: AbortSignal,
  ): Promise<Descriptor> {
    const mediaType = opts.mediaType || MediaType.ociLayerGzip;
    const compression = layerCompression(mediaType);
    if (compression === undefined) {
      throw new NotImplemented(`diff: unsupported diff media type: ${mediaType}`);
    }
    const zstdCompress = (zlib as { createZstdCompress?: () => Transform }).createZstdCompress;
    if (compression === 'zstd' && !zstdCompress) {
      throw new NotImplemented(
        `diff: media type ${mediaType}: this Node (${process.version}) cannot write zstd`,
      );
    }
    if (right.length === 0) throw new InvalidArgument('diff: no mounts for the upper (right) snapshot');
    const labels = { ...(opts.labels ?? {}) };
    validateLabels(labels);
    const ref = opts.ref || uniqueRef();
    const content = this.opts.content();

    return withTempMounts(
      readonlyMounts(left),
      (lower) =>
        withTempMounts(
          readonlyMounts(right),
          async (upper) => {
            const hash = digestHasher('sha256');
            let uncompressed = 0;
            const tap = async function* (): AsyncGenerator<Uint8Array> {
              for await (const chunk of writeTar(layerEntries(lower, upper, signal), { signal })) {
                hash.update(chunk);
                uncompressed += chunk.length;
                yield chunk;
              }
            };
            let bytes: AsyncIterable<Uint8Array> = tap();
            if (compression === 'gzip') bytes = gzipStream(bytes, { signal });
            else if (compression === 'zstd') bytes = compressWith(bytes, zstdCompress!());
            const w = await content.writer(ns, ref, { lease: opts.lease, signal });
            let digest: string;
            let committed = false;
            try {
              for await (const chunk of bytes) await w.write(chunk, signal);
              const diffId = `sha256:${hash.digest('hex')}`;
              labels[ContentLabel.uncompressed] = diffId;
              digest = w.digest();
              try {
                await w.commit(0, digest, labels, signal);
                committed = true;
              } catch (e) {
                if (!(e instanceof AlreadyExists)) throw e;
                // The same layer is already stored: its blob answers, the ingest goes.
                await this.discard(content, w, ns, ref);
                committed = true;
              }
              this.log.debug({ namespace: ns, digest, diffID: diffId, uncompressed }, 'diff written');
            } finally {
              if (!committed) await this.discard(content, w, ns, ref);
            }
            const info = content.info(ns, digest);
            return create(DescriptorSchema, { mediaType, digest: info.digest, size: info.size });
          },
          { root: this.opts.root, signal },
        ),
      { root: this.opts.root, signal },
    );
  }

  private async discard(content: LocalContent, w: ContentWriter, ns: string, ref: string): Promise<void> {
    await w.close().catch(() => {});
    try {
      content.abort(ns, ref);
    } catch (e) {
      this.log.debug({ err: e, ref }, 'diff: ingest already gone');
    }
  }
}

async function* compressWith(
  source: AsyncIterable<Uint8Array>,
  transform: Transform,
): AsyncGenerator<Uint8Array> {
  const input = Readable.from(source, { objectMode: false });
  pipeline(input, transform, () => {});
  try {
    for await (const chunk of transform) yield chunk as Uint8Array;
  } finally {
    transform.destroy();
    input.destroy();
  }
}
