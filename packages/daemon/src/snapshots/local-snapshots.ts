import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  type Logger,
  mapInSlices,
  matchAllSliced,
  NotFound,
  parseFilters,
  silentLogger,
  timestampFromNanos,
  Unavailable,
  validateIdentifier,
  validateLabels,
} from '@ctrd/api-proto';
import {
  SnapshotCommitSchema,
  SnapshotPrepareSchema,
  SnapshotRemoveSchema,
} from '@ctrd/api-proto/event-types';
import { type Info, InfoSchema, Kind } from '@ctrd/api-proto/snapshots';
import type { Mount } from '@ctrd/api-proto/types';
import type { Exchange } from '../services/exchange.js';
import type { LocalLeases } from '../services/leases.js';
import { ensureNamespace } from '../services/namespace-rows.js';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { GcHook } from '../gc/hook.js';
import type { MetaStore } from '../store/meta-store.js';
import type { SnapshotBackend } from './backend.js';
import { diskUsage, type Usage } from './disk-usage.js';

// Snapshots in containerd's semantics (metadata/snapshot.go over snapshots/storage): per namespace
// and snapshotter, a key names an active snapshot or a view; Commit turns an active one into a
// committed one under a new name; only committed snapshots can be parents. The rows live in the
// metadata DB; each row's backend_id names the backend's directory, so keys (any string, e.g. ctr's
// "extract-<nanos>-<rand> sha256:...") never become paths.

/** Longest parent chain a snapshot may sit on (moby allows 125 layers, ctrd's image code 128). */
export const MAX_CHAIN = 128;
export const MAX_KEY_BYTES = 1024;

interface SnapshotRow {
  key: string;
  backend_id: bigint;
  parent: string;
  kind: bigint;
  labels: string;
  created_at: bigint;
  updated_at: bigint;
  usage_size: bigint | null;
  usage_inodes: bigint | null;
}

const KIND_NAMES: Record<number, string> = {
  [Kind.VIEW]: 'view',
  [Kind.ACTIVE]: 'active',
  [Kind.COMMITTED]: 'committed',
};

const quote = (s: string): string => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);

export function validateSnapshotKey(key: string, what = 'key'): void {
  if (key === '') throw new InvalidArgument(`snapshot ${what}: must not be empty`);
  if (key.includes('\0')) throw new InvalidArgument(`snapshot ${what} ${quote(key)}: must not contain NUL`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new InvalidArgument(`snapshot ${what} ${quote(key)}: longer than ${MAX_KEY_BYTES} bytes`);
  }
}

export class LocalSnapshots {
  // Parents of snapshots being built (namespace, snapshotter, key): they must not go meanwhile.
  private readonly pinned = new Map<string, number>();

  constructor(
    private readonly store: MetaStore,
    private readonly backends: ReadonlyMap<string, SnapshotBackend>,
    private readonly events?: Exchange,
    private readonly leases?: LocalLeases,
    private readonly log: Logger = silentLogger,
    /** Collects what a removed snapshot leaves unreferenced (its parent chain, say). */
    private readonly gc?: GcHook,
  ) {}

  /** Names of the loaded snapshotters. */
  snapshotters(): string[] {
    return [...this.backends.keys()];
  }

  private backend(sn: string): SnapshotBackend {
    if (sn === '') throw new InvalidArgument('snapshotter: must be set');
    const b = this.backends.get(sn);
    if (!b) {
      throw new InvalidArgument(
        `snapshotter ${quote(sn)}: not loaded: available are ${this.snapshotters().join(', ') || 'none'}`,
      );
    }
    return b;
  }

  private row(ns: string, sn: string, key: string): SnapshotRow | undefined {
    return this.store.db
      .prepare('SELECT * FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?')
      .safeIntegers(true)
      .get(ns, sn, key) as SnapshotRow | undefined;
  }

  private mustRow(ns: string, sn: string, key: string): SnapshotRow {
    const r = this.row(ns, sn, key);
    if (!r) throw notFound(ns, sn, key);
    return r;
  }

  /** The committed chain under `parent` (nearest first); checked, for a new snapshot `key`. */
  private chain(ns: string, sn: string, key: string, parent: string): SnapshotRow[] {
    const out: SnapshotRow[] = [];
    for (let k = parent; k !== ''; ) {
      const r = this.row(ns, sn, k);
      if (!r) {
        throw out.length === 0
          ? new NotFound(`parent snapshot ${quote(parent)} in namespace "${ns}" (${sn}): not found`)
          : new NotFound(`snapshot ${quote(out.at(-1)!.key)}: its parent ${quote(k)} is missing`);
      }
      if (out.length === 0 && Number(r.kind) !== Kind.COMMITTED) {
        throw new InvalidArgument(
          `parent snapshot ${quote(parent)}: is ${KIND_NAMES[Number(r.kind)]}, not committed: commit it first`,
        );
      }
      out.push(r);
      if (out.length > MAX_CHAIN) {
        throw new InvalidArgument(
          `snapshot ${quote(key)}: parent ${quote(parent)} is a chain of more than ${MAX_CHAIN} snapshots: the limit is ${MAX_CHAIN}`,
        );
      }
      k = r.parent;
    }
    return out;
  }

  private mountsOf(b: SnapshotBackend, r: SnapshotRow, chain: readonly SnapshotRow[]): Mount[] {
    return b.mounts({
      id: Number(r.backend_id),
      kind: Number(r.kind) as Kind,
      parents: chain.map((p) => Number(p.backend_id)),
    });
  }

  private toInfo(r: SnapshotRow): Info {
    return create(InfoSchema, {
      name: r.key,
      parent: r.parent,
      kind: Number(r.kind) as Kind,
      createdAt: timestampFromNanos(r.created_at),
      updatedAt: timestampFromNanos(r.updated_at),
      labels: labelsFromText(r.labels),
    });
  }

  private pin(id: string): void {
    this.pinned.set(id, (this.pinned.get(id) ?? 0) + 1);
  }

  private unpin(id: string): void {
    const n = (this.pinned.get(id) ?? 1) - 1;
    if (n <= 0) this.pinned.delete(id);
    else this.pinned.set(id, n);
  }

  private dropLeaseResources(ns: string, sn: string, key: string): void {
    this.store.db
      .prepare('DELETE FROM lease_resources WHERE namespace = ? AND type = ? AND id = ?')
      .run(ns, `snapshots/${sn}`, key);
  }

  prepare(
    ns: string,
    sn: string,
    key: string,
    parent = '',
    labels: Record<string, string> = {},
    lease?: string,
    signal?: AbortSignal,
  ): Promise<Mount[]> {
    return this.createSnapshot(Kind.ACTIVE, ns, sn, key, parent, labels, lease, signal);
  }

  view(
    ns: string,
    sn: string,
    key: string,
    parent = '',
    labels: Record<string, string> = {},
    lease?: string,
    signal?: AbortSignal,
  ): Promise<Mount[]> {
    return this.createSnapshot(Kind.VIEW, ns, sn, key, parent, labels, lease, signal);
  }

  private async createSnapshot(
    kind: Kind,
    ns: string,
    sn: string,
    key: string,
    parent: string,
    labels: Record<string, string>,
    lease: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Mount[]> {
    validateIdentifier(ns, 'namespace');
    const b = this.backend(sn);
    validateSnapshotKey(key);
    if (parent !== '') validateSnapshotKey(parent, 'parent');
    validateLabels(labels, `snapshot ${quote(key)} labels`);

    // Cheap checks first, so a taken key or a bad parent costs no directory work.
    const parents = this.store.read(() => {
      if (this.row(ns, sn, key)) throw alreadyExists(key);
      return this.chain(ns, sn, key, parent).map((p) => Number(p.backend_id));
    });
    b.check(kind, parents);

    const pinId = `${ns}\0${sn}\0${parent}`;
    if (parent !== '') this.pin(pinId);
    try {
      const temp = await b.build(kind, parents, signal);
      // Set once the directory is in place, so a failed transaction commit can take it back out.
      const placed: { id?: number } = {};
      try {
        signal?.throwIfAborted();
        const mounts = this.store.write(() => {
          ensureNamespace(this.store, ns);
          if (this.row(ns, sn, key)) throw alreadyExists(key);
          const chain = this.chain(ns, sn, key, parent);
          if (lease !== undefined)
            this.leases?.addResourceInTx(ns, lease, { type: `snapshots/${sn}`, id: key });
          const max = this.store.db
            .prepare('SELECT max(backend_id) AS m FROM snapshots WHERE snapshotter = ?')
            .get(sn) as { m: number | null };
          const id = b.allocate(max.m ?? 0);
          const now = nowNanos();
          this.store.db
            .prepare(
              `INSERT INTO snapshots (namespace, snapshotter, key, backend_id, parent, kind, labels, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(ns, sn, key, id, parent, kind, labelsToText(dropEmpty(labels)), now, now);
          b.install(temp, id);
          placed.id = id;
          return this.mountsOf(b, this.mustRow(ns, sn, key), chain);
        });
        if (kind === Kind.ACTIVE) {
          this.events?.publishMessage(ns, '/snapshot/prepare', SnapshotPrepareSchema, { key, parent });
        }
        return mounts;
      } catch (e) {
        if (placed.id === undefined) {
          await b.abandon(temp).catch((err) => this.log.warn({ err, temp }, 'could not remove temp dir'));
        } else {
          const d = b.detach(placed.id);
          if (d) await b.discard(d).catch((err) => this.log.warn({ err, path: d }, 'could not remove dir'));
        }
        throw e;
      }
    } finally {
      if (parent !== '') this.unpin(pinId);
    }
  }

  /** The mounts of an active snapshot or a view. */
  mounts(ns: string, sn: string, key: string): Mount[] {
    validateIdentifier(ns, 'namespace');
    const b = this.backend(sn);
    validateSnapshotKey(key);
    return this.store.read(() => {
      const r = this.mustRow(ns, sn, key);
      if (Number(r.kind) === Kind.COMMITTED) {
        throw new FailedPrecondition(
          `snapshot ${quote(key)}: is committed: only active snapshots and views have mounts: prepare or view one on it`,
        );
      }
      return this.mountsOf(b, r, this.chain(ns, sn, key, r.parent));
    });
  }

  /** Turns the active snapshot `key` into the committed snapshot `name`; `key` is gone after. */
  async commit(
    ns: string,
    sn: string,
    name: string,
    key: string,
    labels: Record<string, string> = {},
    lease?: string,
    signal?: AbortSignal,
  ): Promise<void> {
    validateIdentifier(ns, 'namespace');
    const b = this.backend(sn);
    validateSnapshotKey(name, 'name');
    validateSnapshotKey(key);
    validateLabels(labels, `snapshot ${quote(name)} labels`);
    const check = (): SnapshotRow => {
      if (this.row(ns, sn, name)) throw alreadyExists(name);
      const r = this.mustRow(ns, sn, key);
      if (Number(r.kind) !== Kind.ACTIVE) {
        throw new FailedPrecondition(
          `snapshot ${quote(key)}: is ${KIND_NAMES[Number(r.kind)]}, not active: only active snapshots can be committed`,
        );
      }
      return r;
    };
    const before = this.store.read(check);
    // Measured once, here, as containerd does: a committed snapshot's files never change.
    let usage: Usage;
    try {
      usage = await diskUsage(b.fsDir(Number(before.backend_id)), signal);
    } catch (e) {
      this.store.read(check);
      throw e;
    }
    this.store.write(() => {
      const r = check();
      if (r.backend_id !== before.backend_id) {
        throw new Unavailable(`snapshot ${quote(key)}: replaced while being committed: retry`);
      }
      if (lease !== undefined) this.leases?.addResourceInTx(ns, lease, { type: `snapshots/${sn}`, id: name });
      const now = nowNanos();
      this.store.db
        .prepare(
          `UPDATE snapshots SET key = ?, kind = ?, labels = ?, created_at = ?, updated_at = ?, usage_size = ?, usage_inodes = ?
           WHERE namespace = ? AND snapshotter = ? AND key = ?`,
        )
        .run(
          name,
          Kind.COMMITTED,
          labelsToText(dropEmpty(labels)),
          now,
          now,
          usage.size,
          usage.inodes,
          ns,
          sn,
          key,
        );
      this.dropLeaseResources(ns, sn, key);
    });
    this.events?.publishMessage(ns, '/snapshot/commit', SnapshotCommitSchema, { key, name });
  }

  async remove(ns: string, sn: string, key: string, signal?: AbortSignal): Promise<void> {
    await this.removeSnapshot(ns, sn, key, signal);
    this.events?.publishMessage(ns, '/snapshot/remove', SnapshotRemoveSchema, { key });
    this.gc?.schedule();
  }

  /** For the garbage collector: remove the record and the files; no event; gone already is fine. */
  async gcRemove(ns: string, sn: string, key: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.removeSnapshot(ns, sn, key, signal);
    } catch (e) {
      if (e instanceof NotFound) return;
      throw e;
    }
  }

  private async removeSnapshot(ns: string, sn: string, key: string, signal?: AbortSignal): Promise<void> {
    validateIdentifier(ns, 'namespace');
    const b = this.backend(sn);
    validateSnapshotKey(key);
    signal?.throwIfAborted();
    // Where the directory went, so a failed transaction commit can put it back.
    const moved: { id: number; path?: string | undefined } = { id: 0 };
    try {
      this.store.write(() => {
        const r = this.mustRow(ns, sn, key);
        const child = this.store.db
          .prepare('SELECT key FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ? LIMIT 1')
          .get(ns, sn, key) as { key: string } | undefined;
        if (child) {
          throw new FailedPrecondition(
            `snapshot ${quote(key)}: cannot remove snapshot with child ${quote(child.key)}: remove the child first`,
          );
        }
        if (this.pinned.has(`${ns}\0${sn}\0${key}`)) {
          throw new FailedPrecondition(
            `snapshot ${quote(key)}: cannot remove snapshot with child: a snapshot on it is being prepared`,
          );
        }
        this.store.db
          .prepare('DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?')
          .run(ns, sn, key);
        this.dropLeaseResources(ns, sn, key);
        moved.id = Number(r.backend_id);
        moved.path = b.detach(moved.id);
      });
    } catch (e) {
      if (moved.path !== undefined) b.reattach(moved.path, moved.id);
      throw e;
    }
    if (moved.path === undefined) {
      this.log.warn({ namespace: ns, snapshotter: sn, key, id: moved.id }, 'snapshot had no directory');
      return;
    }
    // The record is gone; files left behind are tmp- dirs that cleanup and the next start remove.
    const path = moved.path;
    await b
      .discard(path, signal)
      .catch((err) => this.log.warn({ err, path }, 'could not remove snapshot files'));
  }

  stat(ns: string, sn: string, key: string): Info {
    validateIdentifier(ns, 'namespace');
    this.backend(sn);
    validateSnapshotKey(key);
    return this.store.read(() => this.toInfo(this.mustRow(ns, sn, key)));
  }

  /**
   * Labels only, with containerd's masks: `labels` replaces them all, `labels.<k>` sets or (empty
   * value) removes one; no mask replaces them all.
   */
  update(ns: string, sn: string, info: Info | undefined, paths: readonly string[] = []): Info {
    validateIdentifier(ns, 'namespace');
    this.backend(sn);
    if (!info || info.name === '') throw new InvalidArgument('snapshot name: must be set');
    validateSnapshotKey(info.name, 'name');
    for (const p of paths) {
      if (p !== 'labels' && !(p.startsWith('labels.') && p.length > 7)) {
        throw new InvalidArgument(
          `snapshot ${quote(info.name)}: cannot update field "${p}": only labels and labels.<key> can be updated`,
        );
      }
    }
    return this.store.write(() => {
      const r = this.mustRow(ns, sn, info.name);
      let labels = labelsFromText(r.labels);
      if (paths.length === 0) labels = { ...info.labels };
      for (const p of paths) {
        if (p === 'labels') labels = { ...info.labels };
        else labels[p.slice(7)] = info.labels[p.slice(7)] ?? '';
      }
      labels = dropEmpty(labels);
      validateLabels(labels, `snapshot ${quote(info.name)} labels`);
      this.store.db
        .prepare(
          'UPDATE snapshots SET labels = ?, updated_at = ? WHERE namespace = ? AND snapshotter = ? AND key = ?',
        )
        .run(labelsToText(labels), nowNanos(), ns, sn, info.name);
      return this.toInfo(this.mustRow(ns, sn, info.name));
    });
  }

  /**
   * Filters as containerd's: kind (active, view, committed), name, parent, labels.<key>. One
   * consistent state, in time slices.
   */
  async list(ns: string, sn: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Info[]> {
    validateIdentifier(ns, 'namespace');
    this.backend(sn);
    const filter = parseFilters(filters);
    const all = await this.store.snapshot((db) => {
      const rows = db
        .prepare('SELECT * FROM snapshots WHERE namespace = ? AND snapshotter = ? ORDER BY key')
        .safeIntegers(true)
        .iterate(ns, sn) as IterableIterator<SnapshotRow>;
      return mapInSlices(rows, (r) => this.toInfo(r), { signal });
    });
    return matchAllSliced(
      filter,
      all,
      (i) => adaptObject({ kind: KIND_NAMES[i.kind], name: i.name, parent: i.parent }, { labels: i.labels }),
      { signal },
    );
  }

  /**
   * Disk usage of the snapshot's own files: walked for an active snapshot, measured once for a
   * committed one, nothing for a view (containerd's numbers).
   */
  async usage(ns: string, sn: string, key: string, signal?: AbortSignal): Promise<Usage> {
    validateIdentifier(ns, 'namespace');
    const b = this.backend(sn);
    validateSnapshotKey(key);
    const r = this.store.read(() => this.mustRow(ns, sn, key));
    const kind = Number(r.kind);
    if (kind === Kind.VIEW) return { size: 0, inodes: 0 };
    if (kind === Kind.COMMITTED && r.usage_size !== null && r.usage_inodes !== null) {
      return { size: Number(r.usage_size), inodes: Number(r.usage_inodes) };
    }
    let u: Usage;
    try {
      u = await diskUsage(b.fsDir(Number(r.backend_id)), signal);
    } catch (e) {
      this.store.read(() => this.mustRow(ns, sn, key));
      throw e;
    }
    if (kind === Kind.COMMITTED) {
      this.store.write(() =>
        this.store.db
          .prepare(
            'UPDATE snapshots SET usage_size = ?, usage_inodes = ? WHERE snapshotter = ? AND backend_id = ? AND usage_size IS NULL',
          )
          .run(u.size, u.inodes, sn, r.backend_id),
      );
    }
    return u;
  }

  /**
   * Removes the snapshotter's directories that no record names (left by a crash or a failed
   * removal) and its unused temp dirs. Returns the paths removed.
   */
  async cleanup(sn: string, signal?: AbortSignal): Promise<string[]> {
    const b = this.backend(sn);
    const removed = await b.removeTemps(signal);
    const onDisk = await b.ids(signal);
    const known = new Set(
      (
        this.store.db.prepare('SELECT backend_id AS id FROM snapshots WHERE snapshotter = ?').all(sn) as {
          id: number;
        }[]
      ).map((r) => r.id),
    );
    for (const id of onDisk) {
      if (known.has(id)) continue;
      const d = b.detach(id);
      if (!d) continue;
      await b.discard(d, signal);
      removed.push(d);
    }
    return removed;
  }

  count(): number {
    return (this.store.db.prepare('SELECT count(*) AS n FROM snapshots').get() as { n: number }).n;
  }
}

function dropEmpty(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
}

function notFound(ns: string, sn: string, key: string): NotFound {
  return new NotFound(`snapshot ${quote(key)} in namespace "${ns}" (${sn}): not found`);
}

function alreadyExists(key: string): AlreadyExists {
  return new AlreadyExists(`snapshot ${quote(key)}: already exists`);
}
