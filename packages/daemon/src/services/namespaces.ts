import { create } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import {
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  isValidIdentifier,
  NAMESPACE_HEADER,
  NotFound,
  service,
  type ServiceRegistration,
  validateIdentifier,
  validateLabels,
} from '@ctrd/api-proto';
import {
  NamespaceCreateSchema,
  NamespaceDeleteSchema,
  NamespaceUpdateSchema,
} from '@ctrd/api-proto/event-types';
import { type Namespace, NamespaceSchema, NamespacesService } from '@ctrd/api-proto/namespaces';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { MetaStore } from '../store/meta-store.js';
import { NAMESPACE_BLOCKING_TABLES } from '../store/migrations.js';
import type { Exchange } from './exchange.js';
import { ensureNamespace } from './namespace-rows.js';

// Namespaces in containerd's semantics: Get never says NotFound (ctr reads default labels from
// namespaces that were never written), Delete refuses a namespace that still holds objects.

export class LocalNamespaces {
  constructor(
    private readonly store: MetaStore,
    private readonly events?: Exchange,
  ) {}

  get(name: string): Namespace {
    validateIdentifier(name, 'namespace');
    const row = this.store.db.prepare('SELECT labels FROM namespaces WHERE name = ?').get(name) as
      | { labels: string }
      | undefined;
    return create(NamespaceSchema, { name, labels: row ? labelsFromText(row.labels) : {} });
  }

  list(): Namespace[] {
    const rows = this.store.db.prepare('SELECT name, labels FROM namespaces ORDER BY name').all() as {
      name: string;
      labels: string;
    }[];
    return rows.map((r) => create(NamespaceSchema, { name: r.name, labels: labelsFromText(r.labels) }));
  }

  /** `from` is the namespace of the request, which containerd uses as the event's namespace. */
  create(ns: Namespace | undefined, from?: string): Namespace {
    if (!ns) throw new InvalidArgument('namespace: must be set');
    validateIdentifier(ns.name, 'namespace');
    validateLabels(ns.labels, `namespace "${ns.name}" labels`);
    const now = nowNanos();
    this.store.write(() => {
      const r = this.store.db
        .prepare(
          'INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(ns.name, labelsToText(ns.labels), now, now);
      if (r.changes === 0) throw new AlreadyExists(`namespace "${ns.name}": already exists`);
    });
    const out = create(NamespaceSchema, { name: ns.name, labels: { ...ns.labels } });
    this.events?.publishMessage(from ?? ns.name, '/namespaces/create', NamespaceCreateSchema, {
      name: out.name,
      labels: out.labels,
    });
    return out;
  }

  /**
   * With a mask, only `labels.<key>` paths (an empty value deletes the key); without one, the
   * labels are replaced.
   */
  update(ns: Namespace | undefined, paths: readonly string[], from?: string): Namespace {
    if (!ns) throw new InvalidArgument('namespace: must be set');
    validateIdentifier(ns.name, 'namespace');
    for (const p of paths) {
      if (!p.startsWith('labels.') || p === 'labels.') {
        throw new InvalidArgument(
          `namespace "${ns.name}": cannot update field "${p}": only labels.<key> can be updated`,
        );
      }
    }
    const out = this.store.write(() => {
      ensureNamespace(this.store, ns.name);
      let labels: Record<string, string>;
      if (paths.length === 0) {
        labels = Object.fromEntries(Object.entries(ns.labels).filter(([, v]) => v !== ''));
      } else {
        const row = this.store.db.prepare('SELECT labels FROM namespaces WHERE name = ?').get(ns.name) as {
          labels: string;
        };
        labels = labelsFromText(row.labels);
        for (const p of paths) {
          const key = p.slice('labels.'.length);
          const v = ns.labels[key];
          if (v === undefined || v === '') delete labels[key];
          else labels[key] = v;
        }
      }
      validateLabels(labels, `namespace "${ns.name}" labels`);
      this.store.db
        .prepare('UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?')
        .run(labelsToText(labels), nowNanos(), ns.name);
      return create(NamespaceSchema, { name: ns.name, labels });
    });
    this.events?.publishMessage(from ?? ns.name, '/namespaces/update', NamespaceUpdateSchema, {
      name: out.name,
      labels: out.labels,
    });
    return out;
  }

  delete(name: string, from?: string): void {
    validateIdentifier(name, 'namespace');
    this.store.write(() => {
      const exists = this.store.db.prepare('SELECT 1 FROM namespaces WHERE name = ?').get(name);
      if (!exists) throw new NotFound(`namespace "${name}": not found`);
      const holding: string[] = [];
      for (const t of NAMESPACE_BLOCKING_TABLES) {
        if (this.store.db.prepare(`SELECT 1 FROM ${t.table} WHERE namespace = ? LIMIT 1`).get(name)) {
          holding.push(t.what);
        }
      }
      if (holding.length > 0) {
        throw new FailedPrecondition(
          `namespace "${name}" must be empty, but it still has ${holding.join(', ')}: remove them first`,
        );
      }
      this.store.db.prepare('DELETE FROM leases WHERE namespace = ?').run(name);
      this.store.db.prepare('DELETE FROM namespaces WHERE name = ?').run(name);
    });
    this.events?.publishMessage(from ?? name, '/namespaces/delete', NamespaceDeleteSchema, { name });
  }
}

// The request namespace only names the event's namespace here; a missing or bad header is not an
// error for the Namespaces service itself.
function eventNamespace(ctx: HandlerContext): string | undefined {
  const raw = ctx.requestHeader.get(NAMESPACE_HEADER)?.split(',')[0]?.trim();
  return raw && isValidIdentifier(raw) ? raw : undefined;
}

export function namespacesService(local: LocalNamespaces): ServiceRegistration {
  return service(NamespacesService, {
    get: async (req) => ({ namespace: local.get(req.name) }),
    list: async () => ({ namespaces: local.list() }),
    create: async (req, ctx) => ({ namespace: local.create(req.namespace, eventNamespace(ctx)) }),
    update: async (req, ctx) => ({
      namespace: local.update(req.namespace, req.updateMask?.paths ?? [], eventNamespace(ctx)),
    }),
    delete: async (req, ctx) => {
      local.delete(req.name, eventNamespace(ctx));
      return {};
    },
  });
}
