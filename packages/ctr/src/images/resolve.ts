import { NotFound } from '@ctrd/api-proto/client';
import {
  type Descriptor,
  formatPlatform,
  type ImageConfig,
  type Index,
  isIndexType,
  isManifestType,
  type Manifest,
  MAX_CONFIG_BYTES,
  MAX_INDEX_DEPTH,
  MAX_MANIFEST_BYTES,
  type Platform,
  parseImageConfig,
  parseIndex,
  parseManifest,
  platformRank,
} from '@ctrd/api-proto/oci';
import type { Descriptor as ProtoDescriptor } from '@ctrd/api-proto/types';
import type { Clients } from '../clients.js';
import { readBytes } from './content-io.js';

// From an image's target to the manifest and config for one platform, the way containerd's
// images.Manifest walks: indexes are followed (to a bounded depth), entries whose platform the
// host cannot run are skipped, the best-ranked platform wins, and a manifest reached without a
// platform in its index entry is checked against its config's os and architecture.

/** The proto descriptor (bigint size) as an OCI one. */
export function fromProto(d: ProtoDescriptor | undefined, what = 'image target'): Descriptor {
  if (!d) throw new NotFound(`${what}: no descriptor`);
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: Number(d.size) };
  if (Object.keys(d.annotations).length > 0) out.annotations = { ...d.annotations };
  return out;
}

/** An OCI descriptor as the proto's init shape. */
export function toProto(d: Descriptor): {
  mediaType: string;
  digest: string;
  size: bigint;
  annotations: Record<string, string>;
} {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: BigInt(d.size),
    annotations: { ...(d.annotations ?? {}) },
  };
}

export async function readManifest(
  clients: Clients,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<Manifest> {
  const bytes = await readBytes(clients, desc, MAX_MANIFEST_BYTES, signal, 'manifest');
  return parseManifest(bytes, { mediaType: desc.mediaType, name: desc.digest });
}

export async function readIndex(clients: Clients, desc: Descriptor, signal?: AbortSignal): Promise<Index> {
  const bytes = await readBytes(clients, desc, MAX_MANIFEST_BYTES, signal, 'index');
  return parseIndex(bytes, { mediaType: desc.mediaType, name: desc.digest });
}

export async function readConfig(
  clients: Clients,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<ImageConfig> {
  const bytes = await readBytes(clients, desc, MAX_CONFIG_BYTES, signal, 'image config');
  return parseImageConfig(bytes, { mediaType: desc.mediaType, name: desc.digest });
}

export interface ResolvedImage {
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** The platform of the chosen manifest, from its config. */
  platform: Platform;
}

interface Candidate {
  desc: Descriptor;
  /** From the index entry; undefined when the entry names no platform. */
  rank: number | undefined;
  order: number;
}

async function collect(
  clients: Clients,
  desc: Descriptor,
  want: Platform,
  depth: number,
  rank: number | undefined,
  out: Candidate[],
  signal?: AbortSignal,
): Promise<void> {
  if (isManifestType(desc.mediaType)) {
    out.push({ desc, rank, order: out.length });
    return;
  }
  if (!isIndexType(desc.mediaType)) return;
  if (depth >= MAX_INDEX_DEPTH) {
    throw new NotFound(`index ${desc.digest}: indexes nested deeper than ${MAX_INDEX_DEPTH} levels`);
  }
  const index = await readIndex(clients, desc, signal);
  for (const child of index.manifests) {
    let childRank = rank;
    if (child.platform) {
      childRank = platformRank(want, child.platform);
      if (childRank < 0) continue;
    }
    await collect(clients, child, want, depth + 1, childRank, out, signal);
  }
}

/** The manifest and config of `target` for platform `want`; NotFound when none matches. */
export async function resolveImage(
  clients: Clients,
  name: string,
  target: Descriptor,
  want: Platform,
  signal?: AbortSignal,
): Promise<ResolvedImage> {
  if (!isManifestType(target.mediaType) && !isIndexType(target.mediaType)) {
    throw new NotFound(
      `image "${name}": target media type ${target.mediaType} is neither a manifest nor an index`,
    );
  }
  const candidates: Candidate[] = [];
  await collect(clients, target, want, 0, undefined, candidates, signal);
  candidates.sort((a, b) => (a.rank ?? 1000) - (b.rank ?? 1000) || a.order - b.order);
  for (const c of candidates) {
    const manifest = await readManifest(clients, c.desc, signal);
    const config = await readConfig(clients, manifest.config, signal);
    const platform: Platform = { os: config.os, architecture: config.architecture };
    if (config.variant) platform.variant = config.variant;
    if (c.rank === undefined && platformRank(want, platform) < 0) continue;
    return { manifestDesc: c.desc, manifest, config, platform };
  }
  throw new NotFound(`image "${name}": no manifest for platform ${formatPlatform(want)}`);
}

/**
 * The platforms an image offers: from its index entries, or from the config of a single manifest.
 * Unreadable children are skipped: a listing shows what it can.
 */
export async function imagePlatforms(
  clients: Clients,
  target: Descriptor,
  signal?: AbortSignal,
): Promise<Platform[]> {
  const out: Platform[] = [];
  const walk = async (desc: Descriptor, depth: number): Promise<void> => {
    if (isIndexType(desc.mediaType) && depth < MAX_INDEX_DEPTH) {
      const index = await readIndex(clients, desc, signal);
      for (const child of index.manifests) {
        if (child.platform && isManifestType(child.mediaType)) out.push(child.platform);
        else await walk(child, depth + 1).catch(() => undefined);
      }
    } else if (isManifestType(desc.mediaType)) {
      const manifest = await readManifest(clients, desc, signal);
      const config = await readConfig(clients, manifest.config, signal);
      out.push({
        os: config.os,
        architecture: config.architecture,
        ...(config.variant ? { variant: config.variant } : {}),
      });
    }
  };
  await walk(target, 0);
  return out;
}

/** The direct children of a descriptor (containerd's images.Children): index → manifests, manifest → config + layers. */
export async function children(
  clients: Clients,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  if (isIndexType(desc.mediaType)) return (await readIndex(clients, desc, signal)).manifests;
  if (isManifestType(desc.mediaType)) {
    const m = await readManifest(clients, desc, signal);
    return [m.config, ...m.layers];
  }
  return [];
}

/** The gc.ref labels a parent blob carries so the collector keeps its children (images.ChildGCLabels). */
export function childGcLabels(desc: Descriptor, kids: readonly Descriptor[]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (isManifestType(desc.mediaType)) {
    kids.forEach((k, i) => {
      if (i === 0) labels['containerd.io/gc.ref.content.config'] = k.digest;
      else labels[`containerd.io/gc.ref.content.l.${i - 1}`] = k.digest;
    });
  } else if (isIndexType(desc.mediaType)) {
    kids.forEach((k, i) => {
      labels[`containerd.io/gc.ref.content.m.${i}`] = k.digest;
    });
  }
  return labels;
}

/**
 * The bytes an image takes for one platform (containerd's images.Size): the target and every
 * descriptor under it whose platform fits, each digest counted once.
 */
export async function imageSize(
  clients: Clients,
  target: Descriptor,
  want: Platform,
  signal?: AbortSignal,
): Promise<number> {
  const seen = new Map<string, number>();
  const walk = async (desc: Descriptor, depth: number): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.set(desc.digest, desc.size);
    if (isIndexType(desc.mediaType) && depth < MAX_INDEX_DEPTH) {
      for (const child of (await readIndex(clients, desc, signal)).manifests) {
        if (child.platform && platformRank(want, child.platform) < 0) continue;
        await walk(child, depth + 1);
      }
    } else if (isManifestType(desc.mediaType)) {
      const m = await readManifest(clients, desc, signal);
      for (const d of [m.config, ...m.layers]) if (!seen.has(d.digest)) seen.set(d.digest, d.size);
    }
  };
  await walk(target, 0);
  let total = 0;
  for (const size of seen.values()) total += size;
  return total;
}
