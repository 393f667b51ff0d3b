import { randomBytes } from 'node:crypto';
import { FailedPrecondition, InvalidArgument, isAlreadyExists, isNotFound } from '@ctrd/api-proto/client';
import { DiffService } from '@ctrd/api-proto/diff';
import {
  chainIds,
  ContentLabel,
  type Descriptor,
  defaultPlatform,
  formatPlatform,
  isLayerType,
  type Platform,
} from '@ctrd/api-proto/oci';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import type { Clients } from '../clients.js';
import { blobInfo, updateBlobLabels } from './content-io.js';
import { type ResolvedImage, resolveImage, toProto } from './resolve.js';
import { callOptions, withLease } from './with-lease.js';

// Unpacking turns an image's layers into committed snapshots named by their chain ids, as
// containerd's client does for `ctr images import` and `pull`: each layer is applied by the
// daemon's Diff service onto a fresh active snapshot whose parent is the previous chain id, the
// applied (uncompressed) digest must equal the config's diff id, and the result is committed under
// its chain id. Layers already unpacked (by this or another image) are skipped. Everything made
// here is held by a lease until the config blob's gc.ref.snapshot label takes over.

export const DEFAULT_SNAPSHOTTER = 'overlayfs';

export interface UnpackOptions {
  snapshotter?: string;
  platform?: Platform;
  signal?: AbortSignal;
  /** One line per step, e.g. `unpacking linux/amd64 sha256:...`. */
  progress?: (line: string) => void;
  /** An existing lease to work under instead of a new one. */
  lease?: string;
}

export interface UnpackResult {
  /** Chain id of the top layer: the parent of containers made from the image. */
  chainId: string;
  resolved: ResolvedImage;
  /** Layers applied now (the rest were already unpacked). */
  applied: number;
}

/** The chain id of the image's rootfs; InvalidArgument when the config's diff ids do not fit its layers. */
export function imageChainIds(resolved: ResolvedImage, name: string): string[] {
  const diffIds = resolved.config.rootfs.diff_ids;
  const layers = resolved.manifest.layers;
  if (diffIds.length !== layers.length) {
    throw new InvalidArgument(
      `image "${name}": manifest ${resolved.manifestDesc.digest} has ${layers.length} layers but its config lists ${diffIds.length} diff ids`,
    );
  }
  if (diffIds.length === 0) throw new InvalidArgument(`image "${name}": no layers to unpack`);
  return chainIds(diffIds);
}

/** True when the image's top chain id is already a snapshot in `snapshotter`. */
export async function isUnpacked(
  clients: Clients,
  chainId: string,
  snapshotter: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    await clients.get(SnapshotsService).stat({ snapshotter, key: chainId }, callOptions(undefined, signal));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function extractKey(chainId: string): string {
  const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  return `extract-${nanos}-${randomBytes(6).toString('base64url')} ${chainId}`;
}

async function applyLayer(
  clients: Clients,
  layer: Descriptor,
  diffId: string,
  chainId: string,
  parent: string,
  snapshotter: string,
  lease: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const snapshots = clients.get(SnapshotsService);
  const opts = callOptions(lease, signal);
  const key = extractKey(chainId);
  let mounts: Awaited<ReturnType<typeof snapshots.prepare>>['mounts'];
  try {
    mounts = (await snapshots.prepare({ snapshotter, key, parent, labels: {} }, opts)).mounts;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    // Another unpack got there first; nothing to do if it committed.
    return false;
  }
  let committed = false;
  try {
    const res = await clients.get(DiffService).apply({ diff: toProto(layer), mounts, payloads: {} }, opts);
    const applied = res.applied?.digest;
    if (applied !== diffId) {
      throw new FailedPrecondition(
        `layer ${layer.digest}: unpacked content has digest ${applied ?? '(none)'}, the image config says ${diffId}`,
      );
    }
    try {
      await snapshots.commit({ snapshotter, name: chainId, key, labels: {} }, opts);
      committed = true;
    } catch (err) {
      // Committed meanwhile by a concurrent unpack of the same layers: theirs is as good as ours.
      if (!isAlreadyExists(err)) throw err;
    }
  } finally {
    if (!committed) await snapshots.remove({ snapshotter, key }, callOptions(lease)).catch(() => undefined);
  }
  return committed;
}

/**
 * Unpacks an image for one platform into `snapshotter` (default overlayfs), layer by layer, and
 * labels its blobs as containerd does: `containerd.io/uncompressed` on each layer and
 * `containerd.io/gc.ref.snapshot.<snapshotter>` on the config.
 */
export async function unpackImage(
  clients: Clients,
  image: { name: string; target: Descriptor },
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  const snapshotter = opts.snapshotter || DEFAULT_SNAPSHOTTER;
  const platform = opts.platform ?? defaultPlatform();
  const { signal, progress } = opts;
  const resolved = await resolveImage(clients, image.name, image.target, platform, signal);
  const chains = imageChainIds(resolved, image.name);
  const layers = resolved.manifest.layers;
  const diffIds = resolved.config.rootfs.diff_ids;
  for (const [i, layer] of layers.entries()) {
    if (!isLayerType(layer.mediaType)) {
      throw new InvalidArgument(
        `image "${image.name}": layer ${i} ${layer.digest} has unsupported media type ${layer.mediaType}`,
      );
    }
  }
  const work = async (lease: string): Promise<UnpackResult> => {
    progress?.(`unpacking ${formatPlatform(resolved.platform)} ${resolved.manifestDesc.digest}...`);
    let applied = 0;
    for (const [i, layer] of layers.entries()) {
      signal?.throwIfAborted();
      const chainId = chains[i]!;
      if (await isUnpacked(clients, chainId, snapshotter, signal)) continue;
      if (!(await blobInfo(clients, layer.digest, signal))) {
        throw new FailedPrecondition(
          `image "${image.name}": layer ${layer.digest}: content not found: import or pull the image again`,
        );
      }
      progress?.(`applying layer ${layer.digest}`);
      if (
        await applyLayer(
          clients,
          layer,
          diffIds[i]!,
          chainId,
          chains[i - 1] ?? '',
          snapshotter,
          lease,
          signal,
        )
      ) {
        applied++;
      }
      await updateBlobLabels(
        clients,
        layer.digest,
        { [ContentLabel.uncompressed]: diffIds[i]! },
        { signal, lease },
      );
    }
    await updateBlobLabels(
      clients,
      resolved.manifest.config.digest,
      { [`${ContentLabel.gcRefSnapshot}.${snapshotter}`]: chains[chains.length - 1]! },
      { signal, lease },
    );
    return { chainId: chains[chains.length - 1]!, resolved, applied };
  };
  return opts.lease ? work(opts.lease) : withLease(clients, work, { signal });
}
