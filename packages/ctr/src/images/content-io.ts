import {
  FailedPrecondition,
  InvalidArgument,
  isAlreadyExists,
  isNotFound,
  ResourceExhausted,
} from '@ctrd/api-proto/client';
import { ContentService, type Info, type WriteContentResponse, WriteAction } from '@ctrd/api-proto/content';
import { type Descriptor, digestHasher, parseDigest } from '@ctrd/api-proto/oci';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { WriteContentRequestSchema } from '@ctrd/api-proto/content';
import type { Clients } from '../clients.js';
import { callOptions } from './with-lease.js';

// Blobs move between ctr and the daemon over the Content service: Write is one bidirectional
// stream per blob (STAT, then WRITE chunks each answered with the new offset, then COMMIT with the
// expected digest), Read a server stream of chunks. Every digest is validated before it is sent,
// and every blob read back is checked against its descriptor's size and digest.

/** Bytes per WRITE message: far below the 16 MiB message limit, large enough to keep calls few. */
export const WRITE_CHUNK = 1024 * 1024;

export interface BlobRef {
  /** The ingest ref: one writer per ref at a time; the same ref resumes an interrupted write. */
  ref: string;
  digest: string;
  size: number;
  labels?: Record<string, string>;
}

export interface WriteOptions {
  signal?: AbortSignal;
  lease?: string;
  /** On failure, abort the ingest instead of leaving it for a later resume (imports do this). */
  abortOnError?: boolean;
}

export interface WriteResult {
  digest: string;
  size: number;
  /** The blob was already in the store; nothing was written. */
  existed: boolean;
}

type WriteInit = MessageInitShape<typeof WriteContentRequestSchema>;

/** An async iterable fed by push(): the request side of a bidirectional stream. */
class RequestQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}

/** Re-slices a byte stream into chunks of at most `size` bytes, after skipping `skip` bytes. */
async function* chunks(
  source: AsyncIterable<Uint8Array>,
  size: number,
  skip: number,
): AsyncIterable<Uint8Array> {
  let toSkip = skip;
  for await (const piece of source) {
    let data = piece;
    if (toSkip > 0) {
      if (data.byteLength <= toSkip) {
        toSkip -= data.byteLength;
        continue;
      }
      data = data.subarray(toSkip);
      toSkip = 0;
    }
    for (let at = 0; at < data.byteLength; at += size)
      yield data.subarray(at, Math.min(at + size, data.byteLength));
  }
  if (toSkip > 0) throw new FailedPrecondition(`source ended before the resumed offset (${skip} bytes)`);
}

/**
 * Writes one blob through Content.Write and commits it under its expected digest. A blob that is
 * already stored counts as written; an interrupted write under the same ref resumes at the offset
 * the daemon reports, skipping that many bytes of `source`.
 */
export async function writeBlob(
  clients: Clients,
  blob: BlobRef,
  source: AsyncIterable<Uint8Array>,
  opts: WriteOptions = {},
): Promise<WriteResult> {
  parseDigest(blob.digest, `blob ${blob.ref}`);
  if (!Number.isSafeInteger(blob.size) || blob.size < 0) {
    throw new InvalidArgument(`blob ${blob.digest}: size ${blob.size} is not a valid size`);
  }
  return await writeOnce(clients, blob, source, opts, true);
}

async function writeOnce(
  clients: Clients,
  blob: BlobRef,
  source: AsyncIterable<Uint8Array>,
  opts: WriteOptions,
  mayRestart: boolean,
): Promise<WriteResult> {
  const content = clients.get(ContentService);
  const requests = new RequestQueue<WriteInit>();
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const responses = content
    .write(requests as AsyncIterable<WriteInit>, callOptions(opts.lease, controller.signal))
    [Symbol.asyncIterator]();
  const exchange = async (req: WriteInit): Promise<WriteContentResponse> => {
    requests.push(req);
    const res = await responses.next();
    if (res.done)
      throw new FailedPrecondition(`content write ${blob.ref}: the daemon closed the stream early`);
    return res.value;
  };
  const done = (): WriteResult => ({ digest: blob.digest, size: blob.size, existed: true });
  let failed = true;
  try {
    const status = await exchange({
      action: WriteAction.STAT,
      ref: blob.ref,
      total: BigInt(blob.size),
      expected: blob.digest,
    });
    let offset = status.offset;
    if (offset > BigInt(blob.size)) {
      // A stale ingest longer than this blob: start over.
      requests.end();
      controller.abort();
      if (!mayRestart)
        throw new FailedPrecondition(`content write ${blob.ref}: ingest is longer than the blob`);
      await content.abort({ ref: blob.ref }, callOptions(opts.lease, opts.signal)).catch(() => undefined);
      failed = false;
      return await writeOnce(clients, blob, source, opts, false);
    }
    for await (const data of chunks(source, WRITE_CHUNK, Number(offset))) {
      opts.signal?.throwIfAborted();
      const res = await exchange({ action: WriteAction.WRITE, ref: blob.ref, offset, data });
      offset = res.offset;
    }
    const committed = await exchange({
      action: WriteAction.COMMIT,
      ref: blob.ref,
      total: BigInt(blob.size),
      offset,
      expected: blob.digest,
      labels: blob.labels ?? {},
    });
    if (committed.digest && committed.digest !== blob.digest) {
      throw new FailedPrecondition(`blob ${blob.digest}: the daemon committed ${committed.digest}`);
    }
    failed = false;
    return { digest: blob.digest, size: blob.size, existed: false };
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    failed = false;
    return done();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    requests.end();
    // Lets the stream finish; a half-done write stays as an ingest the same ref can resume.
    await responses.return?.().catch(() => undefined);
    if (failed && opts.abortOnError) await content.abort({ ref: blob.ref }).catch(() => undefined);
  }
}

export interface ReadOptions {
  offset?: number;
  /** Bytes to read; 0 or absent reads to the end. */
  size?: number;
  signal?: AbortSignal;
}

/** Streams a blob (or a range of it) through Content.Read. */
export async function* readBlob(
  clients: Clients,
  digest: string,
  opts: ReadOptions = {},
): AsyncIterable<Uint8Array> {
  parseDigest(digest, 'blob');
  const offset = opts.offset ?? 0;
  let expect = BigInt(offset);
  const stream = clients
    .get(ContentService)
    .read(
      { digest, offset: BigInt(offset), size: BigInt(opts.size ?? 0) },
      callOptions(undefined, opts.signal),
    );
  for await (const chunk of stream) {
    if (chunk.offset !== expect) {
      throw new FailedPrecondition(`blob ${digest}: read returned offset ${chunk.offset}, want ${expect}`);
    }
    expect += BigInt(chunk.data.byteLength);
    yield chunk.data;
  }
}

/** Content.Info, or undefined when the blob is not in this namespace. */
export async function blobInfo(
  clients: Clients,
  digest: string,
  signal?: AbortSignal,
): Promise<Info | undefined> {
  parseDigest(digest, 'blob');
  try {
    return (await clients.get(ContentService).info({ digest }, callOptions(undefined, signal))).info;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Reads a whole small blob (manifest, index, config) into memory, refusing one over `cap` bytes
 * before reading it and checking the bytes against the descriptor's size and digest.
 */
export async function readBytes(
  clients: Clients,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  cap: number,
  signal?: AbortSignal,
  what = 'blob',
): Promise<Uint8Array> {
  const { algorithm } = parseDigest(desc.digest, what);
  if (desc.size > cap) {
    throw new ResourceExhausted(`${what} ${desc.digest}: ${desc.size} bytes, over the limit of ${cap} bytes`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  const hash = digestHasher(algorithm);
  for await (const data of readBlob(clients, desc.digest, { signal })) {
    total += data.byteLength;
    if (total > cap || total > desc.size) {
      throw new FailedPrecondition(`${what} ${desc.digest}: longer than its descriptor's ${desc.size} bytes`);
    }
    hash.update(data);
    parts.push(data);
  }
  if (total !== desc.size) {
    throw new FailedPrecondition(`${what} ${desc.digest}: ${total} bytes, its descriptor says ${desc.size}`);
  }
  const got = `${algorithm}:${hash.digest('hex')}`;
  if (got !== desc.digest) throw new FailedPrecondition(`${what} ${desc.digest}: content has digest ${got}`);
  return Buffer.concat(parts);
}

/** readBytes, then JSON.parse; InvalidArgument when the blob is not JSON. */
export async function readJson(
  clients: Clients,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  cap: number,
  signal?: AbortSignal,
): Promise<unknown> {
  const bytes = await readBytes(clients, desc, cap, signal);
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidArgument(`blob ${desc.digest}: invalid json: ${(err as Error).message}`, { cause: err });
  }
}

/** Sets (or with an empty value, removes) labels on a blob, touching only those keys. */
export async function updateBlobLabels(
  clients: Clients,
  digest: string,
  labels: Record<string, string>,
  opts: { signal?: AbortSignal; lease?: string } = {},
): Promise<void> {
  parseDigest(digest, 'blob');
  const keys = Object.keys(labels);
  if (keys.length === 0) return;
  await clients.get(ContentService).update(
    {
      info: { digest, labels: Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== '')) },
      updateMask: { paths: keys.map((k) => `labels.${k}`) },
    },
    callOptions(opts.lease, opts.signal),
  );
}
