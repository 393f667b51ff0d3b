import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound, isUnavailable, NotFound } from '@ctrd/api-proto/client';
import {
  type Descriptor,
  isIndexType,
  isManifestType,
  isNonDistributableLayer,
  MAX_INDEX_DEPTH,
  MAX_MANIFEST_BYTES,
  type Platform,
  parseIndex,
  parseManifest,
  platformRank,
  type Reference,
} from '@ctrd/api-proto/oci';
import type { Clients } from '../clients.js';
import { blobInfo, readBlob, readBytes } from '../images/content-io.js';
import type { RegistryClient } from './client.js';
import { mapLimited, refKey, sourceLabelKey } from './fetch.js';
import { isTransient } from './http.js';
import type { Progress } from './progress.js';

// Pushing an image from the daemon's content store to a registry, as containerd's remotes.PushContent
// does for `ctr images push`: children before parents (layers and config, then each manifest, then
// the index), a HEAD first so blobs the registry has are not sent again, a cross-repository mount
// when the blob came from another repository of the same registry, and the top manifest put under
// the reference's tag (child manifests under their digests). Non-distributable layers stay behind.

export interface PushImageOptions {
  clients: Clients;
  registry: RegistryClient;
  /** Where to push: its path is the repository, its tag (or digest) names the top manifest. */
  ref: Reference;
  target: Descriptor;
  /** Push only the manifest for this platform (with the index left out), as `--platform` does. */
  platform?: Platform | undefined;
  progress?: Progress | undefined;
  maxConcurrent?: number;
  attempts?: number;
  backoffMs?: number;
  signal?: AbortSignal | undefined;
}

interface Planned {
  desc: Descriptor;
  /** Manifest or index bytes, read from the store. */
  bytes?: Uint8Array;
  /** Not in the local store: the registry must already have it. */
  remoteOnly?: boolean;
}

export async function pushImage(opts: PushImageOptions): Promise<Descriptor> {
  const { clients, registry, ref, progress, signal } = opts;
  const repo = ref.path;
  registry.forPush(repo);
  let top = opts.target;
  // --platform: push that platform's manifest alone, tagged as the image.
  if (opts.platform && isIndexType(top.mediaType))
    top = await pickPlatform(clients, top, opts.platform, signal);

  const blobs = new Map<string, Descriptor>();
  const manifests: Planned[] = [];
  const plan = async (desc: Descriptor, depth: number): Promise<void> => {
    if (depth > MAX_INDEX_DEPTH)
      throw new NotFound(`index ${desc.digest}: nested deeper than ${MAX_INDEX_DEPTH} levels`);
    let bytes: Uint8Array;
    try {
      bytes = await readBytes(clients, desc, MAX_MANIFEST_BYTES, signal);
    } catch (err) {
      // An index entry for a platform that was never pulled: fine if the registry has it.
      if (isNotFound(err) && depth > 0 && (await registry.hasManifest(repo, desc.digest, signal))) {
        manifests.push({ desc, remoteOnly: true });
        return;
      }
      if (isNotFound(err)) {
        throw new NotFound(
          `content ${desc.digest} (${desc.mediaType}): not in the local store: pull it first (e.g. --all-platforms)`,
          { cause: err },
        );
      }
      throw err;
    }
    if (isIndexType(desc.mediaType)) {
      const index = parseIndex(bytes, { mediaType: desc.mediaType, name: desc.digest });
      for (const child of index.manifests) await plan(child, depth + 1);
    } else if (isManifestType(desc.mediaType)) {
      const manifest = parseManifest(bytes, { mediaType: desc.mediaType, name: desc.digest });
      for (const b of [manifest.config, ...manifest.layers]) blobs.set(b.digest, b);
    } else {
      throw new NotFound(
        `content ${desc.digest}: media type ${desc.mediaType} is neither a manifest nor an index`,
      );
    }
    manifests.push({ desc, bytes });
  };
  await plan(top, 0);

  for (const b of blobs.values()) progress?.add(refKey(b), b.size, 'waiting');
  for (const m of manifests) progress?.add(refKey(m.desc), m.desc.size, 'waiting');
  await mapLimited([...blobs.values()], opts.maxConcurrent ?? 3, (b) => pushOneBlob(opts, b));
  for (const m of manifests) {
    const key = refKey(m.desc);
    if (m.remoteOnly || !m.bytes) {
      progress?.set(key, 'exists');
      continue;
    }
    const isTop = m.desc.digest === top.digest;
    const reference = isTop && ref.tag ? ref.tag : m.desc.digest;
    progress?.set(key, 'uploading');
    await retrying(opts, () => registry.putManifest(repo, reference, m.desc, m.bytes as Uint8Array, signal));
    progress?.advance(key, m.desc.size);
    progress?.set(key, 'done');
  }
  return top;
}

async function pushOneBlob(opts: PushImageOptions, desc: Descriptor): Promise<void> {
  const { clients, registry, ref, progress, signal } = opts;
  const key = refKey(desc);
  if (isNonDistributableLayer(desc.mediaType)) {
    progress?.set(key, 'skipped');
    return;
  }
  const info = await blobInfo(clients, desc.digest, signal);
  if (!info) {
    if (await registry.hasBlob(ref.path, desc.digest, signal)) {
      progress?.set(key, 'exists');
      return;
    }
    throw new NotFound(`content ${desc.digest}: not in the local store and not in ${ref.name}`);
  }
  // containerd records where a blob was pulled from; another repository of this registry can lend it.
  const sources = (info.labels[sourceLabelKey(ref.domain)] ?? '')
    .split(',')
    .filter((r) => r !== '' && r !== ref.path);
  const outcome = await retrying(opts, () => {
    let sent = 0;
    return registry.pushBlob(
      ref.path,
      desc,
      () => {
        // A retried upload starts from zero again.
        progress?.advance(key, -sent);
        sent = 0;
        progress?.set(key, 'uploading');
        return (async function* () {
          for await (const chunk of readBlob(clients, desc.digest, signal ? { signal } : {})) {
            sent += chunk.byteLength;
            progress?.advance(key, chunk.byteLength);
            yield chunk;
          }
        })();
      },
      { mountFrom: sources[0], signal },
    );
  });
  progress?.set(key, outcome === 'pushed' ? 'done' : outcome);
}

async function retrying<T>(opts: PushImageOptions, fn: () => Promise<T>): Promise<T> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (opts.signal?.aborted || attempt >= attempts || !(isTransient(err) || isUnavailable(err))) throw err;
      await sleep(
        (opts.backoffMs ?? 500) * 2 ** (attempt - 1),
        undefined,
        opts.signal ? { signal: opts.signal } : undefined,
      );
    }
  }
}

/** The index entry best suited to `want`; NotFound when none is. */
async function pickPlatform(
  clients: Clients,
  index: Descriptor,
  want: Platform,
  signal: AbortSignal | undefined,
): Promise<Descriptor> {
  const parsed = parseIndex(await readBytes(clients, index, MAX_MANIFEST_BYTES, signal), {
    mediaType: index.mediaType,
    name: index.digest,
  });
  let best: Descriptor | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const m of parsed.manifests) {
    if (!m.platform || !isManifestType(m.mediaType)) continue;
    const rank = platformRank(want, m.platform);
    if (rank >= 0 && rank < bestRank) {
      best = m;
      bestRank = rank;
    }
  }
  if (!best)
    throw new NotFound(`index ${index.digest}: no manifest for platform ${want.os}/${want.architecture}`);
  return best;
}
