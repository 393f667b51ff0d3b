import { rmSync, statSync } from 'node:fs';
import { type Logger, silentLogger } from '@ctrd/api-proto';
import { listIngests } from '../content/ingest.js';
import type { LocalContent } from '../content/local-content.js';
import type { MetaStore } from '../store/meta-store.js';
import type { GcHook } from './hook.js';
import { contentNode, ingestNode, mark, snapshotNode } from './mark.js';

// containerd's garbage collector in one process: mark from the roots (mark.ts), then sweep.
//
// Content: the mark and the deletion of unreferenced rows run in one write transaction, and the
// blob files no namespace has any more are unlinked right after, in the same synchronous step;
// a commit's rename-and-insert is synchronous too, so a collection never loses a commit.
// Snapshots: removed leaf first through the snapshot service, re-marking before each round so a
// snapshot that gained a reference meanwhile is kept.
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
    this.sweepContent(res);
    await this.sweepSnapshots(res, signal);
    this.runs++;
    this.log.debug({ ...res, ms: Date.now() - started }, 'garbage collected');
    return res;
  }

  /** Synchronous from the transaction to the last unlink (see the top of the file). */
  private sweepContent(res: CollectResult): void {
    const db = this.store.db;
    const kept = this.store.write(() => {
      const marks = mark(db);
      const rows = db.prepare('SELECT namespace, digest FROM content').all() as {
        namespace: string;
        digest: string;
      }[];
      const del = db.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?');
      for (const r of rows) {
        if (!marks.live.has(contentNode(r.namespace, r.digest))) {
          del.run(r.namespace, r.digest);
          res.content++;
        }
      }
      return { digests: this.recordedDigests(), leasedIngests: marks.leasedIngests };
    });
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
      leasedIngests: mark(this.store.db).leasedIngests,
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
    for (;;) {
      signal?.throwIfAborted();
      const { live, rows } = this.store.read(() => ({
        live: mark(this.store.db).live,
        rows: this.store.db.prepare('SELECT namespace, snapshotter, key, parent FROM snapshots').all() as {
          namespace: string;
          snapshotter: string;
          key: string;
          parent: string;
        }[],
      }));
      const parents = new Set(
        rows.filter((r) => r.parent !== '').map((r) => snapshotNode(r.namespace, r.snapshotter, r.parent)),
      );
      const leaves = rows.filter((r) => {
        const n = snapshotNode(r.namespace, r.snapshotter, r.key);
        return !live.has(n) && !parents.has(n) && !failed.has(n);
      });
      if (leaves.length === 0) return;
      for (const r of leaves) {
        signal?.throwIfAborted();
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
    }
  }
}
