import { InvalidArgument, ResourceExhausted } from '../errors.js';
import { parseDigest } from './digest.js';
import { isConfigType, isIndexType, isManifestType } from './media-types.js';
import type {
  Descriptor,
  HistoryEntry,
  ImageConfig,
  ImageRunConfig,
  Index,
  Manifest,
  Platform,
} from './types.js';

// Manifests, indexes and configs come from registries and archives: untrusted bytes. Each parser
// bounds the input before JSON.parse sees it (CVE-2023-25153 read whole documents unbounded),
// checks the document is the kind its descriptor claims (GHSA-5j5w-g665-5m35: a body that is both
// a manifest and an index meant different clients saw different images), and returns a fresh
// object holding only the validated fields, so callers never share or trust the raw parse.

/** Largest manifest or index accepted, as containerd and distribution do. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Largest image config accepted. Configs carry history and labels and have no spec limit; real
 * ones are kilobytes, 8 MiB leaves room for long histories while still bounding memory.
 */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** Most layers an image may have (moby caps at 125; the kernel's overlay stack is the real limit). */
export const MAX_LAYERS = 128;
/** Most entries one index may list. */
export const MAX_INDEX_ENTRIES = 1024;
/** Most levels of index-in-index a resolver follows. */
export const MAX_INDEX_DEPTH = 8;

const MAX_MEDIA_TYPE_LENGTH = 255;
const MAX_ENV_ENTRIES = 4096;

export interface ParseOptions {
  /** The media type of the descriptor the bytes were fetched by; checked against the body. */
  mediaType?: string;
  /** Names the document in errors, e.g. its digest. */
  name?: string;
}

type Json = Record<string, unknown>;

function label(kind: string, opts: ParseOptions | undefined): string {
  return opts?.name ? `${kind} ${opts.name}` : kind;
}

function decode(bytes: Uint8Array | string, cap: number, what: string): Json {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > cap) {
    throw new ResourceExhausted(`${what}: ${size} bytes, over the limit of ${cap} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new InvalidArgument(`${what}: invalid json: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(value)) throw new InvalidArgument(`${what}: want a json object`);
  return value;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(doc: Json, key: string, what: string): string | undefined {
  const v = doc[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgument(`${what}: ${key} must be a string`);
  return v;
}

function optStringArray(doc: Json, key: string, what: string, max = MAX_ENV_ENTRIES): string[] | undefined {
  const v = doc[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw new InvalidArgument(`${what}: ${key} must be an array of strings`);
  }
  if (v.length > max) throw new InvalidArgument(`${what}: ${key} has ${v.length} entries, more than ${max}`);
  return [...(v as string[])];
}

function optStringMap(doc: Json, key: string, what: string): Record<string, string> | undefined {
  const v = doc[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InvalidArgument(`${what}: ${key} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw new InvalidArgument(`${what}: ${key}["${k}"] must be a string`);
    out[k] = s;
  }
  return out;
}

/** `{"80/tcp": {}}`-style sets (ExposedPorts, Volumes): the keys matter, values are ignored. */
function optKeySet(doc: Json, key: string, what: string): Record<string, Record<string, never>> | undefined {
  const v = doc[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InvalidArgument(`${what}: ${key} must be an object`);
  const out: Record<string, Record<string, never>> = {};
  for (const k of Object.keys(v)) out[k] = {};
  return out;
}

function checkMediaTypeString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '')
    throw new InvalidArgument(`${what}: mediaType must be a non-empty string`);
  if (v.length > MAX_MEDIA_TYPE_LENGTH) throw new InvalidArgument(`${what}: mediaType is too long`);
  return v;
}

export function parsePlatformObject(v: unknown, what: string): Platform {
  if (!isObject(v)) throw new InvalidArgument(`${what}: platform must be an object`);
  const os = optString(v, 'os', what) ?? '';
  const architecture = optString(v, 'architecture', what) ?? '';
  const p: Platform = { os, architecture };
  const variant = optString(v, 'variant', what);
  if (variant) p.variant = variant;
  const osVersion = optString(v, 'os.version', what);
  if (osVersion) p['os.version'] = osVersion;
  const features = optStringArray(v, 'os.features', what, 64);
  if (features) p['os.features'] = features;
  return p;
}

/** Validates one descriptor (media type, digest, size, urls, annotations, platform). */
export function parseDescriptor(v: unknown, what = 'descriptor'): Descriptor {
  if (!isObject(v)) throw new InvalidArgument(`${what}: must be an object`);
  const mediaType = checkMediaTypeString(v.mediaType, what);
  if (typeof v.digest !== 'string') throw new InvalidArgument(`${what}: digest must be a string`);
  parseDigest(v.digest, `${what} digest`);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgument(`${what}: size must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType, digest: v.digest, size };
  const urls = optStringArray(v, 'urls', what, 64);
  if (urls) d.urls = urls;
  const annotations = optStringMap(v, 'annotations', what);
  if (annotations) d.annotations = annotations;
  if (v.platform !== undefined && v.platform !== null) d.platform = parsePlatformObject(v.platform, what);
  const artifactType = optString(v, 'artifactType', what);
  if (artifactType) d.artifactType = artifactType;
  return d;
}

function checkSchemaVersion(doc: Json, what: string): void {
  if (doc.schemaVersion !== 2) {
    throw new InvalidArgument(
      `${what}: schemaVersion ${JSON.stringify(doc.schemaVersion)} is not supported, want 2`,
    );
  }
}

/**
 * The body's own mediaType must agree with the descriptor's, and a body must not carry both a
 * manifest's fields (config, layers) and an index's (manifests): containerd's validateMediaType.
 */
function checkKind(
  doc: Json,
  want: 'manifest' | 'index',
  opts: ParseOptions | undefined,
  what: string,
): void {
  const own = doc.mediaType;
  if (own !== undefined && own !== null) checkMediaTypeString(own, what);
  const expected = opts?.mediaType;
  if (expected && typeof own === 'string' && own !== '' && own !== expected) {
    throw new InvalidArgument(
      `${what}: media type mismatch: descriptor says ${expected}, document says ${own}`,
    );
  }
  const hasManifests = doc.manifests !== undefined && doc.manifests !== null;
  const hasManifestFields =
    (doc.config !== undefined && doc.config !== null) || (doc.layers !== undefined && doc.layers !== null);
  if (want === 'manifest') {
    if (hasManifests)
      throw new InvalidArgument(`${what}: media type mismatch: expected a manifest but found an index`);
    if (expected && isIndexType(expected)) {
      throw new InvalidArgument(`${what}: media type mismatch: descriptor says index ${expected}`);
    }
    if (typeof own === 'string' && isIndexType(own)) {
      throw new InvalidArgument(
        `${what}: media type mismatch: expected a manifest but the document says ${own}`,
      );
    }
  } else {
    if (hasManifestFields) {
      throw new InvalidArgument(`${what}: media type mismatch: expected an index but found a manifest`);
    }
    if (expected && isManifestType(expected)) {
      throw new InvalidArgument(`${what}: media type mismatch: descriptor says manifest ${expected}`);
    }
    if (typeof own === 'string' && isManifestType(own)) {
      throw new InvalidArgument(
        `${what}: media type mismatch: expected an index but the document says ${own}`,
      );
    }
  }
}

/** Parses an OCI image manifest or a Docker schema2 manifest. */
export function parseManifest(bytes: Uint8Array | string, opts?: ParseOptions): Manifest {
  const what = label('manifest', opts);
  const doc = decode(bytes, MAX_MANIFEST_BYTES, what);
  checkKind(doc, 'manifest', opts, what);
  checkSchemaVersion(doc, what);
  const config = parseDescriptor(doc.config, `${what}: config`);
  if (!Array.isArray(doc.layers)) throw new InvalidArgument(`${what}: layers must be an array`);
  if (doc.layers.length > MAX_LAYERS) {
    throw new InvalidArgument(`${what}: ${doc.layers.length} layers, more than the limit of ${MAX_LAYERS}`);
  }
  const layers = doc.layers.map((l, i) => parseDescriptor(l, `${what}: layer ${i}`));
  const m: Manifest = { schemaVersion: 2, config, layers };
  const mediaType = optString(doc, 'mediaType', what);
  if (mediaType) m.mediaType = mediaType;
  const artifactType = optString(doc, 'artifactType', what);
  if (artifactType) m.artifactType = artifactType;
  if (doc.subject !== undefined && doc.subject !== null)
    m.subject = parseDescriptor(doc.subject, `${what}: subject`);
  const annotations = optStringMap(doc, 'annotations', what);
  if (annotations) m.annotations = annotations;
  return m;
}

/** Parses an OCI image index or a Docker manifest list. */
export function parseIndex(bytes: Uint8Array | string, opts?: ParseOptions): Index {
  const what = label('index', opts);
  const doc = decode(bytes, MAX_MANIFEST_BYTES, what);
  checkKind(doc, 'index', opts, what);
  checkSchemaVersion(doc, what);
  if (!Array.isArray(doc.manifests)) throw new InvalidArgument(`${what}: manifests must be an array`);
  if (doc.manifests.length > MAX_INDEX_ENTRIES) {
    throw new InvalidArgument(
      `${what}: ${doc.manifests.length} entries, more than the limit of ${MAX_INDEX_ENTRIES}`,
    );
  }
  const manifests = doc.manifests.map((d, i) => parseDescriptor(d, `${what}: manifests[${i}]`));
  const idx: Index = { schemaVersion: 2, manifests };
  const mediaType = optString(doc, 'mediaType', what);
  if (mediaType) idx.mediaType = mediaType;
  const artifactType = optString(doc, 'artifactType', what);
  if (artifactType) idx.artifactType = artifactType;
  if (doc.subject !== undefined && doc.subject !== null)
    idx.subject = parseDescriptor(doc.subject, `${what}: subject`);
  const annotations = optStringMap(doc, 'annotations', what);
  if (annotations) idx.annotations = annotations;
  return idx;
}

function parseRunConfig(v: unknown, what: string): ImageRunConfig {
  if (!isObject(v)) throw new InvalidArgument(`${what}: config must be an object`);
  const c: ImageRunConfig = {};
  const user = optString(v, 'User', what);
  if (user) c.User = user;
  const ports = optKeySet(v, 'ExposedPorts', what);
  if (ports) c.ExposedPorts = ports;
  const env = optStringArray(v, 'Env', what);
  if (env) c.Env = env;
  const entrypoint = optStringArray(v, 'Entrypoint', what);
  if (entrypoint) c.Entrypoint = entrypoint;
  const cmd = optStringArray(v, 'Cmd', what);
  if (cmd) c.Cmd = cmd;
  const volumes = optKeySet(v, 'Volumes', what);
  if (volumes) c.Volumes = volumes;
  const workdir = optString(v, 'WorkingDir', what);
  if (workdir) c.WorkingDir = workdir;
  const labels = optStringMap(v, 'Labels', what);
  if (labels) c.Labels = labels;
  const stop = optString(v, 'StopSignal', what);
  if (stop) c.StopSignal = stop;
  if (typeof v.ArgsEscaped === 'boolean') c.ArgsEscaped = v.ArgsEscaped;
  return c;
}

function parseHistory(v: unknown, what: string): HistoryEntry[] {
  if (!Array.isArray(v)) throw new InvalidArgument(`${what}: history must be an array`);
  return v.map((h, i) => {
    const w = `${what}: history[${i}]`;
    if (!isObject(h)) throw new InvalidArgument(`${w}: must be an object`);
    const e: HistoryEntry = {};
    for (const key of ['created', 'created_by', 'author', 'comment'] as const) {
      const s = optString(h, key, w);
      if (s !== undefined) e[key] = s;
    }
    if (typeof h.empty_layer === 'boolean') e.empty_layer = h.empty_layer;
    return e;
  });
}

/** Parses an OCI image config or a Docker image config (`application/vnd.docker.container.image.v1+json`). */
export function parseImageConfig(bytes: Uint8Array | string, opts?: ParseOptions): ImageConfig {
  const what = label('image config', opts);
  const doc = decode(bytes, MAX_CONFIG_BYTES, what);
  if (opts?.mediaType && !isConfigType(opts.mediaType)) {
    throw new InvalidArgument(`${what}: media type ${opts.mediaType} is not an image config`);
  }
  const rootfs = doc.rootfs;
  if (!isObject(rootfs)) throw new InvalidArgument(`${what}: rootfs must be an object`);
  if (rootfs.type !== 'layers') {
    throw new InvalidArgument(
      `${what}: rootfs.type ${JSON.stringify(rootfs.type)} is not supported, want "layers"`,
    );
  }
  const diffIds = rootfs.diff_ids ?? [];
  if (!Array.isArray(diffIds)) throw new InvalidArgument(`${what}: rootfs.diff_ids must be an array`);
  if (diffIds.length > MAX_LAYERS) {
    throw new InvalidArgument(`${what}: ${diffIds.length} diff ids, more than the limit of ${MAX_LAYERS}`);
  }
  for (const [i, d] of diffIds.entries()) {
    if (typeof d !== 'string') throw new InvalidArgument(`${what}: rootfs.diff_ids[${i}] must be a string`);
    parseDigest(d, `${what}: rootfs.diff_ids[${i}]`);
  }
  const cfg: ImageConfig = {
    architecture: optString(doc, 'architecture', what) ?? '',
    os: optString(doc, 'os', what) ?? '',
    rootfs: { type: 'layers', diff_ids: [...(diffIds as string[])] },
  };
  const variant = optString(doc, 'variant', what);
  if (variant) cfg.variant = variant;
  const osVersion = optString(doc, 'os.version', what);
  if (osVersion) cfg['os.version'] = osVersion;
  const features = optStringArray(doc, 'os.features', what, 64);
  if (features) cfg['os.features'] = features;
  const created = optString(doc, 'created', what);
  if (created) cfg.created = created;
  const author = optString(doc, 'author', what);
  if (author) cfg.author = author;
  if (doc.config !== undefined && doc.config !== null) cfg.config = parseRunConfig(doc.config, what);
  if (doc.history !== undefined && doc.history !== null) cfg.history = parseHistory(doc.history, what);
  return cfg;
}

/** The `oci-layout` file of an image layout; only version 1.0.0 exists. */
export function parseImageLayout(bytes: Uint8Array | string): { imageLayoutVersion: string } {
  const doc = decode(bytes, 64 * 1024, 'oci-layout');
  if (doc.imageLayoutVersion !== '1.0.0') {
    throw new InvalidArgument(
      `oci-layout: imageLayoutVersion ${JSON.stringify(doc.imageLayoutVersion)} is not supported, want "1.0.0"`,
    );
  }
  return { imageLayoutVersion: '1.0.0' };
}

/** A fresh copy of an image config, so no two containers share its arrays (CVE-2021-21334). */
export function cloneImageConfig(cfg: ImageConfig): ImageConfig {
  return structuredClone(cfg);
}
