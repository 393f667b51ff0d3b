import { Readable } from 'node:stream';
import { Canceled, InvalidArgument } from '../errors.js';
import { BLOCK, FIELD, octalMax, writeBytes, writeChecksum, writeOctal } from './header.js';
import { encodeName } from './names.js';
import { encodePaxRecord } from './pax.js';
import { padding } from './reader.js';
import { TYPEFLAG, type TarHeader } from './types.js';

// A tar writer producing POSIX ustar headers, preceded by a PAX extended header whenever a
// value does not fit ustar (long or non-ASCII names, large ids, sizes or times, fractional
// times, xattrs). GNU tar, Go's archive/tar and our reader all read the result.

export interface TarWriteEntry extends Partial<Omit<TarHeader, 'name' | 'type' | 'xattrs'>> {
  name: string;
  type: TarHeader['type'];
  xattrs?: Record<string, Uint8Array | string>;
  /**
   * A regular file's bytes. With a stream, `size` is required and the stream must yield exactly
   * that many bytes.
   */
  body?: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

const encoder = new TextEncoder();
const END = new Uint8Array(BLOCK * 2);

/** Encodes entries as a tar stream, ending with the two zero blocks. */
export async function* writeTar(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    if (options.signal?.aborted) throw new Canceled('tar: write aborted', { cause: options.signal.reason });
    yield* encodeEntry(entry, options.signal);
  }
  yield END;
}

/** The blocks of one entry: optional PAX header, the ustar header, the body and its padding. */
export async function* encodeEntry(entry: TarWriteEntry, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const bodyBytes = entry.body instanceof Uint8Array ? entry.body : undefined;
  if (entry.type !== 'file' && entry.body !== undefined) {
    throw new InvalidArgument(`tar entry "${entry.name}": only regular files have a body`);
  }
  const size = entry.type === 'file' ? (entry.size ?? bodyBytes?.length ?? 0) : 0;
  if (bodyBytes && bodyBytes.length !== size) {
    throw new InvalidArgument(
      `tar entry "${entry.name}": size ${size} but the body has ${bodyBytes.length} bytes`,
    );
  }
  if (entry.type === 'file' && entry.body === undefined && size !== 0) {
    throw new InvalidArgument(`tar entry "${entry.name}": size ${size} but no body`);
  }
  const { header, pax } = buildHeader({ ...entry, size });
  if (pax.length > 0) {
    const records = concat(pax);
    const paxHeader = paxHeaderBlock(entry.name, records.length);
    yield paxHeader;
    yield records;
    const pad = padding(records.length);
    if (pad > 0) yield new Uint8Array(pad);
  }
  yield header;
  if (entry.type !== 'file' || size === 0) return;
  if (bodyBytes) {
    yield bodyBytes;
  } else {
    let written = 0;
    for await (const chunk of entry.body as AsyncIterable<Uint8Array>) {
      if (signal?.aborted) throw new Canceled('tar: write aborted', { cause: signal.reason });
      written += chunk.length;
      if (written > size) {
        throw new InvalidArgument(`tar entry "${entry.name}": body is longer than its size ${size}`);
      }
      if (chunk.length > 0) yield chunk;
    }
    if (written !== size) {
      throw new InvalidArgument(`tar entry "${entry.name}": body ended after ${written} of ${size} bytes`);
    }
  }
  const pad = padding(size);
  if (pad > 0) yield new Uint8Array(pad);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) return false;
  }
  return true;
}

interface Built {
  header: Uint8Array;
  pax: Uint8Array[];
}

function buildHeader(entry: TarWriteEntry & { size: number }): Built {
  const header = new Uint8Array(BLOCK);
  const pax: Uint8Array[] = [];
  if (entry.name.includes('\0') || (entry.linkname ?? '').includes('\0')) {
    throw new InvalidArgument(`tar entry "${entry.name}": NUL in name`);
  }

  // Name: ustar holds 100 bytes, or a 155-byte prefix and a 100-byte name split at a slash.
  const nameBytes = encodeName(entry.name);
  const split = isAscii(entry.name) ? splitUstarName(nameBytes) : undefined;
  if (split) {
    writeBytes(header, 'name', split.name);
    writeBytes(header, 'prefix', split.prefix);
  } else {
    writeBytes(header, 'name', encoder.encode(asciiTail(entry.name, FIELD.name[1])));
    pax.push(encodePaxRecord('path', entry.name));
  }

  const linkname = entry.linkname ?? '';
  const linkBytes = encodeName(linkname);
  if (isAscii(linkname) && linkBytes.length <= FIELD.linkname[1]) {
    writeBytes(header, 'linkname', linkBytes);
  } else {
    writeBytes(header, 'linkname', encoder.encode(asciiTail(linkname, FIELD.linkname[1])));
    pax.push(encodePaxRecord('linkpath', linkname));
  }

  const mode = entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644);
  writeOctal(header, 'mode', mode & 0o7777);

  for (const key of ['uid', 'gid'] as const) {
    const value = entry[key] ?? 0;
    if (!Number.isSafeInteger(value) || value < 0)
      throw new InvalidArgument(`tar entry "${entry.name}": bad ${key}`);
    if (value > octalMax(FIELD[key][1])) {
      writeOctal(header, key, 0);
      pax.push(encodePaxRecord(key, String(value)));
    } else {
      writeOctal(header, key, value);
    }
  }

  if (entry.size > octalMax(FIELD.size[1])) {
    writeOctal(header, 'size', 0);
    pax.push(encodePaxRecord('size', String(entry.size)));
  } else {
    writeOctal(header, 'size', entry.size);
  }

  const mtime = entry.mtime ?? 0;
  if (!Number.isFinite(mtime)) throw new InvalidArgument(`tar entry "${entry.name}": bad mtime`);
  const seconds = Math.floor(mtime);
  if (seconds < 0 || seconds > octalMax(FIELD.mtime[1])) {
    writeOctal(header, 'mtime', 0);
    pax.push(encodePaxRecord('mtime', formatPaxTime(mtime)));
  } else {
    writeOctal(header, 'mtime', seconds);
    if (seconds !== mtime) pax.push(encodePaxRecord('mtime', formatPaxTime(mtime)));
  }

  header[FIELD.typeflag[0]] = TYPEFLAG[entry.type].charCodeAt(0);
  writeBytes(header, 'magic', encoder.encode('ustar\0'));
  writeBytes(header, 'version', encoder.encode('00'));

  for (const key of ['uname', 'gname'] as const) {
    const value = entry[key] ?? '';
    const bytes = encodeName(value);
    if (isAscii(value) && bytes.length <= FIELD[key][1]) writeBytes(header, key, bytes);
    else pax.push(encodePaxRecord(key, value));
  }

  if (entry.type === 'chardev' || entry.type === 'blockdev') {
    for (const key of ['devmajor', 'devminor'] as const) {
      const value = entry[key] ?? 0;
      if (!Number.isSafeInteger(value) || value < 0 || value > octalMax(FIELD[key][1])) {
        throw new InvalidArgument(`tar entry "${entry.name}": ${key} ${value} does not fit a tar header`);
      }
      writeOctal(header, key, value);
    }
  } else {
    writeOctal(header, 'devmajor', 0);
    writeOctal(header, 'devminor', 0);
  }

  for (const [key, value] of Object.entries(entry.xattrs ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    if (key === '' || key.includes('=') || key.includes('\0')) {
      throw new InvalidArgument(`tar entry "${entry.name}": bad xattr name "${key}"`);
    }
    pax.push(encodePaxRecord(`SCHILY.xattr.${key}`, value));
  }

  writeChecksum(header);
  return { header, pax };
}

function splitUstarName(bytes: Uint8Array): { name: Uint8Array; prefix: Uint8Array } | undefined {
  if (bytes.length <= FIELD.name[1]) return { name: bytes, prefix: new Uint8Array(0) };
  // The prefix is everything before some slash; the rest (after that slash) must fit in name.
  const maxPrefix = FIELD.prefix[1];
  for (let i = Math.min(bytes.length - 1, maxPrefix); i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    const rest = bytes.length - i - 1;
    if (rest === 0 || rest > FIELD.name[1]) return undefined;
    return { prefix: bytes.subarray(0, i), name: bytes.subarray(i + 1) };
  }
  return undefined;
}

/** An ASCII stand-in for a field whose real value is in the PAX header. */
function asciiTail(value: string, max: number): string {
  const ascii = value.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length > max ? ascii.slice(ascii.length - max) : ascii;
}

function formatPaxTime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  // At most nanosecond precision, no exponent, trailing zeros trimmed.
  return t.toFixed(9).replace(/0+$/, '').replace(/\.$/, '');
}

function paxHeaderBlock(name: string, size: number): Uint8Array {
  const base = name.replace(/\/+$/, '').split('/').pop() || 'entry';
  const paxName = `PaxHeaders.0/${asciiTail(base, FIELD.name[1] - 'PaxHeaders.0/'.length)}`;
  const header = new Uint8Array(BLOCK);
  writeBytes(header, 'name', encoder.encode(paxName));
  writeOctal(header, 'mode', 0o644);
  writeOctal(header, 'uid', 0);
  writeOctal(header, 'gid', 0);
  writeOctal(header, 'size', size);
  writeOctal(header, 'mtime', 0);
  header[FIELD.typeflag[0]] = 'x'.charCodeAt(0);
  writeBytes(header, 'magic', encoder.encode('ustar\0'));
  writeBytes(header, 'version', encoder.encode('00'));
  writeOctal(header, 'devmajor', 0);
  writeOctal(header, 'devminor', 0);
  writeChecksum(header);
  return header;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * An archive built by appending entries, read as an async iterable (or a Node Readable) by one
 * consumer. `add` resolves once the consumer has taken the entry's bytes, so a slow reader
 * slows the writer instead of filling memory.
 */
export class TarWriter implements AsyncIterable<Uint8Array> {
  private readonly queue: Array<{ entry: TarWriteEntry | null; done: (err?: unknown) => void }> = [];
  private wake: (() => void) | undefined;
  private failed: unknown;
  private closed = false;
  private iterated = false;

  /** Appends an entry; resolves when its bytes have been read. */
  add(entry: TarWriteEntry, signal?: AbortSignal): Promise<void> {
    return this.enqueue(entry, signal);
  }

  /** Writes the end-of-archive marker; resolves when it has been read. */
  finish(signal?: AbortSignal): Promise<void> {
    return this.enqueue(null, signal);
  }

  /** Ends the stream with an error: the consumer's next read throws it. */
  abort(reason: unknown): void {
    this.failed ??= reason ?? new Canceled('tar: writer aborted');
    for (const item of this.queue.splice(0)) item.done(this.failed);
    this.wake?.();
  }

  private enqueue(entry: TarWriteEntry | null, signal?: AbortSignal): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new InvalidArgument('tar: writer already finished'));
    if (entry === null) this.closed = true;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.abort(new Canceled('tar: write aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      this.queue.push({
        entry,
        done: (err) => {
          signal?.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err);
        },
      });
      this.wake?.();
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (this.iterated) throw new InvalidArgument('tar: a TarWriter can be read only once');
    this.iterated = true;
    try {
      for (;;) {
        if (this.failed) throw this.failed;
        const item = this.queue[0];
        if (!item) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
          this.wake = undefined;
          continue;
        }
        try {
          if (item.entry === null) yield END;
          else yield* encodeEntry(item.entry);
        } catch (err) {
          this.queue.shift();
          item.done(err);
          throw err;
        }
        this.queue.shift();
        item.done();
        if (item.entry === null) return;
      }
    } finally {
      this.abort(new Canceled('tar: reader stopped'));
    }
  }

  /** The archive as a Node Readable stream. */
  toReadable(): Readable {
    return Readable.from(this, { objectMode: false });
  }
}
