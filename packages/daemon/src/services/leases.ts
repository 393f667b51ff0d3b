import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  AlreadyExists,
  InvalidArgument,
  type Logger,
  mapInSlices,
  matchAllSliced,
  NotFound,
  namespaceFromContext,
  parseFilters,
  service,
  type ServiceRegistration,
  silentLogger,
  timestampFromNanos,
  validateIdentifier,
  validateLabels,
  validateLeaseId,
} from '@ctrd/api-proto';
import {
  type Lease,
  LeaseSchema,
  LeasesService,
  type Resource,
  ResourceSchema,
} from '@ctrd/api-proto/leases';
import { validateDigest } from '@ctrd/api-proto/oci';
import { validateRef } from '../content/paths.js';
import { validateImageName } from '../images/local-images.js';
import { validateSnapshotKey } from '../snapshots/local-snapshots.js';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { GcHook } from '../gc/hook.js';
import type { MetaStore } from '../store/meta-store.js';
import { ensureNamespace } from './namespace-rows.js';

// Leases hold references to resources so a garbage collector (a later issue) keeps them while a
// client works. A lease labelled containerd.io/gc.expire (RFC 3339) is removed once past it.

export const EXPIRE_LABEL = 'containerd.io/gc.expire';

// containerd accepts content, ingests and snapshots/<snapshotter>; ctrd also records containers
// made under a lease.
const RESOURCE_TYPE = /^(content|ingests|containers|images|snapshots\/[A-Za-z0-9._-]+)$/;

interface LeaseRow {
  id: string;
  labels: string;
  created_at: bigint;
}

// Lease ids follow api-proto's validateLeaseId (not the identifier rule: see there).
export { validateLeaseId };

function notFound(ns: string, id: string): NotFound {
  return new NotFound(`lease "${id}" in namespace "${ns}": not found`);
}

/** containerd's generated id shape: `<unix nanos>-<3 random bytes, url-safe base64>`. */
export function generateLeaseId(): string {
  return `${nowNanos()}-${randomBytes(3).toString('base64url')}`;
}

/** A resource's type, and its id by the rules of what it names (content: a digest, as containerd). */
function validateResource(r: Resource | undefined): Resource {
  if (!r) throw new InvalidArgument('lease resource: must be set');
  if (r.id === '') throw new InvalidArgument('lease resource id: must not be empty');
  if (r.id.length > 1024) throw new InvalidArgument('lease resource id: longer than 1024 characters');
  if (!RESOURCE_TYPE.test(r.type)) {
    throw new InvalidArgument(
      `lease resource type "${r.type}": unsupported: use content, ingests, containers, images or snapshots/<snapshotter>`,
    );
  }
  const what = `lease resource ${r.type}`;
  if (r.type === 'content') validateDigest(r.id, `${what} id`);
  else if (r.type === 'ingests') validateRef(r.id);
  else if (r.type === 'containers') validateIdentifier(r.id, `${what} id`);
  else if (r.type === 'images') validateImageName(r.id);
  else validateSnapshotKey(r.id, `${what} id`);
  return r;
}

export class LocalLeases {
  constructor(
    private readonly store: MetaStore,
    private readonly log: Logger = silentLogger,
    /** What a lease held becomes collectable when it goes: the collector is told. */
    readonly gc?: GcHook,
  ) {}

  private toMessage(r: LeaseRow): Lease {
    return create(LeaseSchema, {
      id: r.id,
      labels: labelsFromText(r.labels),
      createdAt: timestampFromNanos(r.created_at),
    });
  }

  create(ns: string, id: string, labels: Record<string, string> = {}): Lease {
    validateIdentifier(ns, 'namespace');
    const leaseId = id === '' ? generateLeaseId() : id;
    validateLeaseId(leaseId);
    validateLabels(labels, `lease "${leaseId}" labels`);
    const expire = labels[EXPIRE_LABEL];
    if (expire !== undefined && Number.isNaN(Date.parse(expire))) {
      throw new InvalidArgument(
        `lease "${leaseId}": label ${EXPIRE_LABEL} must be an RFC 3339 time, got "${expire}"`,
      );
    }
    return this.store.write(() => {
      ensureNamespace(this.store, ns);
      const r = this.store.db
        .prepare(
          'INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(ns, leaseId, labelsToText(labels), nowNanos());
      if (r.changes === 0) throw new AlreadyExists(`lease "${leaseId}": already exists`);
      const row = this.store.db
        .prepare('SELECT id, labels, created_at FROM leases WHERE namespace = ? AND id = ?')
        .safeIntegers(true)
        .get(ns, leaseId) as LeaseRow;
      return this.toMessage(row);
    });
  }

  delete(ns: string, id: string): void {
    validateIdentifier(ns, 'namespace');
    validateLeaseId(id);
    this.store.write(() => {
      const r = this.store.db.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?').run(ns, id);
      if (r.changes === 0) throw notFound(ns, id);
    });
    this.gc?.schedule();
  }

  /** Filters: id, labels.<key>. One consistent state, in time slices. */
  async list(ns: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Lease[]> {
    validateIdentifier(ns, 'namespace');
    const filter = parseFilters(filters);
    const all = await this.store.snapshot((db) => {
      const rows = db
        .prepare('SELECT id, labels, created_at FROM leases WHERE namespace = ? ORDER BY created_at, id')
        .safeIntegers(true)
        .iterate(ns) as IterableIterator<LeaseRow>;
      return mapInSlices(rows, (r) => this.toMessage(r), { signal });
    });
    return matchAllSliced(filter, all, (l) => adaptObject({ id: l.id }, { labels: l.labels }), { signal });
  }

  addResource(ns: string, id: string, resource: Resource | undefined): void {
    validateIdentifier(ns, 'namespace');
    validateLeaseId(id);
    const r = validateResource(resource);
    this.store.write(() => this.addResourceInTx(ns, id, r));
  }

  /** For other services writing under a lease, inside their own write transaction. */
  addResourceInTx(ns: string, id: string, resource: { id: string; type: string }): void {
    if (!this.store.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(ns, id)) {
      throw notFound(ns, id);
    }
    this.store.db
      .prepare(
        'INSERT INTO lease_resources (namespace, lease_id, type, id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      )
      .run(ns, id, resource.type, resource.id);
  }

  deleteResource(ns: string, id: string, resource: Resource | undefined): void {
    validateIdentifier(ns, 'namespace');
    validateLeaseId(id);
    const r = validateResource(resource);
    this.store.write(() => {
      if (!this.store.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(ns, id)) {
        throw notFound(ns, id);
      }
      this.store.db
        .prepare('DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND type = ? AND id = ?')
        .run(ns, id, r.type, r.id);
    });
  }

  listResources(ns: string, id: string): Resource[] {
    validateIdentifier(ns, 'namespace');
    validateLeaseId(id);
    return this.store.read(() => {
      if (!this.store.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(ns, id)) {
        throw notFound(ns, id);
      }
      const rows = this.store.db
        .prepare(
          'SELECT type, id FROM lease_resources WHERE namespace = ? AND lease_id = ? ORDER BY type, id',
        )
        .all(ns, id) as { type: string; id: string }[];
      return rows.map((r) => create(ResourceSchema, r));
    });
  }

  /** Removes leases whose expiry label is in the past; returns how many. */
  sweepExpired(now = new Date()): number {
    const rows = this.store.db
      .prepare('SELECT namespace, id, labels FROM leases WHERE labels LIKE ?')
      .all(`%${EXPIRE_LABEL}%`) as { namespace: string; id: string; labels: string }[];
    const expired = rows.filter((r) => {
      const at = Date.parse(labelsFromText(r.labels)[EXPIRE_LABEL] ?? '');
      return !Number.isNaN(at) && at <= now.getTime();
    });
    if (expired.length === 0) return 0;
    this.store.write(() => {
      const del = this.store.db.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?');
      for (const r of expired) del.run(r.namespace, r.id);
    });
    for (const r of expired) this.log.debug({ namespace: r.namespace, lease: r.id }, 'expired lease removed');
    this.gc?.schedule();
    return expired.length;
  }

  /** Sweeps every `intervalMs` until the returned stop function is called; never holds the process open. */
  startSweeper(intervalMs: number): () => void {
    const timer = setInterval(() => {
      try {
        this.sweepExpired();
      } catch (err) {
        this.log.warn({ err }, 'lease sweep failed');
      }
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}

export function leasesService(local: LocalLeases): ServiceRegistration {
  return service(LeasesService, {
    create: async (req, ctx) => ({ lease: local.create(namespaceFromContext(ctx), req.id, req.labels) }),
    delete: async (req, ctx) => {
      local.delete(namespaceFromContext(ctx), req.id);
      if (req.sync) await local.gc?.collect(ctx.signal);
      return {};
    },
    list: async (req, ctx) => ({
      leases: await local.list(namespaceFromContext(ctx), req.filters, ctx.signal),
    }),
    addResource: async (req, ctx) => {
      local.addResource(namespaceFromContext(ctx), req.id, req.resource);
      return {};
    },
    deleteResource: async (req, ctx) => {
      local.deleteResource(namespaceFromContext(ctx), req.id, req.resource);
      return {};
    },
    listResources: async (req, ctx) => ({
      resources: local.listResources(namespaceFromContext(ctx), req.id),
    }),
  });
}
