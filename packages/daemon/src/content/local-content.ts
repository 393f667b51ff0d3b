import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  AlreadyExists,
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
import { type Info, InfoSchema, type Status, StatusSchema } from '@ctrd/api-proto/content';
import { ContentDeleteSchema } from '@ctrd/api-proto/event-types';
import { isValidDigest, validateDigest } from '@ctrd/api-proto/oci';
import type { GcHook } from '../gc/hook.js';
import type { Exchange } from '../services/exchange.js';
import type { LocalLeases } from '../services/leases.js';
import { ensureNamespace } from '../services/namespace-rows.js';
import { labelsFromText, labelsToText, nowNanos } from '../store/codec.js';
import type { MetaStore } from '../store/meta-store.js';
import { ContentWriter, type WriterHost } from './content-writer.js';
import { type IngestMeta, listIngests, readIngest, writeMeta } from './ingest.js';
import {
  blobFile,
  type ContentPaths,
  contentPaths,
  ingestDir,
  ingestKey,
  mapFsError,
  safeSize,
  validateRef,
} from './paths.js';

// The content store: blobs on disk once, visible per namespace through rows of the `content`
// table (containerd's "shared" policy: a blob another namespace committed is added to this one
// by a write that names its digest, never read across namespaces by digest alone).
//
// The step that makes a blob visible (rename into place + insert the row) and the collector's
// sweep (delete rows + unlink files) are both synchronous, so in this single-threaded process
// neither can observe the other half-done.

/** Largest chunk Read sends. */
export const READ_CHUNK = 1 << 20;

export interface LocalContentOptions {
  /** The content root: blobs/<alg>/<hex> and ingest/<key>/ go under it. */
  root: string;
  store: MetaStore;
  events?: Exchange | undefined;
  /** The lease service, looked up when a request carries a lease. */
  leases?: (() => LocalLeases | undefined) | undefined;
  gc?: GcHook | undefined;
  logger?: Logger | undefined;
}

export interface WriterOptions {
  /** Expected size; 0 or absent when unknown. */
  total?: number | undefined;
  /** Expected digest; '' or absent when unknown. */
  expected?: string | undefined;
  lease?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface IngestOptions {
  ref: string;
  expected?: string | undefined;
  size?: number | undefined;
  labels?: Record<string, string> | undefined;
  lease?: string | undefined;
  signal?: AbortSignal | undefined;
}

interface ContentRow {
  digest: string;
  size: bigint;
  labels: string;
  created_at: bigint;
  updated_at: bigint;
}

function notFound(digest: string): NotFound {
  return new NotFound(`content digest ${digest}: not found`);
}

function ingestNotFound(ref: string): NotFound {
  return new NotFound(`ingest ref "${ref}": not found`);
}

function toInfo(r: ContentRow): Info {
  return create(InfoSchema, {
    digest: r.digest,
    size: r.size,
    createdAt: timestampFromNanos(r.created_at),
    updatedAt: timestampFromNanos(r.updated_at),
    labels: labelsFromText(r.labels),
  });
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export class LocalContent {
  readonly paths: ContentPaths;
  private readonly store: MetaStore;
  private readonly events: Exchange | undefined;
  private readonly leases: () => LocalLeases | undefined;
  private readonly gc: GcHook | undefined;
  private readonly log: Logger;
  private readonly locks = new Map<string, { since: number }>();
  private readonly host: WriterHost;

  constructor(opts: LocalContentOptions) {
    this.paths = contentPaths(opts.root);
    this.store = opts.store;
    this.events = opts.events;
    this.leases = opts.leases ?? (() => undefined);
    this.gc = opts.gc;
    this.log = opts.logger ?? silentLogger;
    mkdirSync(this.paths.blobs, { recursive: true, mode: 0o700 });
    mkdirSync(this.paths.ingest, { recursive: true, mode: 0o700 });
    this.host = {
      finishCommit: (a) => this.finishCommit(a),
      release: (key) => {
        this.locks.delete(key);
      },
      abortIfCommitted: (ns, ref, digest, lease) => this.abortIfCommitted(ns, ref, digest, lease),
      syncBlobDir: (digest) => this.syncBlobDir(digest),
    };
  }

  private row(ns: string, digest: string): ContentRow | undefined {
    return this.store.db
      .prepare(
        'SELECT digest, size, labels, created_at, updated_at FROM content WHERE namespace = ? AND digest = ?',
      )
      .safeIntegers(true)
      .get(ns, digest) as ContentRow | undefined;
  }

  private leaseResource(ns: string, lease: string | undefined, type: string, id: string): void {
    if (lease === undefined) return;
    const leases = this.leases();
    if (!leases) throw new Unavailable(`lease "${lease}": the lease service is not loaded`);
    leases.addResourceInTx(ns, lease, { type, id });
  }

  private dropLeaseResource(ns: string, lease: string | undefined, type: string, id: string): void {
    if (lease === undefined) return;
    this.store.db
      .prepare('DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND type = ? AND id = ?')
      .run(ns, lease, type, id);
  }

  // ---- committed content ----------------------------------------------------------------------

  info(ns: string, digest: string): Info {
    validateIdentifier(ns, 'namespace');
    validateDigest(digest);
    const r = this.row(ns, digest);
    if (!r) throw notFound(digest);
    return toInfo(r);
  }

  /** containerd's masks: labels, labels.<key>; an empty mask replaces the labels. Empty values delete. */
  update(ns: string, info: Info | undefined, paths: readonly string[] = []): Info {
    validateIdentifier(ns, 'namespace');
    if (!info) throw new InvalidArgument('content info: must be set');
    validateDigest(info.digest);
    for (const p of paths) {
      if (p !== 'labels' && !(p.startsWith('labels.') && p.length > 7)) {
        throw new InvalidArgument(
          `content digest ${info.digest}: cannot update field "${p}": updatable are labels and labels.<key>`,
        );
      }
    }
    return this.store.write(() => {
      const r = this.row(ns, info.digest);
      if (!r) throw notFound(info.digest);
      let labels = labelsFromText(r.labels);
      if (paths.length === 0) labels = { ...info.labels };
      for (const p of paths) {
        if (p === 'labels') labels = { ...info.labels };
        else {
          const k = p.slice(7);
          const v = info.labels[k];
          if (v === undefined || v === '') delete labels[k];
          else labels[k] = v;
        }
      }
      for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
      validateLabels(labels, `content digest ${info.digest} labels`);
      this.store.db
        .prepare('UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?')
        .run(labelsToText(labels), nowNanos(), ns, info.digest);
      return toInfo(this.row(ns, info.digest)!);
    });
  }

  /** Filters: digest, size, labels.<key>. One consistent state, in time slices. */
  async list(ns: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Info[]> {
    validateIdentifier(ns, 'namespace');
    const filter = parseFilters(filters);
    const all = await this.store.snapshot((db) => {
      const rows = db
        .prepare(
          'SELECT digest, size, labels, created_at, updated_at FROM content WHERE namespace = ? ORDER BY digest',
        )
        .safeIntegers(true)
        .iterate(ns) as IterableIterator<ContentRow>;
      return mapInSlices(rows, toInfo, { signal });
    });
    return matchAllSliced(
      filter,
      all,
      (i) => adaptObject({ digest: i.digest, size: i.size.toString() }, { labels: i.labels }),
      { signal },
    );
  }

  /** Removes the blob from this namespace; the file goes at the next collection if no namespace has it. */
  delete(ns: string, digest: string): void {
    validateIdentifier(ns, 'namespace');
    validateDigest(digest);
    this.store.write(() => {
      const r = this.store.db
        .prepare('DELETE FROM content WHERE namespace = ? AND digest = ?')
        .run(ns, digest);
      if (r.changes === 0) throw notFound(digest);
    });
    this.events?.publishMessage(ns, '/content/delete', ContentDeleteSchema, { digest });
    this.gc?.schedule();
  }

  /** The blob's file, for readers in this process; NotFound unless visible in `ns`. */
  blobPath(ns: string, digest: string): string {
    this.info(ns, digest);
    return blobFile(this.paths, digest);
  }

  /**
   * Exactly min(size, remaining) bytes from `offset` (size 0 or absent: to the end), in chunks of
   * at most 1 MiB. Visibility and range are checked before the first chunk is asked for.
   */
  readStream(
    ns: string,
    digest: string,
    opts: { offset?: number | undefined; size?: number | undefined; signal?: AbortSignal | undefined } = {},
  ): AsyncIterable<Uint8Array> {
    const info = this.info(ns, digest);
    const total = Number(info.size);
    const offset = safeSize(opts.offset ?? 0, `content digest ${digest}: read offset`);
    const size = safeSize(opts.size ?? 0, `content digest ${digest}: read size`);
    if (offset > total) {
      throw new InvalidArgument(
        `content digest ${digest}: read offset ${offset} is past the end of the blob (${total} bytes)`,
      );
    }
    const length = size > 0 ? Math.min(size, total - offset) : total - offset;
    return this.chunks(digest, blobFile(this.paths, digest), offset, length, opts.signal);
  }

  private async *chunks(
    digest: string,
    path: string,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): AsyncGenerator<Uint8Array> {
    let fd: Awaited<ReturnType<typeof open>>;
    try {
      fd = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new NotFound(`content digest ${digest}: blob file is missing`, { cause: e });
      }
      throw e;
    }
    try {
      let pos = offset;
      let left = length;
      while (left > 0) {
        signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
        const { bytesRead } = await fd.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) {
          throw new NotFound(`content digest ${digest}: blob file is shorter than its recorded size`);
        }
        pos += bytesRead;
        left -= bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fd.close();
    }
  }

  // ---- ingests --------------------------------------------------------------------------------

  private toStatus(meta: IngestMeta, offset: number, updatedAt: bigint): Status {
    return create(StatusSchema, {
      ref: meta.ref,
      offset: BigInt(offset),
      total: BigInt(meta.total),
      expected: meta.expected,
      startedAt: timestampFromNanos(BigInt(meta.startedAt)),
      updatedAt: timestampFromNanos(updatedAt),
    });
  }

  status(ns: string, ref: string): Status {
    validateIdentifier(ns, 'namespace');
    validateRef(ref);
    const key = ingestKey(ns, ref);
    const st = readIngest(ingestDir(this.paths, ns, ref), key);
    if (!st || st.meta.ns !== ns || st.meta.ref !== ref) throw ingestNotFound(ref);
    return this.toStatus(st.meta, st.offset, st.updatedAt);
  }

  /** Filters: ref. */
  async listStatuses(ns: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<Status[]> {
    validateIdentifier(ns, 'namespace');
    const filter = parseFilters(filters);
    const mine = listIngests(this.paths)
      .flatMap((i) => (i.state && i.state.meta.ns === ns ? [i.state] : []))
      .sort((a, b) => (a.meta.ref < b.meta.ref ? -1 : a.meta.ref > b.meta.ref ? 1 : 0));
    return matchAllSliced(
      filter,
      mine.map((s) => this.toStatus(s.meta, s.offset, s.updatedAt)),
      (s) => adaptObject({ ref: s.ref }),
      { signal },
    );
  }

  abort(ns: string, ref: string): void {
    validateIdentifier(ns, 'namespace');
    validateRef(ref);
    const key = ingestKey(ns, ref);
    this.checkUnlocked(key, ref);
    const dir = ingestDir(this.paths, ns, ref);
    const st = readIngest(dir, key);
    if (!st || st.meta.ns !== ns || st.meta.ref !== ref) {
      if (!existsSync(dir)) throw ingestNotFound(ref);
    }
    rmSync(dir, { recursive: true, force: true });
    this.store.write(() => {
      this.store.db
        .prepare("DELETE FROM lease_resources WHERE namespace = ? AND type = 'ingests' AND id = ?")
        .run(ns, ref);
    });
  }

  private checkUnlocked(key: string, ref: string): void {
    const held = this.locks.get(key);
    if (held) {
      throw new Unavailable(
        `ref ${ref} locked for ${seconds(Date.now() - held.since)} (since ${new Date(held.since).toISOString()})`,
      );
    }
  }

  /** True while a writer holds the ingest with this key (the collector leaves it alone). */
  isLocked(key: string): boolean {
    return this.locks.has(key);
  }

  /**
   * containerd's check before a write: if `expected` is committed here, AlreadyExists; if it is on
   * disk from another namespace (and its size agrees), it is added to this namespace, then
   * AlreadyExists. Either way a lease on the request gets the content.
   */
  private existing(ns: string, expected: string, total: number, lease: string | undefined): void {
    if (this.row(ns, expected)) {
      if (lease !== undefined) this.store.write(() => this.leaseResource(ns, lease, 'content', expected));
      throw new AlreadyExists(`content ${expected}: already exists`);
    }
    let size: number;
    try {
      size = statSync(blobFile(this.paths, expected)).size;
    } catch {
      return;
    }
    if (total > 0 && size !== total) return;
    this.store.write(() => {
      ensureNamespace(this.store, ns);
      const now = nowNanos();
      this.store.db
        .prepare(
          `INSERT INTO content (namespace, digest, size, labels, created_at, updated_at)
           VALUES (?, ?, ?, '{}', ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(ns, expected, size, now, now);
      this.leaseResource(ns, lease, 'content', expected);
    });
    throw new AlreadyExists(`content ${expected}: already exists`);
  }

  private abortIfCommitted(ns: string, ref: string, digest: string, lease: string | undefined): void {
    if (!this.row(ns, digest)) return;
    rmSync(ingestDir(this.paths, ns, ref), { recursive: true, force: true });
    this.store.write(() => {
      this.dropLeaseResource(ns, lease, 'ingests', ref);
      this.leaseResource(ns, lease, 'content', digest);
    });
    throw new AlreadyExists(`content ${digest}: already exists`);
  }

  /**
   * Opens (or resumes) the write of `ref` in `ns` and locks it until the writer is closed. A
   * second writer of the same ref gets Unavailable; an `expected` digest already committed gets
   * AlreadyExists.
   */
  async writer(ns: string, ref: string, opts: WriterOptions = {}): Promise<ContentWriter> {
    validateIdentifier(ns, 'namespace');
    validateRef(ref);
    opts.signal?.throwIfAborted();
    const expected = opts.expected ? validateDigest(opts.expected, 'expected digest') : '';
    const total = safeSize(opts.total ?? 0, `ref "${ref}": expected size`);
    if (expected) this.existing(ns, expected, total, opts.lease);
    const key = ingestKey(ns, ref);
    this.checkUnlocked(key, ref);
    this.locks.set(key, { since: Date.now() });
    let w: ContentWriter | undefined;
    try {
      if (opts.lease !== undefined) {
        this.store.write(() => this.leaseResource(ns, opts.lease, 'ingests', ref));
      }
      const dir = ingestDir(this.paths, ns, ref);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      let meta = readIngest(dir, key)?.meta;
      if (!meta || meta.ns !== ns || meta.ref !== ref) {
        const now = nowNanos().toString();
        meta = { ns, ref, total, expected, startedAt: now, updatedAt: now };
        await writeMeta(dir, meta);
      }
      w = await ContentWriter.open(this.host, {
        ns,
        ref,
        key,
        dir,
        meta,
        lease: opts.lease,
        signal: opts.signal,
      });
      await w.expect({ total, expected });
      return w;
    } catch (e) {
      if (w) await w.close();
      else this.locks.delete(key);
      throw mapFsError(e, `content ref "${ref}"`);
    }
  }

  /**
   * Writes `source` as one blob: verifies and commits it; AlreadyExists if it is already there
   * (then info() has it). On failure the ingest is removed: nothing half-written is left.
   */
  async ingest(ns: string, source: AsyncIterable<Uint8Array>, opts: IngestOptions): Promise<Info> {
    const signal = opts.signal;
    const w = await this.writer(ns, opts.ref, {
      total: opts.size,
      expected: opts.expected,
      lease: opts.lease,
      signal,
    });
    let committed = false;
    try {
      if (w.offset > 0) await w.truncate();
      for await (const chunk of source) {
        signal?.throwIfAborted();
        await w.write(chunk, signal);
      }
      const info = await w.commit(opts.size ?? 0, opts.expected ?? '', opts.labels ?? {}, signal);
      committed = true;
      return info;
    } finally {
      if (!committed) {
        await w.close();
        await rm(ingestDir(this.paths, ns, opts.ref), { recursive: true, force: true });
      }
    }
  }

  private finishCommit(a: {
    ns: string;
    ref: string;
    dir: string;
    data: string;
    digest: string;
    size: number;
    labels: Record<string, string>;
    lease: string | undefined;
  }): Info {
    const target = blobFile(this.paths, a.digest);
    if (this.row(a.ns, a.digest)) {
      rmSync(a.dir, { recursive: true, force: true });
      this.store.write(() => {
        this.dropLeaseResource(a.ns, a.lease, 'ingests', a.ref);
        this.leaseResource(a.ns, a.lease, 'content', a.digest);
      });
      throw new AlreadyExists(`content ${a.digest}: already exists`);
    }
    let moved = false;
    if (!existsSync(target)) {
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      renameSync(a.data, target);
      moved = true;
    }
    let info: Info;
    try {
      info = this.store.write(() => {
        ensureNamespace(this.store, a.ns);
        const now = nowNanos();
        this.store.db
          .prepare(
            `INSERT INTO content (namespace, digest, size, labels, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(a.ns, a.digest, a.size, labelsToText(a.labels), now, now);
        this.dropLeaseResource(a.ns, a.lease, 'ingests', a.ref);
        this.leaseResource(a.ns, a.lease, 'content', a.digest);
        return toInfo(this.row(a.ns, a.digest)!);
      });
    } catch (e) {
      // Back to the ingest, so the write can be retried; nothing became visible.
      if (moved) renameSync(target, a.data);
      if (existsSync(a.data)) chmodSync(a.data, 0o600);
      throw e;
    }
    rmSync(a.dir, { recursive: true, force: true });
    this.log.debug({ namespace: a.ns, digest: a.digest, size: a.size }, 'content committed');
    return info;
  }

  private async syncBlobDir(digest: string): Promise<void> {
    try {
      const fd = await open(dirname(blobFile(this.paths, digest)), 'r');
      try {
        await fd.sync();
      } finally {
        await fd.close();
      }
    } catch (err) {
      this.log.warn({ err, digest }, 'content: syncing the blob directory failed');
    }
  }

  // ---- for the collector (synchronous on purpose, see the top of the file) ---------------------

  /** Digests of every blob file on disk. */
  blobDigestsOnDisk(): string[] {
    const out: string[] = [];
    let algs: string[];
    try {
      algs = readdirSync(this.paths.blobs);
    } catch {
      return out;
    }
    for (const alg of algs) {
      let names: string[];
      try {
        names = readdirSync(join(this.paths.blobs, alg));
      } catch {
        continue;
      }
      for (const n of names) {
        const d = `${alg}:${n}`;
        if (isValidDigest(d)) out.push(d);
      }
    }
    return out;
  }

  /** Unlinks blob files; missing ones are fine. Returns how many were removed. */
  removeBlobFiles(digests: Iterable<string>): number {
    let n = 0;
    for (const d of digests) {
      try {
        unlinkSync(blobFile(this.paths, d));
        n++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.log.warn({ err: e, digest: d }, 'content: removing an unreferenced blob failed');
        }
      }
    }
    return n;
  }
}
