import type Database from 'better-sqlite3';
import { isValidDigest } from '@ctrd/api-proto/oci';

// The mark phase of containerd's collector (metadata/gc.go), over the metadata tables. Roots:
// images (their target), containers (their snapshot), leases that have not expired (their
// resources), and content or snapshots labelled containerd.io/gc.root. Edges: the
// containerd.io/gc.ref.* labels of any object, and a snapshot's parent. Everything is per
// namespace: a label in one namespace never keeps another namespace's object.

export const GC_ROOT_LABEL = 'containerd.io/gc.root';
export const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
export const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';
/** On a lease: keep its resources, but not what they reference. */
export const GC_FLAT_LABEL = 'containerd.io/gc.flat';
export const GC_EXPIRE_LABEL = 'containerd.io/gc.expire';

export function contentNode(ns: string, digest: string): string {
  return `c\0${ns}\0${digest}`;
}

export function snapshotNode(ns: string, snapshotter: string, key: string): string {
  return `s\0${ns}\0${snapshotter}\0${key}`;
}

export function ingestNode(ns: string, ref: string): string {
  return `i\0${ns}\0${ref}`;
}

export interface Marks {
  /** contentNode/snapshotNode values of everything reachable from a root. */
  live: Set<string>;
  /** ingestNode values held by a lease. */
  leasedIngests: Set<string>;
}

/** The objects a label set references (containerd.io/gc.ref.content*, gc.ref.snapshot.<sn>*). */
export function labelRefs(ns: string, labels: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith(GC_REF_CONTENT)) {
      if (isValidDigest(v)) out.push(contentNode(ns, v));
    } else if (k.startsWith(GC_REF_SNAPSHOT)) {
      const rest = k.slice(GC_REF_SNAPSHOT.length);
      const slash = rest.indexOf('/');
      const snapshotter = slash >= 0 ? rest.slice(0, slash) : rest;
      if (snapshotter !== '' && v !== '') out.push(snapshotNode(ns, snapshotter, v));
    }
  }
  return out;
}

function parseLabels(text: string): Record<string, string> {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function expired(labels: Record<string, string>, now: number): boolean {
  const at = labels[GC_EXPIRE_LABEL];
  if (at === undefined) return false;
  const t = Date.parse(at);
  return !Number.isNaN(t) && t <= now;
}

/** Runs the mark phase; call inside a transaction so it sees one state. */
export function mark(db: Database.Database, now = Date.now()): Marks {
  const edges = new Map<string, string[]>();
  const roots: string[] = [];
  const flatRoots: string[] = [];
  const leasedIngests = new Set<string>();

  const content = db.prepare('SELECT namespace, digest, labels FROM content').all() as {
    namespace: string;
    digest: string;
    labels: string;
  }[];
  for (const r of content) {
    const labels = parseLabels(r.labels);
    const node = contentNode(r.namespace, r.digest);
    edges.set(node, labelRefs(r.namespace, labels));
    if (Object.hasOwn(labels, GC_ROOT_LABEL)) roots.push(node);
  }

  const snaps = db.prepare('SELECT namespace, snapshotter, key, parent, labels FROM snapshots').all() as {
    namespace: string;
    snapshotter: string;
    key: string;
    parent: string;
    labels: string;
  }[];
  for (const r of snaps) {
    const labels = parseLabels(r.labels);
    const node = snapshotNode(r.namespace, r.snapshotter, r.key);
    const out = labelRefs(r.namespace, labels);
    if (r.parent !== '') out.push(snapshotNode(r.namespace, r.snapshotter, r.parent));
    edges.set(node, out);
    if (Object.hasOwn(labels, GC_ROOT_LABEL)) roots.push(node);
  }

  const images = db.prepare('SELECT namespace, target_digest, labels FROM images').all() as {
    namespace: string;
    target_digest: string;
    labels: string;
  }[];
  for (const r of images) {
    roots.push(contentNode(r.namespace, r.target_digest));
    roots.push(...labelRefs(r.namespace, parseLabels(r.labels)));
  }

  const containers = db
    .prepare('SELECT namespace, snapshotter, snapshot_key, labels FROM containers')
    .all() as {
    namespace: string;
    snapshotter: string;
    snapshot_key: string;
    labels: string;
  }[];
  for (const r of containers) {
    if (r.snapshotter !== '' && r.snapshot_key !== '') {
      roots.push(snapshotNode(r.namespace, r.snapshotter, r.snapshot_key));
    }
    roots.push(...labelRefs(r.namespace, parseLabels(r.labels)));
  }

  const leases = db.prepare('SELECT namespace, id, labels FROM leases').all() as {
    namespace: string;
    id: string;
    labels: string;
  }[];
  const resources = db.prepare('SELECT type, id FROM lease_resources WHERE namespace = ? AND lease_id = ?');
  for (const l of leases) {
    const labels = parseLabels(l.labels);
    if (expired(labels, now)) continue;
    const into = Object.hasOwn(labels, GC_FLAT_LABEL) ? flatRoots : roots;
    for (const res of resources.all(l.namespace, l.id) as { type: string; id: string }[]) {
      if (res.type === 'content') into.push(contentNode(l.namespace, res.id));
      else if (res.type === 'ingests') leasedIngests.add(ingestNode(l.namespace, res.id));
      else if (res.type.startsWith('snapshots/')) {
        into.push(snapshotNode(l.namespace, res.type.slice('snapshots/'.length), res.id));
      }
    }
  }

  const live = new Set<string>();
  const queue: string[] = [];
  for (const r of roots) {
    if (!live.has(r)) {
      live.add(r);
      queue.push(r);
    }
  }
  while (queue.length > 0) {
    const n = queue.pop()!;
    for (const next of edges.get(n) ?? []) {
      if (!live.has(next)) {
        live.add(next);
        queue.push(next);
      }
    }
  }
  // Flat leases keep exactly their resources.
  for (const r of flatRoots) live.add(r);
  return { live, leasedIngests };
}
