import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPrecondition, InvalidArgument, validateLabels } from '@ctrd/api-proto';
import type { Info } from '@ctrd/api-proto/content';
import { digestHasher, parseDigest, validateDigest } from '@ctrd/api-proto/oci';
import { nowNanos } from '../store/codec.js';
import { DATA_FILE, type IngestMeta, writeMeta } from './ingest.js';
import { mapFsError } from './paths.js';

// One open write of one ref: it holds the ref's lock from open to close, appends at the current
// offset, keeps a running digest, and commits by verifying size and digest and handing the
// fsynced, read-only file to the store, which moves it into place and records it in one step.

export interface WriterStatus {
  ref: string;
  offset: number;
  total: number;
  expected: string;
  /** Nanoseconds since the epoch. */
  startedAt: bigint;
  updatedAt: bigint;
}

/** What the store does for a writer: the synchronous move-and-record step, and the lock. */
export interface WriterHost {
  finishCommit(args: {
    ns: string;
    ref: string;
    dir: string;
    data: string;
    digest: string;
    size: number;
    labels: Record<string, string>;
    lease: string | undefined;
  }): Info;
  release(key: string): void;
  /** Row check for `expected` seen mid-stream; removes the ingest and throws AlreadyExists. */
  abortIfCommitted(ns: string, ref: string, digest: string, lease: string | undefined): void;
  /** fsync of the blob's directory after the rename. */
  syncBlobDir(digest: string): Promise<void>;
}

async function hashFile(path: string, algorithm: string, signal?: AbortSignal): Promise<Hash> {
  const h = digestHasher(algorithm);
  try {
    for await (const chunk of createReadStream(path, { signal })) h.update(chunk as Buffer);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return h;
}

export class ContentWriter {
  private fd: FileHandle | undefined;
  private hash: Hash;
  private hashAlg: string;
  private closed = false;
  private busy = false;

  private constructor(
    private readonly host: WriterHost,
    readonly ns: string,
    readonly ref: string,
    readonly key: string,
    readonly dir: string,
    private meta: IngestMeta,
    private offsetNow: number,
    private updated: bigint,
    private readonly lease: string | undefined,
    fd: FileHandle,
    hash: Hash,
    hashAlg: string,
  ) {
    this.fd = fd;
    this.hash = hash;
    this.hashAlg = hashAlg;
  }

  /** Opens the data file of an ingest whose directory and meta exist; the lock is already held. */
  static async open(
    host: WriterHost,
    args: {
      ns: string;
      ref: string;
      key: string;
      dir: string;
      meta: IngestMeta;
      lease: string | undefined;
      signal?: AbortSignal | undefined;
    },
  ): Promise<ContentWriter> {
    const data = join(args.dir, DATA_FILE);
    const alg = args.meta.expected ? parseDigest(args.meta.expected).algorithm : 'sha256';
    const fd = await open(data, 'a', 0o600);
    try {
      const st = await fd.stat({ bigint: true });
      const hash = st.size > 0n ? await hashFile(data, alg, args.signal) : digestHasher(alg);
      const updated = st.size > 0n ? st.mtimeNs : BigInt(args.meta.updatedAt);
      return new ContentWriter(
        host,
        args.ns,
        args.ref,
        args.key,
        args.dir,
        args.meta,
        Number(st.size),
        updated,
        args.lease,
        fd,
        hash,
        alg,
      );
    } catch (e) {
      await fd.close();
      throw e;
    }
  }

  get offset(): number {
    return this.offsetNow;
  }

  status(): WriterStatus {
    return {
      ref: this.ref,
      offset: this.offsetNow,
      total: this.meta.total,
      expected: this.meta.expected,
      startedAt: BigInt(this.meta.startedAt),
      updatedAt: this.updated,
    };
  }

  /** The digest of the bytes written so far. */
  digest(): string {
    return `${this.hashAlg}:${this.hash.copy().digest('hex')}`;
  }

  private what(): string {
    return `content ref "${this.ref}"`;
  }

  private enter(): FileHandle {
    if (this.closed || !this.fd) throw new FailedPrecondition(`${this.what()}: writer is closed`);
    if (this.busy) throw new FailedPrecondition(`${this.what()}: another operation is in progress`);
    this.busy = true;
    return this.fd;
  }

  /** Records a total or expected digest learnt after open (STAT, WRITE or COMMIT messages). */
  async expect(opts: { total?: number | undefined; expected?: string | undefined }): Promise<void> {
    const total = opts.total && opts.total > 0 ? opts.total : this.meta.total;
    const expected = opts.expected ? validateDigest(opts.expected, 'expected digest') : this.meta.expected;
    if (total === this.meta.total && expected === this.meta.expected) return;
    this.enter();
    try {
      const next = { ...this.meta, total, expected };
      await writeMeta(this.dir, next);
      this.meta = next;
    } catch (e) {
      throw mapFsError(e, this.what());
    } finally {
      this.busy = false;
    }
  }

  /** Appends at the current offset. A known total bounds the ingest. */
  async write(data: Uint8Array, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    if (data.length === 0) return this.offsetNow;
    if (this.meta.total > 0 && this.offsetNow + data.length > this.meta.total) {
      throw new InvalidArgument(
        `${this.what()}: write of ${data.length} bytes at offset ${this.offsetNow} goes past the expected total of ${this.meta.total}`,
      );
    }
    const fd = this.enter();
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fd.write(data, done, data.length - done);
        done += bytesWritten;
      }
      this.hash.update(data);
      this.offsetNow += data.length;
      this.updated = nowNanos();
      return this.offsetNow;
    } catch (e) {
      // The file may hold part of the chunk: re-read its size so offset and digest stay true.
      await this.resync();
      throw mapFsError(e, this.what());
    } finally {
      this.busy = false;
    }
  }

  private async resync(): Promise<void> {
    if (!this.fd) return;
    const st = await this.fd.stat();
    this.offsetNow = st.size;
    this.hash = await hashFile(join(this.dir, DATA_FILE), this.hashAlg);
  }

  /**
   * containerd's WRITE (or COMMIT) at `offset`: 0 restarts the ingest, the current offset appends,
   * anything else is InvalidArgument. Every rule is checked before anything changes: a bad request
   * never loses what is already written.
   */
  async writeAt(offset: number, data: Uint8Array, signal?: AbortSignal): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new InvalidArgument(`${this.what()}: write offset ${offset} must be a non-negative integer`);
    }
    if (offset > 0 && offset !== this.offsetNow) {
      const past = offset > this.offsetNow ? `, past the ${this.offsetNow} bytes written so far` : '';
      throw new InvalidArgument(
        `${this.what()}: write at offset ${offset} must occur at the current offset ${this.offsetNow}${past}`,
      );
    }
    const restart = offset === 0 && this.offsetNow > 0;
    const start = restart ? 0 : this.offsetNow;
    if (this.meta.total > 0 && start + data.length > this.meta.total) {
      throw new InvalidArgument(
        `${this.what()}: write of ${data.length} bytes at offset ${start} goes past the expected total of ${this.meta.total}`,
      );
    }
    if (restart) await this.truncate();
    return this.write(data, signal);
  }

  /** Drops everything written (a WRITE or COMMIT at offset 0 restarts the ingest). */
  async truncate(): Promise<void> {
    const fd = this.enter();
    try {
      await fd.truncate(0);
      this.hash = digestHasher(this.hashAlg);
      this.offsetNow = 0;
      this.updated = nowNanos();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Verifies and commits. A size mismatch keeps the ingest (a resumed write continues at its
   * offset); a digest mismatch discards it, since its bytes are wrong. Nothing becomes visible
   * unless both match.
   */
  async commit(
    size: number,
    expected: string,
    labels: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Info> {
    signal?.throwIfAborted();
    validateLabels(labels, `${this.what()} labels`);
    const want = size > 0 ? size : this.meta.total;
    const wantDigest = expected || this.meta.expected;
    if (wantDigest) validateDigest(wantDigest, 'expected digest');
    if (want > 0 && want !== this.offsetNow) {
      throw new FailedPrecondition(
        `${this.what()}: unexpected commit size ${this.offsetNow}, expected ${want}`,
      );
    }
    if (wantDigest) {
      try {
        this.host.abortIfCommitted(this.ns, this.ref, wantDigest, this.lease);
      } catch (e) {
        await this.close();
        throw e;
      }
    }
    const fd = this.enter();
    let actual: string;
    try {
      const alg = wantDigest ? parseDigest(wantDigest).algorithm : this.hashAlg;
      actual =
        alg === this.hashAlg
          ? this.digest()
          : `${alg}:${(await hashFile(join(this.dir, DATA_FILE), alg, signal)).digest('hex')}`;
      if (wantDigest && actual !== wantDigest) {
        await this.discard();
        throw new FailedPrecondition(`unexpected commit digest ${actual}, expected ${wantDigest}`);
      }
      await fd.sync();
      await fd.close();
      this.fd = undefined;
      await chmod(join(this.dir, DATA_FILE), 0o444);
    } catch (e) {
      throw mapFsError(e, this.what());
    } finally {
      this.busy = false;
    }
    try {
      const info = this.host.finishCommit({
        ns: this.ns,
        ref: this.ref,
        dir: this.dir,
        data: join(this.dir, DATA_FILE),
        digest: actual,
        size: this.offsetNow,
        labels,
        lease: this.lease,
      });
      await this.host.syncBlobDir(actual);
      return info;
    } finally {
      await this.close();
    }
  }

  private async discard(): Promise<void> {
    await this.fd?.close();
    this.fd = undefined;
    await rm(this.dir, { recursive: true, force: true });
    await this.close();
  }

  /** Releases the lock; the ingest stays on disk (resumable) unless committed or discarded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.fd?.close();
    } finally {
      this.fd = undefined;
      this.host.release(this.key);
    }
  }
}
