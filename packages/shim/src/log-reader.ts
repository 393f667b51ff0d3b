import { read } from 'node:fs';
import { promisify } from 'node:util';
import { ResourceExhausted } from '@ctrd/api-proto';
import type { LogFile, LogListener, LogRecord, LogSnapshot, LogStream } from './log-file.js';

// Reading a task's log back (ctrd.shim.v1.Logs/Read): what the file holds, filtered and tailed,
// then with `follow` every record written after, until the task's init has exited (its output is
// drained by then) or the task is deleted or the reader goes away.

const readFd = promisify(read);

/** Records per answer, and text per answer: well under the 16 MiB a gRPC message may hold. */
export const BATCH_RECORDS = 1024;
export const BATCH_BYTES = 1024 * 1024;
/** A follower this far behind (text waiting to be sent) is cut off rather than buffered on. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

export interface ReadLogOptions {
  /** Only records at or after this time. */
  since?: Date | undefined;
  /** Only the last N of the kept records that pass the filters. */
  tail?: number | undefined;
  /** Which streams; empty or absent means both. */
  streams?: ReadonlySet<LogStream> | undefined;
  follow?: boolean | undefined;
  /** Resolves when no more output can come (the init process has exited, its output drained). */
  ended?: Promise<unknown> | undefined;
  signal?: AbortSignal | undefined;
  /** Names the task in errors. */
  name?: string | undefined;
}

/** Parses JSON lines; a line cut by a crash or a rotation is skipped, not fatal. */
export function parseRecords(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const r = JSON.parse(line) as Partial<LogRecord>;
      if (typeof r.log === 'string' && (r.stream === 'stdout' || r.stream === 'stderr')) {
        out.push({ time: String(r.time ?? ''), stream: r.stream, log: r.log });
      }
    } catch {
      // skipped
    }
  }
  return out;
}

async function readSnapshot(snapshot: LogSnapshot): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (const { fd, size } of snapshot.parts) {
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await readFd(fd, buf, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    const text = buf.subarray(0, done).toString('utf8');
    // Only complete lines: the writer may be mid-line at the snapshot's size only on a torn write.
    for (const r of parseRecords(text.slice(0, text.lastIndexOf('\n') + 1))) out.push(r);
  }
  return out;
}

/** Splits records into answers of at most BATCH_RECORDS records and about BATCH_BYTES of text. */
function* batches(records: readonly LogRecord[]): Generator<LogRecord[]> {
  let batch: LogRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    if (batch.length > 0 && (batch.length >= BATCH_RECORDS || bytes + r.log.length > BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(r);
    bytes += r.log.length;
  }
  if (batch.length > 0) yield batch;
}

export async function* readLog(file: LogFile, opts: ReadLogOptions = {}): AsyncGenerator<LogRecord[]> {
  const since = opts.since?.getTime();
  const streams = opts.streams && opts.streams.size > 0 ? opts.streams : undefined;
  const keep = (r: LogRecord): boolean =>
    (streams === undefined || streams.has(r.stream)) && (since === undefined || Date.parse(r.time) >= since);

  const pending: LogRecord[] = [];
  let pendingBytes = 0;
  let closed = false;
  let wake: (() => void) | undefined;
  const listener: LogListener = {
    record(r) {
      if (!keep(r)) return;
      pending.push(r);
      pendingBytes += r.log.length;
      wake?.();
    },
    closed() {
      closed = true;
      wake?.();
    },
  };
  const { snapshot, unsubscribe } = file.snapshot(opts.follow ? listener : undefined);
  try {
    let history = (await readSnapshot(snapshot)).filter(keep);
    snapshot.release();
    if (opts.tail !== undefined) history = opts.tail === 0 ? [] : history.slice(-opts.tail);
    yield* batches(history);
    if (!opts.follow || file.isClosed) return;

    let ended = false;
    void opts.ended?.then(() => {
      ended = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        if (pendingBytes > MAX_PENDING_BYTES) {
          throw new ResourceExhausted(
            `log of ${opts.name ?? 'the task'}: the reader fell more than ${MAX_PENDING_BYTES} bytes behind: read again with since`,
          );
        }
        if (pending.length > 0) {
          const out = pending.splice(0, pending.length);
          pendingBytes = 0;
          yield* batches(out);
          continue;
        }
        if (ended || closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    unsubscribe();
    snapshot.release();
  }
}
