import type Database from 'better-sqlite3';
import { TimeSlice } from '@ctrd/api-proto';
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

/** ingestNode values held by a lease that has not expired: the mark's leasedIngests, by one query. */
export function leasedIngests(db: Database.Database, now = Date.now()): Set<string> {
  const rows = db
    .prepare(
      `SELECT r.namespace, r.id, l.labels FROM lease_resources r
       JOIN leases l ON l.namespace = r.namespace AND l.id = r.lease_id WHERE r.type = 'ingests'`,
    )
    .all() as { namespace: string; id: string; labels: string }[];
  const out = new Set<string>();
  for (const r of rows) if (!expired(parseLabels(r.labels), now)) out.add(ingestNode(r.namespace, r.id));
  return out;
}

/** The count of writes that may add a reference (migration 3): equal counts, same marks. */
export function gcEpoch(db: Database.Database): number {
  return (db.prepare('SELECT n FROM gc_epoch WHERE id = 0').pluck().get() as number | undefined) ?? 0;
}

/** Runs the mark phase in one go; call inside a transaction so it sees one state. */
export function mark(db: Database.Database, now = Date.now()): Marks {
  const steps = markSteps(db, now);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The mark phase in time slices, for a snapshot() connection: 40,000 objects take ~0.3 s to mark
 * here, too long to hold the event loop.
 */
export async function markInSlices(
  db: Database.Database,
  now = Date.now(),
  signal?: AbortSignal,
): Promise<Marks> {
  const slice = new TimeSlice();
  const steps = markSteps(db, now);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (slice.due) await slice.yield(signal);
    }
  } finally {
    // Stopped early (aborted): close the row iterators it holds open.
    steps.return(undefined as never);
  }
}

// The mark itself, yielding after each row so a driver can pause between rows.
function* markSteps(db: Database.Database, now: number): Generator<void, Marks> {
  const edges = new Map<string, string[]>();
  const roots: string[] = [];
  const flatRoots: string[] = [];
  const leasedIngests = new Set<string>();

  const rows = <R>(sql: string): IterableIterator<R> => db.prepare(sql).iterate() as IterableIterator<R>;

  for (const r of rows<{ namespace: string; digest: string; labels: string }>(
    'SELECT namespace, digest, labels FROM content',
  )) {
    const labels = parseLabels(r.labels);
    const node = contentNode(r.namespace, r.digest);
    edges.set(node, labelRefs(r.namespace, labels));
    if (Object.hasOwn(labels, GC_ROOT_LABEL)) roots.push(node);
    yield;
  }

  for (const r of rows<{
    namespace: string;
    snapshotter: string;
    key: string;
    parent: string;
    labels: string;
  }>('SELECT namespace, snapshotter, key, parent, labels FROM snapshots')) {
    const labels = parseLabels(r.labels);
    const node = snapshotNode(r.namespace, r.snapshotter, r.key);
    const out = labelRefs(r.namespace, labels);
    if (r.parent !== '') out.push(snapshotNode(r.namespace, r.snapshotter, r.parent));
    edges.set(node, out);
    if (Object.hasOwn(labels, GC_ROOT_LABEL)) roots.push(node);
    yield;
  }

  for (const r of rows<{ namespace: string; target_digest: string; labels: string }>(
    'SELECT namespace, target_digest, labels FROM images',
  )) {
    roots.push(contentNode(r.namespace, r.target_digest));
    roots.push(...labelRefs(r.namespace, parseLabels(r.labels)));
    yield;
  }

  for (const r of rows<{ namespace: string; snapshotter: string; snapshot_key: string; labels: string }>(
    'SELECT namespace, snapshotter, snapshot_key, labels FROM containers',
  )) {
    if (r.snapshotter !== '' && r.snapshot_key !== '') {
      roots.push(snapshotNode(r.namespace, r.snapshotter, r.snapshot_key));
    }
    roots.push(...labelRefs(r.namespace, parseLabels(r.labels)));
    yield;
  }

  const resources = db.prepare('SELECT type, id FROM lease_resources WHERE namespace = ? AND lease_id = ?');
  for (const l of rows<{ namespace: string; id: string; labels: string }>(
    'SELECT namespace, id, labels FROM leases',
  )) {
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
    yield;
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
    yield;
  }
  // Flat leases keep exactly their resources.
  for (const r of flatRoots) live.add(r);
  return { live, leasedIngests };
}
