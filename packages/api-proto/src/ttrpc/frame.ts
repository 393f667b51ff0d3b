// ttrpc's framing (containerd/ttrpc PROTOCOL.md, channel.go): every message is a 10-byte header,
// then `length` bytes of data. Header: uint32 big-endian data length, uint32 big-endian stream id
// (odd from the client), one byte message type, one byte flags.

export const HEADER_LENGTH = 10;

/** Largest data length of one frame: `messageLengthMax = 4 << 20` in ttrpc's channel.go. */
export const MAX_MESSAGE_LENGTH = 4 << 20;

export const MessageType = {
  Request: 1,
  Response: 2,
  /** Stream data (ttrpc 1.2 streaming). */
  Data: 3,
} as const;

/** Request and Data flag: no more data from the sender on this stream (ttrpc 1.2). */
export const FLAG_REMOTE_CLOSED = 0x01;
/** Request flag: a non-unary request whose sender still sends data (ttrpc 1.2). */
export const FLAG_REMOTE_OPEN = 0x02;
/** Data flag: the frame carries no data (ttrpc 1.2). */
export const FLAG_NO_DATA = 0x04;

export interface FrameHeader {
  /** Data length, without the header. */
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame {
  header: FrameHeader;
  data: Uint8Array;
}

/** What the reader found: a whole frame, or the header of one too large to accept. */
export type FrameEvent =
  | { kind: 'frame'; header: FrameHeader; data: Uint8Array }
  | { kind: 'oversize'; header: FrameHeader };

/** Writes a header into `out` at `offset` (10 bytes). */
export function encodeHeader(h: FrameHeader, out = new Uint8Array(HEADER_LENGTH), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, HEADER_LENGTH);
  v.setUint32(0, h.length);
  v.setUint32(4, h.streamId);
  v.setUint8(8, h.type);
  v.setUint8(9, h.flags);
  return out;
}

/** Reads the header at `offset`; `bytes` must hold 10 bytes from there. */
export function decodeHeader(bytes: Uint8Array, offset = 0): FrameHeader {
  if (bytes.byteLength - offset < HEADER_LENGTH)
    throw new RangeError(
      `ttrpc frame header: need ${HEADER_LENGTH} bytes, have ${bytes.byteLength - offset}`,
    );
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_LENGTH);
  return { length: v.getUint32(0), streamId: v.getUint32(4), type: v.getUint8(8), flags: v.getUint8(9) };
}

/**
 * Header and data in one buffer, written with one syscall. The caller checks the length against
 * MAX_MESSAGE_LENGTH first (see `oversizeMessage`): what to answer depends on who is sending.
 */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + data.byteLength);
  encodeHeader({ length: data.byteLength, streamId, type, flags }, out);
  out.set(data, HEADER_LENGTH);
  return out;
}

/** Go's wording for a frame over the limit (channel.go, errors.go), answered as ResourceExhausted. */
export function oversizeMessage(length: number, max = MAX_MESSAGE_LENGTH): string {
  return `message length ${length} exceed maximum message size of ${max}`;
}

/**
 * Splits a byte stream, chunked any way, into frames. A frame whose header declares more than
 * `maxLength` bytes is reported as soon as its header is read and its data is then skipped as it
 * arrives, never buffered, so the connection stays usable (as Go's channel.recv discards it).
 * Frames that fit in one chunk are handed out as views of it, without a copy.
 */
export class FrameReader {
  private readonly head = new Uint8Array(HEADER_LENGTH);
  private headFill = 0;
  private header: FrameHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private skip = 0;

  constructor(readonly maxLength = MAX_MESSAGE_LENGTH) {}

  /** Bytes of an unfinished frame held (or still to skip): 0 between frames. */
  get pending(): number {
    return this.headFill + this.bodyFill + this.skip;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const out: FrameEvent[] = [];
    let at = 0;
    const end = chunk.byteLength;
    while (at < end) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const h = this.header;
      if (h === undefined) {
        if (this.headFill === 0 && end - at >= HEADER_LENGTH) {
          // The common case: the header is whole in this chunk.
          at = this.startFrame(decodeHeader(chunk, at), chunk, at + HEADER_LENGTH, out);
          continue;
        }
        const n = Math.min(HEADER_LENGTH - this.headFill, end - at);
        this.head.set(chunk.subarray(at, at + n), this.headFill);
        this.headFill += n;
        at += n;
        if (this.headFill === HEADER_LENGTH) {
          this.headFill = 0;
          at = this.startFrame(decodeHeader(this.head), chunk, at, out);
        }
        continue;
      }
      const body = this.body!;
      const n = Math.min(h.length - this.bodyFill, end - at);
      body.set(chunk.subarray(at, at + n), this.bodyFill);
      this.bodyFill += n;
      at += n;
      if (this.bodyFill === h.length) {
        out.push({ kind: 'frame', header: h, data: body });
        this.header = undefined;
        this.body = undefined;
        this.bodyFill = 0;
      }
    }
    return out;
  }

  // A header has been read; `at` is where its data starts in `chunk`. Returns the new position.
  private startFrame(h: FrameHeader, chunk: Uint8Array, at: number, out: FrameEvent[]): number {
    if (h.length > this.maxLength) {
      out.push({ kind: 'oversize', header: h });
      this.skip = h.length;
      return at;
    }
    if (chunk.byteLength - at >= h.length) {
      out.push({ kind: 'frame', header: h, data: chunk.subarray(at, at + h.length) });
      return at + h.length;
    }
    this.header = h;
    this.body = new Uint8Array(h.length);
    this.bodyFill = 0;
    return at;
  }
}
