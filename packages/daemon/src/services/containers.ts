import { create } from '@bufbuild/protobuf';
import { type Any, AnySchema } from '@bufbuild/protobuf/wkt';
import {
  adaptObject,
  AlreadyExists,
  InvalidArgument,
  leaseFromContext,
  filterInSlices,
  mapInSlices,
  NotFound,
  namespaceFromContext,
  parseFilters,
  service,
  type ServiceRegistration,
  TimeSlice,
  timestampFromNanos,
  validateIdentifier,
  validateLabels,
} from '@ctrd/api-proto';
import { type Container, ContainerSchema, ContainersService } from '@ctrd/api-proto/containers';
import {
  ContainerCreateSchema,
  ContainerDeleteSchema,
  ContainerUpdateSchema,
} from '@ctrd/api-proto/event-types';
import type { Statement } from 'better-sqlite3';
import { validateImageName } from '../images/local-images.js';
import { validateSnapshotKey } from '../snapshots/local-snapshots.js';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { GcHook } from '../gc/hook.js';
import type { MetaStore } from '../store/meta-store.js';
import type { Exchange } from './exchange.js';
import type { LocalLeases } from './leases.js';
import { ensureNamespace } from './namespace-rows.js';

// Container records in containerd's semantics. The spec and runtime options are Any values kept
// byte for byte as the client sent them: the daemon never re-encodes a spec it did not write.

interface ContainerRow {
  id: string;
  labels: string;
  image: string;
  runtime_name: string;
  runtime_options_type: string | null;
  runtime_options: Buffer | null;
  spec_type: string;
  spec: Buffer;
  snapshotter: string;
  snapshot_key: string;
  created_at: bigint;
  updated_at: bigint;
}

const UPDATABLE = ['labels', 'spec', 'extensions', 'image', 'snapshotkey'] as const;

const EXTENSIONS =
  'SELECT name, type_url, value FROM container_extensions WHERE namespace = ? AND container_id = ?';

function notFound(ns: string, id: string): NotFound {
  return new NotFound(`container "${id}" in namespace "${ns}": not found`);
}

function anyOf(typeUrl: string, value: Uint8Array): Any {
  return create(AnySchema, { typeUrl, value: new Uint8Array(value) });
}

export function validateContainer(c: Container): void {
  validateIdentifier(c.id, 'container id');
  validateLabels(c.labels, `container "${c.id}" labels`);
  // containerd stores these as given; ctrd holds them to the rules of what they name.
  if (c.image !== '') validateImageName(c.image);
  if (c.snapshotter !== '') validateIdentifier(c.snapshotter, `container "${c.id}" snapshotter`);
  if (c.snapshotKey !== '') validateSnapshotKey(c.snapshotKey, `key of container "${c.id}"`);
  for (const k of Object.keys(c.extensions)) {
    if (k === '') throw new InvalidArgument(`container "${c.id}": extension names must not be empty`);
  }
  if (!c.runtime?.name) throw new InvalidArgument(`container "${c.id}": runtime.name must be set`);
  if (!c.spec || c.spec.typeUrl === '') throw new InvalidArgument(`container "${c.id}": spec must be set`);
  if (c.snapshotKey !== '' && c.snapshotter === '') {
    throw new InvalidArgument(`container "${c.id}": snapshotter must be set when snapshot_key is set`);
  }
}

export class LocalContainers {
  constructor(
    private readonly store: MetaStore,
    private readonly events?: Exchange,
    private readonly leases?: LocalLeases,
    /** A deleted container's snapshot may become collectable. */
    private readonly gc?: GcHook,
  ) {}

  private row(ns: string, id: string): ContainerRow | undefined {
    return this.store
      .stmt('SELECT * FROM containers WHERE namespace = ? AND id = ?', { safeIntegers: true })
      .get(ns, id) as ContainerRow | undefined;
  }

  /** `extensions`: the statement reading a container's extensions (on the connection in use). */
  private toMessage(
    ns: string,
    r: ContainerRow,
    extensions: Statement = this.store.stmt(EXTENSIONS),
  ): Container {
    const ext = extensions.all(ns, r.id) as { name: string; type_url: string; value: Buffer }[];
    return create(ContainerSchema, {
      id: r.id,
      labels: labelsFromText(r.labels),
      image: r.image,
      runtime: {
        name: r.runtime_name,
        options:
          r.runtime_options_type === null
            ? undefined
            : anyOf(r.runtime_options_type, r.runtime_options ?? Buffer.alloc(0)),
      },
      spec: anyOf(r.spec_type, r.spec),
      snapshotter: r.snapshotter,
      snapshotKey: r.snapshot_key,
      createdAt: timestampFromNanos(r.created_at),
      updatedAt: timestampFromNanos(r.updated_at),
      extensions: Object.fromEntries(ext.map((e) => [e.name, anyOf(e.type_url, e.value)])),
    });
  }

  /** Whether the container exists: what the task calls check before going to the shim. */
  exists(ns: string, id: string): boolean {
    validateIdentifier(ns, 'namespace');
    return (
      this.store.stmt('SELECT 1 FROM containers WHERE namespace = ? AND id = ?').get(ns, id) !== undefined
    );
  }

  get(ns: string, id: string): Container {
    validateIdentifier(ns, 'namespace');
    validateIdentifier(id, 'container id');
    return this.store.read(() => {
      const r = this.row(ns, id);
      if (!r) throw notFound(ns, id);
      return this.toMessage(ns, r);
    });
  }

  /**
   * Filters as containerd's: id, image, runtime.name, labels.<key>; several strings are ORed. One
   * consistent state, filtered on the rows and then built, in time slices: a long list does not
   * hold up other calls.
   */
  async list(ns: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Container[]> {
    validateIdentifier(ns, 'namespace');
    const filter = parseFilters(filters);
    return this.store.snapshot(async (db) => {
      const rows = db
        .prepare('SELECT * FROM containers WHERE namespace = ? ORDER BY id')
        .safeIntegers(true)
        .iterate(ns) as IterableIterator<ContainerRow>;
      const kept = await filterInSlices(
        rows,
        (r) =>
          filter.match(
            adaptObject(
              { id: r.id, image: r.image, 'runtime.name': r.runtime_name },
              { labels: labelsFromText(r.labels) },
            ),
          ),
        { signal },
      );
      const extensions = db.prepare(EXTENSIONS);
      return mapInSlices(kept, (r) => this.toMessage(ns, r, extensions), { signal });
    });
  }

  /** `lease`: the request's lease; the container is recorded as one of its resources. */
  create(ns: string, c: Container | undefined, lease?: string): Container {
    validateIdentifier(ns, 'namespace');
    if (!c) throw new InvalidArgument('container: must be set');
    validateContainer(c);
    const now = nowNanos();
    const out = this.store.write(() => {
      ensureNamespace(this.store, ns);
      if (lease !== undefined) this.leases?.addResourceInTx(ns, lease, { id: c.id, type: 'containers' });
      const r = this.store
        .stmt(
          `INSERT INTO containers (namespace, id, labels, image, runtime_name, runtime_options_type, runtime_options,
             spec_type, spec, snapshotter, snapshot_key, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(
          ns,
          c.id,
          labelsToText(c.labels),
          c.image,
          c.runtime!.name,
          c.runtime!.options ? c.runtime!.options.typeUrl : null,
          c.runtime!.options ? Buffer.from(c.runtime!.options.value) : null,
          c.spec!.typeUrl,
          Buffer.from(c.spec!.value),
          c.snapshotter,
          c.snapshotKey,
          now,
          now,
        );
      if (r.changes === 0) throw new AlreadyExists(`container "${c.id}": already exists`);
      this.writeExtensions(ns, c.id, c.extensions);
      return this.toMessage(ns, this.row(ns, c.id)!);
    });
    this.events?.publishMessage(ns, '/containers/create', ContainerCreateSchema, {
      id: out.id,
      image: out.image,
      runtime: { name: out.runtime?.name ?? '', options: out.runtime?.options },
    });
    return out;
  }

  private writeExtensions(ns: string, id: string, ext: Record<string, Any>): void {
    this.store.stmt('DELETE FROM container_extensions WHERE namespace = ? AND container_id = ?').run(ns, id);
    const ins = this.store.stmt(
      'INSERT INTO container_extensions (namespace, container_id, name, type_url, value) VALUES (?, ?, ?, ?, ?)',
    );
    for (const [name, any] of Object.entries(ext)) ins.run(ns, id, name, any.typeUrl, Buffer.from(any.value));
  }

  /**
   * Field masks as containerd's: labels, labels.<k>, spec, extensions, extensions.<k>, image,
   * snapshotkey; an empty mask updates all of them. snapshotter and runtime.name never change.
   */
  update(ns: string, c: Container | undefined, paths: readonly string[] = []): Container {
    validateIdentifier(ns, 'namespace');
    if (!c) throw new InvalidArgument('container: must be set');
    validateIdentifier(c.id, 'container id');
    for (const p of paths) {
      const ok =
        (UPDATABLE as readonly string[]).includes(p) ||
        (p.startsWith('labels.') && p.length > 7) ||
        (p.startsWith('extensions.') && p.length > 11);
      if (!ok) {
        throw new InvalidArgument(
          `container "${c.id}": cannot update field "${p}": updatable are ${UPDATABLE.join(', ')}, labels.<key>, extensions.<key>`,
        );
      }
    }
    const out = this.store.write(() => {
      const r = this.row(ns, c.id);
      if (!r) throw notFound(ns, c.id);
      const cur = this.toMessage(ns, r);
      if (c.snapshotter !== '' && c.snapshotter !== cur.snapshotter) {
        throw new InvalidArgument(
          `container "${c.id}": snapshotter is immutable: create a new container instead`,
        );
      }
      if (c.runtime?.name && c.runtime.name !== cur.runtime?.name) {
        throw new InvalidArgument(
          `container "${c.id}": runtime.name is immutable: create a new container instead`,
        );
      }
      const next = create(ContainerSchema, cur);
      for (const p of paths.length === 0 ? UPDATABLE : paths) {
        if (p.startsWith('labels.')) {
          const k = p.slice(7);
          const v = c.labels[k];
          if (v === undefined || v === '') delete next.labels[k];
          else next.labels[k] = v;
        } else if (p.startsWith('extensions.')) {
          const k = p.slice(11);
          const v = c.extensions[k];
          if (v === undefined) delete next.extensions[k];
          else next.extensions[k] = v;
        } else if (p === 'labels') next.labels = { ...c.labels };
        else if (p === 'spec') next.spec = c.spec;
        else if (p === 'extensions') next.extensions = { ...c.extensions };
        else if (p === 'image') next.image = c.image;
        else if (p === 'snapshotkey') next.snapshotKey = c.snapshotKey;
      }
      validateContainer(next);
      this.store.db
        .prepare(
          `UPDATE containers SET labels = ?, image = ?, spec_type = ?, spec = ?, snapshot_key = ?, updated_at = ?
           WHERE namespace = ? AND id = ?`,
        )
        .run(
          labelsToText(next.labels),
          next.image,
          next.spec!.typeUrl,
          Buffer.from(next.spec!.value),
          next.snapshotKey,
          nowNanos(),
          ns,
          c.id,
        );
      this.writeExtensions(ns, c.id, next.extensions);
      return this.toMessage(ns, this.row(ns, c.id)!);
    });
    this.events?.publishMessage(ns, '/containers/update', ContainerUpdateSchema, {
      id: out.id,
      image: out.image,
      labels: out.labels,
      snapshotKey: out.snapshotKey,
    });
    return out;
  }

  delete(ns: string, id: string): void {
    validateIdentifier(ns, 'namespace');
    validateIdentifier(id, 'container id');
    this.store.write(() => {
      const r = this.store.stmt('DELETE FROM containers WHERE namespace = ? AND id = ?').run(ns, id);
      if (r.changes === 0) throw notFound(ns, id);
      this.store
        .stmt("DELETE FROM lease_resources WHERE namespace = ? AND type = 'containers' AND id = ?")
        .run(ns, id);
    });
    this.events?.publishMessage(ns, '/containers/delete', ContainerDeleteSchema, { id });
    this.gc?.schedule();
  }

  count(): number {
    return (this.store.db.prepare('SELECT count(*) AS n FROM containers').get() as { n: number }).n;
  }
}

export function containersService(local: LocalContainers): ServiceRegistration {
  return service(ContainersService, {
    get: async (req, ctx) => ({ container: local.get(namespaceFromContext(ctx), req.id) }),
    list: async (req, ctx) => ({
      containers: await local.list(namespaceFromContext(ctx), req.filters, ctx.signal),
    }),
    async *listStream(req, ctx) {
      const all = await local.list(namespaceFromContext(ctx), req.filters, ctx.signal);
      // Each message is encoded and written as it is yielded: in slices too, or a long stream
      // runs in one turn of the event loop.
      const slice = new TimeSlice();
      for (const container of all) {
        yield { container };
        if (slice.due) await slice.yield(ctx.signal);
      }
    },
    create: async (req, ctx) => ({
      container: local.create(namespaceFromContext(ctx), req.container, leaseFromContext(ctx)),
    }),
    update: async (req, ctx) => ({
      container: local.update(namespaceFromContext(ctx), req.container, req.updateMask?.paths ?? []),
    }),
    delete: async (req, ctx) => {
      local.delete(namespaceFromContext(ctx), req.id);
      return {};
    },
  });
}
