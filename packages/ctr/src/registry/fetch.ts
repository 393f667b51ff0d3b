import { setTimeout as sleep } from 'node:timers/promises';
import {
  FailedPrecondition,
  InvalidArgument,
  isFailedPrecondition,
  isNotFound,
  isUnavailable,
} from '@ctrd/api-proto/client';
import { ContentService } from '@ctrd/api-proto/content';
import {
  ContentLabel,
  type Descriptor,
  defaultPlatform,
  formatPlatform,
  isConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  MAX_INDEX_DEPTH,
  type Platform,
  parseIndex,
  parseManifest,
  platformRank,
  type Reference,
} from '@ctrd/api-proto/oci';
import type { Clients } from '../clients.js';
import { blobInfo, updateBlobLabels, writeBlob } from '../images/content-io.js';
import { childGcLabels } from '../images/resolve.js';
import { callOptions } from '../images/with-lease.js';
import type { RegistryClient } from './client.js';
import { isTransient } from './http.js';
import type { Progress } from './progress.js';

// Fetching an image from a registry into the daemon's content store, as containerd's client.Fetch
// does for `ctr images pull` and `ctr content fetch`: resolve the reference, walk index → manifests
// → config and layers (only the platforms asked for), and write every blob through Content.Write
// under the caller's lease with containerd's ingest refs (`index-`, `manifest-`, `config-`,
// `layer-` + digest) so an interrupted fetch resumes where it stopped: the next run asks the
// registry for the rest of each partial layer with a Range request. Parents carry the gc.ref
// labels of the children fetched; every blob carries its distribution source.

export interface FetchImageOptions {
  clients: Clients;
  registry: RegistryClient;
  ref: Reference;
  /** The lease every write is made under. */
  lease: string;
  /** Fetch every platform of an index. */
  allPlatforms?: boolean;
  /** Platforms to fetch (default: this host's); the best match of each is taken. */
  platforms?: Platform[];
  /** Also fetch the manifests and configs (not layers) of the other platforms. */
  allMetadata?: boolean;
  progress?: Progress | undefined;
  /** Blobs downloaded at once (default 3, like ctr's --max-concurrent-downloads). */
  maxConcurrent?: number;
  /** Attempts per blob when the connection breaks mid-way (each resumes). Default 5. */
  attempts?: number;
  /** First pause between attempts; doubled each time. Default 500 ms. */
  backoffMs?: number;
  signal?: AbortSignal | undefined;
}

export interface FetchedManifest {
  desc: Descriptor;
  /** From the index entry, when the manifest was reached through one. */
  platform?: Platform;
  /** Its layers were fetched too (not only its metadata). */
  complete: boolean;
}

export interface FetchResult {
  target: Descriptor;
  manifests: FetchedManifest[];
}

/** containerd's remotes.MakeRefKey: the ingest ref of a descriptor. */
export function refKey(desc: Descriptor): string {
  const mt = desc.mediaType;
  if (isManifestType(mt)) return `manifest-${desc.digest}`;
  if (isIndexType(mt)) return `index-${desc.digest}`;
  if (isLayerType(mt)) return `layer-${desc.digest}`;
  if (isConfigType(mt)) return `config-${desc.digest}`;
  return `unknown-${desc.digest}`;
}

/** The label naming where a blob came from: `containerd.io/distribution.source.<domain>`. */
export function sourceLabelKey(domain: string): string {
  return `${ContentLabel.distributionSource}.${domain}`;
}

/** Runs `fn` over `items` with at most `limit` at a time; the first failure stops new starts. */
export async function mapLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker),
  );
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/** Zero bytes standing for the part of a blob the daemon already holds: writeBlob skips them. */
async function* placeholder(length: number): AsyncGenerator<Uint8Array> {
  const zeros = new Uint8Array(Math.min(length, 1 << 20));
  for (let left = length; left > 0; left -= zeros.length)
    yield left >= zeros.length ? zeros : zeros.subarray(0, left);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

export async function fetchImage(opts: FetchImageOptions): Promise<FetchResult> {
  return new Fetcher(opts).run();
}

class Fetcher {
  readonly #o: FetchImageOptions;
  readonly #repo: string;
  readonly #sourceKey: string;
  readonly #wanted: Platform[];
  readonly #manifests: FetchedManifest[] = [];

  constructor(opts: FetchImageOptions) {
    this.#o = opts;
    this.#repo = opts.ref.path;
    this.#sourceKey = sourceLabelKey(opts.ref.domain);
    this.#wanted = opts.platforms && opts.platforms.length > 0 ? opts.platforms : [defaultPlatform()];
  }

  async run(): Promise<FetchResult> {
    const { registry, ref, progress, signal } = this.#o;
    progress?.add(ref.reference, 0, 'resolving');
    const target = await registry.resolve(ref, signal);
    progress?.set(ref.reference, 'resolved');
    await this.#visit(target, 0, true, undefined);
    return { target, manifests: this.#manifests };
  }

  /** Fetches one manifest or index and, as `complete` says, everything under it. */
  async #visit(
    desc: Descriptor,
    depth: number,
    complete: boolean,
    platform: Platform | undefined,
  ): Promise<void> {
    const { registry, signal } = this.#o;
    if (isIndexType(desc.mediaType)) {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new InvalidArgument(`index ${desc.digest}: nested deeper than ${MAX_INDEX_DEPTH} levels`);
      }
      const bytes = await registry.fetchManifest(this.#repo, desc, signal);
      const index = parseIndex(bytes, { mediaType: desc.mediaType, name: desc.digest });
      const chosen = this.#choose(index.manifests);
      const kept = this.#o.allMetadata
        ? index.manifests.filter((m) => isManifestType(m.mediaType) || isIndexType(m.mediaType))
        : chosen;
      if (kept.length === 0) {
        throw new FailedPrecondition(
          `image ${this.#o.ref.reference}: index ${desc.digest} has no manifest for ${this.#wanted.map(formatPlatform).join(', ')}: use --platform or --all-platforms`,
        );
      }
      await this.#store(desc, bytes, childGcLabels(desc, kept));
      for (const child of kept) {
        await this.#visit(child, depth + 1, complete && chosen.includes(child), child.platform ?? platform);
      }
      return;
    }
    if (isManifestType(desc.mediaType)) {
      const bytes = await registry.fetchManifest(this.#repo, desc, signal);
      const manifest = parseManifest(bytes, { mediaType: desc.mediaType, name: desc.digest });
      await this.#store(desc, bytes, childGcLabels(desc, [manifest.config, ...manifest.layers]));
      // A layer listed twice is fetched once.
      const all = complete ? [manifest.config, ...manifest.layers] : [manifest.config];
      const blobs = all.filter((b, i) => all.findIndex((o) => o.digest === b.digest) === i);
      for (const b of blobs) this.#o.progress?.add(refKey(b), b.size, 'waiting');
      await mapLimited(blobs, this.#o.maxConcurrent ?? 3, (b) => this.#fetchBlob(b));
      this.#manifests.push({ desc, ...(platform ? { platform } : {}), complete });
      return;
    }
    throw new InvalidArgument(
      `descriptor ${desc.digest}: media type ${desc.mediaType} is neither a manifest nor an index`,
    );
  }

  /**
   * The index entries to fetch: all of them with --all-platforms; else for each wanted platform
   * the best-ranked entry (containerd's FilterPlatforms + LimitManifests(1)), plus entries without a
   * platform (nested indexes).
   */
  #choose(entries: readonly Descriptor[]): Descriptor[] {
    const usable = entries.filter((m) => isManifestType(m.mediaType) || isIndexType(m.mediaType));
    if (this.#o.allPlatforms) return usable;
    const out = new Set<Descriptor>();
    for (const want of this.#wanted) {
      let best: Descriptor | undefined;
      let bestRank = Number.POSITIVE_INFINITY;
      for (const m of usable) {
        if (!m.platform) continue;
        const rank = platformRank(want, m.platform);
        if (rank >= 0 && rank < bestRank) {
          best = m;
          bestRank = rank;
        }
      }
      if (best) out.add(best);
    }
    for (const m of usable) if (!m.platform) out.add(m);
    return usable.filter((m) => out.has(m));
  }

  /** Writes a manifest or index already in memory (digest checked on fetch). */
  async #store(desc: Descriptor, bytes: Uint8Array, children: Record<string, string>): Promise<void> {
    const { clients, lease, progress, signal } = this.#o;
    const ref = refKey(desc);
    progress?.add(ref, desc.size, 'waiting');
    const labels = { ...children, [this.#sourceKey]: this.#repo };
    const info = await blobInfo(clients, desc.digest, signal);
    if (info) {
      await this.#ensureLabels(desc.digest, info.labels, labels);
      progress?.set(ref, 'exists');
      return;
    }
    progress?.set(ref, 'downloading');
    let written: Awaited<ReturnType<typeof writeBlob>>;
    for (let attempt = 1; ; attempt++) {
      try {
        written = await writeBlob(
          clients,
          { ref, digest: desc.digest, size: desc.size, labels },
          once(bytes),
          {
            lease,
            ...(signal ? { signal } : {}),
          },
        );
        break;
      } catch (err) {
        // Another pull holds the ref (the daemon says Unavailable): wait for it, as ctr does.
        if (signal?.aborted || !isUnavailable(err) || attempt >= (this.#o.attempts ?? 5)) throw err;
        await sleep(
          (this.#o.backoffMs ?? 500) * 2 ** (attempt - 1),
          undefined,
          signal ? { signal } : undefined,
        );
      }
    }
    if (written.existed) await this.#ensureLabels(desc.digest, {}, labels);
    progress?.advance(ref, written.existed ? 0 : desc.size);
    progress?.set(ref, written.existed ? 'exists' : 'done');
  }

  /** Labels a blob that is already stored the way a fresh write would have. */
  async #ensureLabels(
    digest: string,
    have: Record<string, string>,
    want: Record<string, string>,
  ): Promise<void> {
    const missing: Record<string, string> = {};
    for (const [k, v] of Object.entries(want)) {
      if (k === this.#sourceKey) {
        const repos = (have[k] ?? '').split(',').filter((r) => r !== '');
        if (!repos.includes(v)) missing[k] = [...repos, v].join(',');
      } else if (have[k] !== v) {
        missing[k] = v;
      }
    }
    await updateBlobLabels(this.#o.clients, digest, missing, {
      lease: this.#o.lease,
      ...(this.#o.signal ? { signal: this.#o.signal } : {}),
    });
  }

  /** Streams a config or layer from the registry into the store, resuming a partial ingest. */
  async #fetchBlob(desc: Descriptor): Promise<void> {
    const { clients, lease, progress, registry, signal } = this.#o;
    const ref = refKey(desc);
    const labels = { [this.#sourceKey]: this.#repo };
    const info = await blobInfo(clients, desc.digest, signal);
    if (info) {
      await this.#ensureLabels(desc.digest, info.labels, labels);
      progress?.set(ref, 'exists');
      return;
    }
    const content = clients.get(ContentService);
    const repo = this.#repo;
    const attempts = this.#o.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      // Iterated by writeBlob only after its STAT took the ref, so the offset Status reports now
      // is the one writeBlob resumes at: the registry is asked for the rest and nothing twice.
      const source: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          let offset = 0;
          try {
            const st = await content.status({ ref }, callOptions(lease, signal));
            offset = Number(st.status?.offset ?? 0n);
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
          if (offset > desc.size) offset = 0;
          progress?.set(ref, 'downloading', offset);
          yield* placeholder(offset);
          const blob = await registry.fetchBlob(repo, desc, { offset, signal });
          for await (const chunk of blob.body) {
            progress?.advance(ref, chunk.byteLength);
            yield chunk;
          }
        },
      };
      try {
        const written = await writeBlob(
          clients,
          { ref, digest: desc.digest, size: desc.size, labels },
          source,
          {
            lease,
            ...(signal ? { signal } : {}),
          },
        );
        if (written.existed) await this.#ensureLabels(desc.digest, {}, labels);
        progress?.set(ref, written.existed ? 'exists' : 'done');
        return;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (isFailedPrecondition(err)) {
          // The registry sent other bytes than the descriptor names: drop the ingest so nothing
          // of it is kept or resumed from.
          await content.abort({ ref }, callOptions(lease)).catch(() => undefined);
          progress?.set(ref, 'failed');
          throw new FailedPrecondition(
            `blob ${desc.digest} from ${registry.domain}/${repo}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        // A broken connection, a truncated answer or a ref another writer holds: try again, from
        // wherever the ingest got to.
        if (attempt < attempts && (isTransient(err) || isUnavailable(err))) {
          await sleep(
            (this.#o.backoffMs ?? 500) * 2 ** (attempt - 1),
            undefined,
            signal ? { signal } : undefined,
          );
          continue;
        }
        progress?.set(ref, 'failed');
        throw err;
      }
    }
  }
}
