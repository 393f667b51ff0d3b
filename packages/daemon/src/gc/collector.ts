import { rmSync, statSync } from 'node:fs';
import { filterInSlices, type Logger, silentLogger, TimeSlice } from '@ctrd/api-proto';
import { listIngests } from '../content/ingest.js';
import type { LocalContent } from '../content/local-content.js';
import type { MetaStore } from '../store/meta-store.js';
import type { GcHook } from './hook.js';
import { contentNode, gcEpoch, ingestNode, leasedIngests, mark, markInSlices, snapshotNode } from './mark.js';

// containerd's garbage collector in one process: mark from the roots (mark.ts), then sweep.
//
// The mark runs on a snapshot() of the store in time slices (it would otherwise hold the event
// loop ~0.3 s for 40,000 objects); the gc epoch (migration 3) counts the writes that may add a
// reference, and a deletion goes ahead only in a transaction that finds it unchanged since the
// snapshot, so a reference made while marking is never missed.
// Content: unreferenced rows are deleted in batches under that check; the blob files no namespace
// records are unlinked in the synchronous step that reads the records; a commit's rename-and-insert
// is synchronous too, so a collection never loses a commit.
// Snapshots: removed leaf first through the snapshot service, re-marking each round (and whenever
// the epoch moved) so a snapshot that gained a reference meanwhile is kept.
// Ingests: kept while a writer holds them, while a lease holds them, and for 24 hours after
// their last write.

/** What the collector needs of the snapshot service. */
export interface SnapshotRemover {
  /** Removes the record and the backend directory; the caller removes children first. */
  gcRemove(ns: string, snapshotter: string, key: string, signal?: AbortSignal): Promise<void>;
}

export interface CollectResult {
  /** Content rows removed (all namespaces). */
  content: number;
  snapshots: number;
  /** Blob files unlinked. */
  blobs: number;
  ingests: number;
}

export interface GarbageCollectorOptions {
  store: MetaStore;
  content?: LocalContent | undefined;
  /** Looked up at each collection: the snapshot service may load later, or not at all. */
  snapshots?: (() => SnapshotRemover | undefined) | undefined;
  logger?: Logger | undefined;
  /** Debounce of schedule(), ms. Default 100. */
  delayMs?: number | undefined;
  /** Age after which an idle, unleased ingest is removed, ms. Default 24 h. */
  ingestMaxAgeMs?: number | undefined;
}

export const DEFAULT_INGEST_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Content rows deleted per write transaction (~10 ms here). */
const DELETE_BATCH = 1000;
/** Plans made from a snapshot before the collector marks and deletes in one step. */
const PLAN_ATTEMPTS = 3;

interface ContentKey {
  namespace: string;
  digest: string;
}

export class GarbageCollector implements GcHook {
  private readonly store: MetaStore;
  private readonly content: LocalContent | undefined;
  private readonly snapshots: () => SnapshotRemover | undefined;
  private readonly log: Logger;
  private readonly delayMs: number;
  private readonly ingestMaxAgeMs: number;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private runs = 0;

  constructor(opts: GarbageCollectorOptions) {
    this.store = opts.store;
    this.content = opts.content;
    this.snapshots = opts.snapshots ?? (() => undefined);
    this.log = opts.logger ?? silentLogger;
    this.delayMs = opts.delayMs ?? 100;
    this.ingestMaxAgeMs = opts.ingestMaxAgeMs ?? DEFAULT_INGEST_MAX_AGE_MS;
  }

  /** Collections run so far (for tests and telemetry). */
  get collections(): number {
    return this.runs;
  }

  /** A collection soon; calls within the delay share one. */
  schedule(delayMs = this.delayMs): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect().catch((err) => this.log.warn({ err }, 'garbage collection failed'));
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Runs a collection after any one in progress; resolves with what it removed. A scheduled one
   * still waiting is dropped: this one sweeps what it would have (the deletions that asked for it
   * are done), and a client that asked for a synchronous collection is not surprised by a second
   * one moments later taking what it creates next.
   */
  collect(signal?: AbortSignal): Promise<CollectResult> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.chain.then(() => this.run(signal));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  private async run(signal?: AbortSignal): Promise<CollectResult> {
    signal?.throwIfAborted();
    const started = Date.now();
    const res: CollectResult = { content: 0, snapshots: 0, blobs: 0, ingests: 0 };
    await this.sweepContent(res, signal);
    await this.sweepSnapshots(res, signal);
    this.runs++;
    this.log.debug({ ...res, ms: Date.now() - started }, 'garbage collected');
    return res;
  }

  /**
   * Marks from a snapshot in time slices (a store of 40,000 objects takes ~0.3 s to mark), then
   * deletes the unreferenced rows in batches, each in a write transaction that first checks the gc
   * epoch: a write since the snapshot that could have added a reference makes the plan stale, and
   * it is made again. Under writes that never stop, after a few tries, mark and delete in one
   * synchronous step as before. Then the blob files no namespace records are unlinked in the same
   * synchronous step that reads the records (see the top of the file).
   */
  private async sweepContent(res: CollectResult, signal?: AbortSignal): Promise<void> {
    const db = this.store.db;
    const del = db.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?');
    for (let attempt = 0; ; attempt++) {
      if (attempt === PLAN_ATTEMPTS) {
        this.store.write(() => {
          const { live } = mark(db);
          for (const r of db.prepare('SELECT namespace, digest FROM content').all() as ContentKey[]) {
            if (!live.has(contentNode(r.namespace, r.digest)))
              res.content += del.run(r.namespace, r.digest).changes;
          }
        });
        break;
      }
      const plan = await this.store.snapshot(async (reader) => {
        const epoch = gcEpoch(reader);
        const { live } = await markInSlices(reader, Date.now(), signal);
        const rows = reader
          .prepare('SELECT namespace, digest FROM content')
          .iterate() as IterableIterator<ContentKey>;
        const garbage = await filterInSlices(rows, (r) => !live.has(contentNode(r.namespace, r.digest)), {
          signal,
        });
        return { epoch, garbage };
      });
      let stale = false;
      const slice = new TimeSlice();
      for (let i = 0; i < plan.garbage.length && !stale; i += DELETE_BATCH) {
        stale = !this.store.write(() => {
          if (gcEpoch(db) !== plan.epoch) return false;
          // Rows deleted since the snapshot are simply not there any more.
          for (const r of plan.garbage.slice(i, i + DELETE_BATCH))
            res.content += del.run(r.namespace, r.digest).changes;
          return true;
        });
        if (slice.due) await slice.yield(signal);
      }
      if (!stale) break;
    }
    const kept = this.store.read(() => ({
      digests: this.recordedDigests(),
      leasedIngests: leasedIngests(db),
    }));
    this.sweepFilesWith(kept.digests, kept.leasedIngests, res);
  }

  private recordedDigests(): Set<string> {
    const rows = this.store.db.prepare('SELECT DISTINCT digest FROM content').all() as { digest: string }[];
    return new Set(rows.map((r) => r.digest));
  }

  /**
   * Only the files: blobs no namespace records (left by a crash between rename and insert) and
   * stale ingests. Rows are untouched, so this is safe to run at start-up before any client had
   * the chance to reference what it wrote.
   */
  sweepFiles(): CollectResult {
    const res: CollectResult = { content: 0, snapshots: 0, blobs: 0, ingests: 0 };
    const kept = this.store.read(() => ({
      digests: this.recordedDigests(),
      leasedIngests: leasedIngests(this.store.db),
    }));
    this.sweepFilesWith(kept.digests, kept.leasedIngests, res);
    if (res.blobs + res.ingests > 0) this.log.info({ ...res }, 'garbage collection: stale files removed');
    return res;
  }

  private sweepFilesWith(recorded: Set<string>, leasedIngests: Set<string>, res: CollectResult): void {
    const content = this.content;
    if (!content) return;
    res.blobs = content.removeBlobFiles(content.blobDigestsOnDisk().filter((d) => !recorded.has(d)));
    const now = Date.now();
    for (const ing of listIngests(content.paths)) {
      if (content.isLocked(ing.key)) continue;
      let lastMs: number;
      if (ing.state) {
        if (leasedIngests.has(ingestNode(ing.state.meta.ns, ing.state.meta.ref))) continue;
        lastMs = Number(ing.state.updatedAt / 1_000_000n);
      } else {
        // No readable meta (a crash while the ingest was being set up): judge by the directory.
        try {
          lastMs = statSync(ing.dir).mtimeMs;
        } catch {
          continue;
        }
      }
      if (now - lastMs < this.ingestMaxAgeMs) continue;
      rmSync(ing.dir, { recursive: true, force: true });
      res.ingests++;
    }
  }

  private async sweepSnapshots(res: CollectResult, signal?: AbortSignal): Promise<void> {
    const remover = this.snapshots();
    if (!remover) return;
    const failed = new Set<string>();
    type Row = { namespace: string; snapshotter: string; key: string; parent: string };
    const ROWS = 'SELECT namespace, snapshotter, key, parent FROM snapshots';
    let stale = 0;
    for (;;) {
      signal?.throwIfAborted();
      // Marked from a snapshot, in slices. A removal goes ahead only while the gc epoch shows no
      // write that could add a reference since (checked right before it: the removal's own
      // transaction follows without a turn of the event loop); otherwise the round is marked
      // again. After a few such rounds, once in one go as before.
      const round =
        stale < 3
          ? await this.store.snapshot(async (reader) => ({
              epoch: gcEpoch(reader),
              live: (await markInSlices(reader, Date.now(), signal)).live,
              rows: reader.prepare(ROWS).all() as Row[],
            }))
          : this.store.read(() => ({
              epoch: undefined,
              live: mark(this.store.db).live,
              rows: this.store.db.prepare(ROWS).all() as Row[],
            }));
      const parents = new Set(
        round.rows
          .filter((r) => r.parent !== '')
          .map((r) => snapshotNode(r.namespace, r.snapshotter, r.parent)),
      );
      const leaves = round.rows.filter((r) => {
        const n = snapshotNode(r.namespace, r.snapshotter, r.key);
        return !round.live.has(n) && !parents.has(n) && !failed.has(n);
      });
      if (leaves.length === 0) return;
      let interrupted = false;
      for (const r of leaves) {
        signal?.throwIfAborted();
        if (round.epoch !== undefined && gcEpoch(this.store.db) !== round.epoch) {
          interrupted = true;
          break;
        }
        try {
          await remover.gcRemove(r.namespace, r.snapshotter, r.key, signal);
          res.snapshots++;
        } catch (err) {
          failed.add(snapshotNode(r.namespace, r.snapshotter, r.key));
          this.log.warn(
            { err, namespace: r.namespace, snapshotter: r.snapshotter, key: r.key },
            'garbage collection: removing a snapshot failed',
          );
        }
      }
      stale = interrupted ? stale + 1 : 0;
    }
  }
}
