import { Readable, type Transform, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress as ZstdStream } from 'fzstd';
import { Canceled, CtrdError, InvalidArgument, ResourceExhausted } from '../errors.js';

// Layer blobs come plain, gzip'd or zstd'd; which one is read from their first bytes, as
// containerd's compression.DetectCompression does. zstd uses Node's zlib where the running
// Node has it (22.15+) and a pure-JS decoder (fzstd) otherwise.

export type Compression = 'gzip' | 'zstd' | 'none';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** The compression a stream's first bytes announce (at least 4 bytes for zstd). */
export function detectCompression(head: Uint8Array): Compression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip';
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

export interface DecompressOptions {
  signal?: AbortSignal;
  /** Stop with ResourceExhausted once more than this many bytes have come out. */
  maxBytes?: number;
  /** Skip detection and use this. */
  compression?: Compression;
  /**
   * Which zstd decoder: the JS one (the default, 'auto'), or Node's zlib (must exist). Node's
   * decoder (22.15+, still in 24.21) stops after the first frame of a multi-frame stream, which
   * layers may be (zstd -T, pzstd), so it is used only when asked for, on input known to be one frame.
   */
  zstdDecoder?: 'auto' | 'zlib' | 'js';
  /** Largest zstd window the JS decoder accepts (default 128 MiB, libzstd's default limit). */
  maxZstdWindow?: number;
}

const DEFAULT_MAX_ZSTD_WINDOW = 128 * 1024 * 1024;

/** Whether the running Node's zlib decodes zstd. */
export function hasNativeZstd(): boolean {
  return typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
}

/** The decompressed bytes of a stream that may be gzip, zstd or plain. */
export async function* decompressStream(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLength = 0;
  let ended = false;
  try {
    while (headLength < ZSTD_MAGIC.length) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      head.push(next.value);
      headLength += next.value.length;
    }
  } catch (err) {
    await iterator.return?.();
    throw err;
  }
  const compression = options.compression ?? detectCompression(concatHead(head));
  const replay = async function* (): AsyncGenerator<Uint8Array> {
    try {
      yield* head;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
  };
  let out: AsyncIterable<Uint8Array>;
  if (compression === 'none') out = replay();
  else if (compression === 'gzip') out = throughZlib(replay(), zlib.createGunzip(), 'gzip', options.signal);
  else out = zstdStream(replay(), options);
  yield* limit(out, options);
}

function concatHead(parts: Uint8Array[]): Uint8Array {
  const all = Buffer.concat(parts);
  return all.subarray(0, ZSTD_MAGIC.length);
}

async function* limit(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions,
): AsyncGenerator<Uint8Array> {
  const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
  let total = 0;
  for await (const chunk of source) {
    if (options.signal?.aborted) throw new Canceled('decompress: aborted', { cause: options.signal.reason });
    total += chunk.length;
    if (total > max) throw new ResourceExhausted(`decompress: more than ${max} bytes after decompression`);
    yield chunk;
  }
}

function zstdStream(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions,
): AsyncIterable<Uint8Array> {
  const which = options.zstdDecoder ?? 'auto';
  const native = (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (which === 'zlib' && !native) {
    throw new InvalidArgument(`zstd: this Node (${process.version}) has no zlib zstd decoder`);
  }
  if (native && which === 'zlib') return throughZlib(source, native(), 'zstd', options.signal);
  return zstdJs(source, options.maxZstdWindow ?? DEFAULT_MAX_ZSTD_WINDOW);
}

/** Bytes through a zlib Transform; errors become InvalidArgument naming the format. */
async function* throughZlib(
  source: AsyncIterable<Uint8Array>,
  transform: Transform,
  format: string,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const input = Readable.from(source, { objectMode: false });
  pipeline(input, transform, () => {});
  const onAbort = () => transform.destroy(new Canceled(`${format}: aborted`, { cause: signal?.reason }));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of transform) yield chunk as Uint8Array;
  } catch (err) {
    if (err instanceof CtrdError) throw err;
    throw new InvalidArgument(`${format}: ${(err as Error).message}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    transform.destroy();
    input.destroy();
  }
}

/** zstd through fzstd's streaming decoder: decoded blocks arrive through its callback. */
async function* zstdJs(source: AsyncIterable<Uint8Array>, maxWindow: number): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const frames = new ZstdFrameScanner(maxWindow);
  let done = false;
  const decoder = new ZstdStream((data, final) => {
    if (data.length > 0) out.push(data);
    if (final) done = true;
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      decoder.push(chunk, final);
    } catch (err) {
      throw new InvalidArgument(`zstd: ${(err as Error).message}`, { cause: err });
    }
  };
  for await (const chunk of source) {
    frames.scan(chunk);
    push(chunk, false);
    while (out.length > 0) yield out.shift()!;
  }
  push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift()!;
  if (!done) throw new InvalidArgument('zstd: unexpected end of stream');
}

/**
 * Walks zstd frame and block headers ahead of the JS decoder, which allocates a frame's whole
 * window up front: a header claiming a 2 GiB window is refused here instead of allocated.
 */
class ZstdFrameScanner {
  private skip = 0;
  private header: number[] = [];
  private state: 'magic' | 'skippable-size' | 'frame-header' | 'block-header' | 'checksum' = 'magic';
  private checksum = false;
  private need = 4;

  constructor(private readonly maxWindow: number) {}

  scan(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      this.header.push(chunk[at++]!);
      // The frame header's length follows from its first byte, the descriptor.
      if (this.state === 'frame-header' && this.header.length === 1)
        this.need = frameHeaderLength(this.header[0]!);
      if (this.header.length < this.need) continue;
      const h = this.header;
      this.header = [];
      this.step(h);
    }
  }

  private step(h: number[]): void {
    switch (this.state) {
      case 'magic': {
        const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        if (magic === 0xfd2fb528) {
          this.state = 'frame-header';
          this.need = 1;
        } else if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
          this.state = 'skippable-size';
          this.need = 4;
        } else {
          throw new InvalidArgument('zstd: bad frame magic');
        }
        return;
      }
      case 'skippable-size':
        this.skip = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        this.state = 'magic';
        this.need = 4;
        return;
      case 'frame-header': {
        const fhd = h[0]!;
        const single = (fhd >> 5) & 1;
        this.checksum = ((fhd >> 2) & 1) === 1;
        let window: number;
        if (single) {
          const fcf = fhd >> 6;
          const dictBytes = DICT_ID_BYTES[fhd & 3]!;
          const sizeBytes = fcf === 0 ? 1 : 1 << fcf;
          let size = 0;
          for (let i = 0; i < sizeBytes; i++) size += h[1 + dictBytes + i]! * 2 ** (8 * i);
          window = fcf === 1 ? size + 256 : size;
        } else {
          const wd = h[1]!;
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        }
        if (window > this.maxWindow) {
          throw new ResourceExhausted(
            `zstd: frame window of ${window} bytes exceeds the limit of ${this.maxWindow}`,
          );
        }
        this.state = 'block-header';
        this.need = 3;
        return;
      }
      case 'block-header': {
        const v = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const type = (v >> 1) & 3;
        if (type === 3) throw new InvalidArgument('zstd: reserved block type');
        this.skip = type === 1 ? 1 : v >>> 3;
        if (v & 1) {
          this.state = this.checksum ? 'checksum' : 'magic';
          this.need = 4;
        }
        return;
      }
      case 'checksum':
        this.state = 'magic';
        this.need = 4;
        return;
    }
  }
}

const DICT_ID_BYTES = [0, 1, 2, 4];

/** Length of a zstd frame header after the magic, from its descriptor byte. */
function frameHeaderLength(fhd: number): number {
  const single = (fhd >> 5) & 1;
  const fcf = fhd >> 6;
  const sizeBytes = fcf === 0 ? single : 1 << fcf;
  return 1 + (single ? 0 : 1) + DICT_ID_BYTES[fhd & 3]! + sizeBytes;
}

/** Gzip-compresses a stream (for layers the diff service writes). */
export function gzipStream(
  source: AsyncIterable<Uint8Array>,
  options: { signal?: AbortSignal; level?: number } = {},
): AsyncIterable<Uint8Array> {
  return throughZlib(
    source,
    zlib.createGzip({ level: options.level ?? zlib.constants.Z_DEFAULT_COMPRESSION }),
    'gzip',
    options.signal,
  );
}
