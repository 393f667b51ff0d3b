import { Canceled, InvalidArgument } from '../errors.js';

// Pulls exact byte counts out of an async stream of chunks of any size, without copying more
// than a caller asks for: tar headers need whole 512-byte blocks, bodies are passed through
// chunk by chunk.

export class ByteSource {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes handed out or skipped so far: the archive offset of the next byte. */
  offset = 0;

  constructor(
    private readonly iterator: AsyncIterator<Uint8Array>,
    private readonly signal?: AbortSignal,
  ) {}

  /** Reads one more chunk into the buffer; false at the end of the stream. */
  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    if (this.signal?.aborted) throw new Canceled('tar: read aborted', { cause: this.signal.reason });
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    if (next.value.length > 0) {
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    return true;
  }

  /** Takes up to `max` bytes from the front of the buffer (at least one when any is buffered). */
  private take(max: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length <= max) {
      this.chunks.shift();
      this.buffered -= first.length;
      this.offset += first.length;
      return first;
    }
    this.chunks[0] = first.subarray(max);
    this.buffered -= max;
    this.offset += max;
    return first.subarray(0, max);
  }

  /**
   * Exactly `n` bytes, or null when the stream ended before the first of them. Ending part way
   * is a truncated archive.
   */
  async readExact(n: number, what: string): Promise<Uint8Array | null> {
    while (this.buffered < n) {
      if (!(await this.fill())) {
        if (this.buffered === 0) return null;
        throw truncated(what, this.offset + this.buffered);
      }
    }
    const first = this.take(n);
    if (first.length === n) return first;
    const out = new Uint8Array(n);
    out.set(first, 0);
    let at = first.length;
    while (at < n) {
      const part = this.take(n - at);
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Yields exactly `n` bytes in the chunks they arrive in; truncation is an error. */
  async *stream(n: number, what: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill())) throw truncated(what, this.offset);
      if (this.buffered === 0) continue;
      const part = this.take(left);
      left -= part.length;
      yield part;
    }
  }

  /** Between 1 and `max` bytes, as they arrive; truncation is an error. */
  async readSome(max: number, what: string): Promise<Uint8Array> {
    while (this.buffered === 0) {
      if (!(await this.fill())) throw truncated(what, this.offset);
    }
    return this.take(max);
  }

  /** Drops exactly `n` bytes; truncation is an error. */
  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill())) throw truncated(what, this.offset);
      if (this.buffered === 0) continue;
      left -= this.take(left).length;
    }
  }

  /** Reads and drops everything left in the stream; returns how many bytes that was. */
  async drain(): Promise<number> {
    let n = 0;
    for (;;) {
      while (this.buffered > 0) n += this.take(this.buffered).length;
      if (!(await this.fill())) return n;
    }
  }

  /** Stops the underlying stream early (its finally blocks run). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.();
  }
}

function truncated(what: string, offset: number): InvalidArgument {
  return new InvalidArgument(`tar: unexpected end of archive at byte ${offset} while reading ${what}`);
}
