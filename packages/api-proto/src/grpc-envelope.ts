import type { IncomingHttpHeaders } from 'node:http2';
import { Code, ConnectError } from '@connectrpc/connect';

// gRPC's length-prefixed messages: a flags byte (bit 0: compressed), a 4-byte big-endian length,
// the message; and HTTP/2 headers as the Headers that Connect's interfaces carry. Shared by the
// server (grpc-server.ts) and the client (grpc-transport.ts).

const HEADER = 5;

/** One message framed for the wire (never compressed). */
export function envelope(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + bytes.byteLength);
  out[0] = 0;
  out.writeUInt32BE(bytes.byteLength, 1);
  out.set(bytes, HEADER);
  return out;
}

/**
 * Splits a byte stream into messages. A message longer than `maxBytes` fails with
 * ResourceExhausted before its body is buffered; a compressed one fails (this path only carries
 * identity-encoded calls).
 */
export class EnvelopeReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes received that do not yet make a whole message. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    while (this.buffered >= HEADER) {
      const head = this.chunks[0]!.byteLength >= HEADER ? this.chunks[0]! : this.flatten();
      const flags = head[0]!;
      const len = head.readUInt32BE(1);
      if (len > this.maxBytes) {
        throw new ConnectError(
          `message size ${len} is larger than configured readMaxBytes ${this.maxBytes}`,
          Code.ResourceExhausted,
        );
      }
      if ((flags & 1) !== 0) {
        throw new ConnectError(
          'received compressed envelope, but do not know how to decompress',
          Code.Internal,
        );
      }
      // Wait for the whole message before copying anything: a large message arriving in many
      // chunks is joined once.
      if (this.buffered < HEADER + len) break;
      const buf = this.chunks.length === 1 ? this.chunks[0]! : this.flatten();
      out.push(buf.subarray(HEADER, HEADER + len));
      const rest = buf.byteLength - HEADER - len;
      this.chunks = rest > 0 ? [buf.subarray(HEADER + len)] : [];
      this.buffered = rest;
    }
    return out;
  }

  private flatten(): Buffer {
    const buf = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [buf];
    return buf;
  }
}

/** HTTP/2 headers (pseudo-headers left out) as a Headers object. */
export function webHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const k in headers) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.append(k, x);
    else out.append(k, v);
  }
  return out;
}
