import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  AlreadyExists,
  InvalidArgument,
  mapInSlices,
  matchAllSliced,
  NotFound,
  parseFilters,
  timestampFromNanos,
  validateIdentifier,
  validateLabels,
} from '@ctrd/api-proto';
import { ImageCreateSchema, ImageDeleteSchema, ImageUpdateSchema } from '@ctrd/api-proto/event-types';
import { type Image, ImageSchema } from '@ctrd/api-proto/images';
import { validateDigest } from '@ctrd/api-proto/oci';
import { type Descriptor, DescriptorSchema } from '@ctrd/api-proto/types';
import type { GcHook } from '../gc/hook.js';
import type { Exchange } from '../services/exchange.js';
import { ensureNamespace } from '../services/namespace-rows.js';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { MetaStore } from '../store/meta-store.js';

// Image records in containerd's semantics (metadata/images.go): a name pointing at a target
// descriptor, with labels. Deleting one makes its content collectable; a sync delete collects
// before it returns.

/** containerd keeps names as given; bounded here, and free of control characters. */
export const MAX_IMAGE_NAME = 4096;
/** Total bytes of a target's annotations (keys plus values). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

// RFC 6838 type/subtype with restricted-name characters, optionally followed by parameters.
const MEDIA_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[\x21-\x7e][\x20-\x7e]*)?$/;
const MAX_MEDIA_TYPE = 1024;

interface ImageRow {
  name: string;
  labels: string;
  target_media_type: string;
  target_digest: string;
  target_size: bigint;
  target_annotations: string;
  created_at: bigint;
  updated_at: bigint;
}

function notFound(name: string): NotFound {
  return new NotFound(`image "${name}": not found`);
}

function shown(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
}

export function validateImageName(name: string): void {
  if (name === '') throw new InvalidArgument('image name: must not be empty');
  if (Buffer.byteLength(name) > MAX_IMAGE_NAME) {
    throw new InvalidArgument(
      `image name ${shown(name)}: longer than the maximum of ${MAX_IMAGE_NAME} bytes`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is rejected
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgument(`image name ${shown(name)}: must not contain control characters`);
  }
}

export function validateMediaType(mediaType: string, what: string): void {
  if (mediaType === '') throw new InvalidArgument(`${what}: media type must be set`);
  if (mediaType.length > MAX_MEDIA_TYPE || !MEDIA_TYPE.test(mediaType)) {
    throw new InvalidArgument(`${what}: media type ${shown(mediaType)} is not a valid type/subtype`);
  }
}

function validateTarget(name: string, t: Descriptor | undefined): Descriptor {
  const what = `image ${shown(name)} target`;
  if (!t) throw new InvalidArgument(`${what}: must be set`);
  validateDigest(t.digest, `${what} digest`);
  if (t.size <= 0n) throw new InvalidArgument(`${what}: size must be greater than zero`);
  if (t.size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgument(
      `${what}: size ${t.size} is larger than the maximum of ${Number.MAX_SAFE_INTEGER}`,
    );
  }
  validateMediaType(t.mediaType, what);
  let bytes = 0;
  for (const [k, v] of Object.entries(t.annotations)) {
    if (k === '') throw new InvalidArgument(`${what}: annotation keys must not be empty`);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > MAX_ANNOTATIONS_BYTES) {
    throw new InvalidArgument(
      `${what}: annotations are ${bytes} bytes, more than the maximum of ${MAX_ANNOTATIONS_BYTES}`,
    );
  }
  return t;
}

export function validateImage(img: Image): void {
  validateImageName(img.name);
  validateLabels(img.labels, `image ${shown(img.name)} labels`);
  validateTarget(img.name, img.target);
}

/** Empty values delete (containerd never stores an empty label or annotation). */
function compact(m: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (v !== '') out[k] = v;
  return out;
}

export interface LocalImagesOptions {
  store: MetaStore;
  events?: Exchange | undefined;
  gc?: GcHook | undefined;
}

export class LocalImages {
  private readonly store: MetaStore;
  private readonly events: Exchange | undefined;
  private readonly gc: GcHook | undefined;

  constructor(opts: LocalImagesOptions) {
    this.store = opts.store;
    this.events = opts.events;
    this.gc = opts.gc;
  }

  private row(ns: string, name: string): ImageRow | undefined {
    return this.store.db
      .prepare('SELECT * FROM images WHERE namespace = ? AND name = ?')
      .safeIntegers(true)
      .get(ns, name) as ImageRow | undefined;
  }

  private toMessage(r: ImageRow): Image {
    return create(ImageSchema, {
      name: r.name,
      labels: labelsFromText(r.labels),
      target: {
        mediaType: r.target_media_type,
        digest: r.target_digest,
        size: r.target_size,
        annotations: labelsFromText(r.target_annotations),
      },
      createdAt: timestampFromNanos(r.created_at),
      updatedAt: timestampFromNanos(r.updated_at),
    });
  }

  get(ns: string, name: string): Image {
    validateIdentifier(ns, 'namespace');
    validateImageName(name);
    const r = this.row(ns, name);
    if (!r) throw notFound(name);
    return this.toMessage(r);
  }

  /**
   * Filters: name, target.digest, target.mediatype, labels.<key>, annotations.<key>. One
   * consistent state, in time slices (see LocalContainers.list).
   */
  async list(ns: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Image[]> {
    validateIdentifier(ns, 'namespace');
    const filter = parseFilters(filters);
    const all = await this.store.snapshot((db) => {
      const rows = db
        .prepare('SELECT * FROM images WHERE namespace = ? ORDER BY name')
        .safeIntegers(true)
        .iterate(ns) as IterableIterator<ImageRow>;
      return mapInSlices(rows, (r) => this.toMessage(r), { signal });
    });
    return matchAllSliced(
      filter,
      all,
      (i) =>
        adaptObject(
          { name: i.name, 'target.digest': i.target?.digest, 'target.mediatype': i.target?.mediaType },
          { labels: i.labels, annotations: i.target?.annotations },
        ),
      { signal },
    );
  }

  create(ns: string, img: Image | undefined): Image {
    validateIdentifier(ns, 'namespace');
    if (!img) throw new InvalidArgument('image: must be set');
    const labels = compact(img.labels);
    const target = img.target ? { ...img.target, annotations: compact(img.target.annotations) } : undefined;
    validateImage(create(ImageSchema, { name: img.name, labels, target }));
    const out = this.store.write(() => {
      ensureNamespace(this.store, ns);
      const now = nowNanos();
      const r = this.store.db
        .prepare(
          `INSERT INTO images (namespace, name, labels, target_media_type, target_digest, target_size,
             target_annotations, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(
          ns,
          img.name,
          labelsToText(labels),
          target!.mediaType,
          target!.digest,
          target!.size,
          labelsToText(target!.annotations),
          now,
          now,
        );
      if (r.changes === 0) throw new AlreadyExists(`image "${img.name}": already exists`);
      return this.toMessage(this.row(ns, img.name)!);
    });
    this.events?.publishMessage(ns, '/images/create', ImageCreateSchema, {
      name: out.name,
      labels: out.labels,
    });
    return out;
  }

  /**
   * containerd's masks: labels, labels.<k>, target (as a unit), annotations, annotations.<k>; an
   * empty mask replaces the whole image. Empty label and annotation values delete.
   */
  update(ns: string, img: Image | undefined, paths: readonly string[] = []): Image {
    validateIdentifier(ns, 'namespace');
    if (!img) throw new InvalidArgument('image: must be set');
    if (img.name === '') throw new InvalidArgument('image name: is required for update');
    validateImageName(img.name);
    for (const p of paths) {
      const ok =
        p === 'labels' ||
        p === 'target' ||
        p === 'annotations' ||
        (p.startsWith('labels.') && p.length > 7) ||
        (p.startsWith('annotations.') && p.length > 12);
      if (!ok) {
        throw new InvalidArgument(
          `image ${shown(img.name)}: cannot update field "${p}": updatable are labels, labels.<key>, target, annotations, annotations.<key>`,
        );
      }
    }
    const out = this.store.write(() => {
      const r = this.row(ns, img.name);
      if (!r) throw notFound(img.name);
      const cur = this.toMessage(r);
      let next: Image;
      if (paths.length === 0) {
        next = create(ImageSchema, { name: img.name, labels: img.labels, target: img.target });
      } else {
        next = create(ImageSchema, cur);
        const target = next.target!;
        for (const p of paths) {
          if (p.startsWith('labels.')) {
            const k = p.slice(7);
            next.labels[k] = img.labels[k] ?? '';
          } else if (p.startsWith('annotations.')) {
            const k = p.slice(12);
            target.annotations[k] = img.target?.annotations[k] ?? '';
          } else if (p === 'labels') next.labels = { ...img.labels };
          else if (p === 'annotations') target.annotations = { ...(img.target?.annotations ?? {}) };
          else if (p === 'target') {
            next.target = img.target ? create(DescriptorSchema, img.target) : undefined;
          }
        }
      }
      next.labels = compact(next.labels);
      if (next.target) next.target.annotations = compact(next.target.annotations);
      validateImage(next);
      const t = next.target!;
      this.store.db
        .prepare(
          `UPDATE images SET labels = ?, target_media_type = ?, target_digest = ?, target_size = ?,
             target_annotations = ?, updated_at = ? WHERE namespace = ? AND name = ?`,
        )
        .run(
          labelsToText(next.labels),
          t.mediaType,
          t.digest,
          t.size,
          labelsToText(t.annotations),
          nowNanos(),
          ns,
          img.name,
        );
      return this.toMessage(this.row(ns, img.name)!);
    });
    this.events?.publishMessage(ns, '/images/update', ImageUpdateSchema, {
      name: out.name,
      labels: out.labels,
    });
    // A new target may leave the old one unreferenced.
    this.gc?.schedule();
    return out;
  }

  /** With `sync`, the collection that frees the image's content has run when this resolves. */
  async delete(ns: string, name: string, opts: { sync?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    validateIdentifier(ns, 'namespace');
    validateImageName(name);
    this.store.write(() => {
      const r = this.store.db.prepare('DELETE FROM images WHERE namespace = ? AND name = ?').run(ns, name);
      if (r.changes === 0) throw notFound(name);
    });
    this.events?.publishMessage(ns, '/images/delete', ImageDeleteSchema, { name });
    if (opts.sync) await this.gc?.collect(opts.signal);
    else this.gc?.schedule();
  }
}
