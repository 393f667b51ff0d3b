import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { TaskStartSchema } from '../src/event-types.js';
import { ForwardRequestSchema } from '../src/events-ttrpc.js';
import { ConnectResponseSchema, WaitResponseSchema } from '../src/shim.js';
import {
  decodeHeader,
  encodeFrame,
  encodeHeader,
  type FrameEvent,
  FrameReader,
  HEADER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  RequestSchema,
  ResponseSchema,
} from '../src/ttrpc.js';
import { unpackAnyAs } from '../src/typeurl.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// Frames captured from the stock containerd-shim-runc-v2 1.6.20 (ttrpc v1.1.1) during the
// interop run (e2e/test/ttrpc-stock-shim.test.ts), through a proxy that printed every byte.
const GO = {
  // The shim's publisher forwarding /tasks/start to TTRPC_ADDRESS: stream 3, a Request frame.
  forwardTaskStart: hex(`
    000000b3 00000003 01 00
    0a2a 636f6e7461696e6572642e73657276696365732e6576656e74732e74747270632e76312e4576656e7473
    1207 466f7277617264
    1a4f 0a4d0a0c08f4d4ddd80610d596b8a101120774747270632d781a0c2f7461736b732f737461727422260a1b
         636f6e7461696e6572642e6576656e74732e5461736b537461727412070a02633110c35a
    20 d3ea96d012
    2a25 0a1a636f6e7461696e6572642d6e616d6573706163652d7474727063 1207 74747270632d78`),
  // Its answer to Task.State of a task never created: NotFound, "container not created: not found".
  stateNotFound: hex(`
    00000026 00000003 02 00
    0a24 0805 1220 636f6e7461696e6572206e6f7420637265617465643a206e6f7420666f756e64`),
  // Task.Connect answered: no status at all, payload ConnectResponse{shim_pid: 11566}.
  connectOk: hex('00000005 00000001 02 00 1203 08ae5a'),
  // Task.Kill answered with Empty: a Response frame with no data.
  killOk: hex('00000000 0000000b 02 00'),
  // Task.Wait: WaitResponse{exit_status: 137, exited_at}.
  waitOk: hex('00000012 0000000d 02 00 1210 088901120b08acd4ddd80610c2cfbc4e'),
};

function frames(reader: FrameReader, chunks: Uint8Array[]): FrameEvent[] {
  return chunks.flatMap((c) => reader.push(c));
}

// Events with their data as hex: a view of a Buffer and a fresh Uint8Array compare equal.
function norm(evs: FrameEvent[]): unknown[] {
  return evs.map((e) => (e.kind === 'frame' ? { ...e, data: toHex(e.data) } : e));
}

function split(bytes: Uint8Array, sizes: (i: number) => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.byteLength; i++) {
    const n = Math.max(1, sizes(i));
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('ttrpc header', () => {
  it('is 10 bytes: length and stream id big-endian, then type and flags (PROTOCOL.md)', () => {
    expect(HEADER_LENGTH).toBe(10);
    expect(MAX_MESSAGE_LENGTH).toBe(4 * 1024 * 1024);
    const h = { length: 0x01020304, streamId: 0x7f000001, type: MessageType.Data, flags: 0x05 };
    expect(toHex(encodeHeader(h))).toBe('010203047f0000010305');
    expect(decodeHeader(hex('010203047f0000010305'))).toEqual(h);
    expect(decodeHeader(hex('ff 00000000ffffffff 0102'), 1)).toEqual({
      length: 0,
      streamId: 0xffffffff,
      type: 1,
      flags: 2,
    });
    expect(() => decodeHeader(hex('0000000000'))).toThrow(RangeError);
    expect(toHex(encodeFrame(1, MessageType.Request, 0, hex('aabb')))).toBe('000000020000000101' + '00aabb');
  });
});

describe('ttrpc messages', () => {
  it('encode a Request as the spec lays it out, field by field', () => {
    const req = create(RequestSchema, {
      service: 'a.S',
      method: 'M',
      payload: hex('0801'),
      timeoutNano: 1_000_000_000n,
      metadata: [
        { key: 'k', value: 'v' },
        { key: 'k', value: 'w' },
      ],
    });
    // service(1) "a.S", method(2) "M", payload(3), timeout_nano(4) varint 1e9, metadata(5) x2.
    const want =
      '0a03612e53' + '12014d' + '1a020801' + '208094ebdc03' + '2a060a016b120176' + '2a060a016b120177';
    expect(toHex(toBinary(RequestSchema, req))).toBe(want);
    expect(fromBinary(RequestSchema, hex(want))).toEqual(req);
    // Response: status(1) google.rpc.Status{code(1), message(2)}, payload(2).
    const res = create(ResponseSchema, { status: { code: 5, message: 'x' }, payload: hex('01') });
    expect(toHex(toBinary(ResponseSchema, res))).toBe('0a0508051201781201' + '01');
  });

  it("read the Go shim's Forward request: service, method, deadline, namespace and the event", () => {
    const [ev] = new FrameReader().push(GO.forwardTaskStart);
    expect(ev?.kind).toBe('frame');
    if (ev?.kind !== 'frame') return;
    expect(ev.header).toEqual({ length: 0xb3, streamId: 3, type: MessageType.Request, flags: 0 });
    const req = fromBinary(RequestSchema, ev.data);
    expect(req.service).toBe('containerd.services.events.ttrpc.v1.Events');
    expect(req.method).toBe('Forward');
    // The publisher's 5 s context, less what it took to get to the write.
    expect(Number(req.timeoutNano) / 1e9).toBeGreaterThan(4.99);
    expect(Number(req.timeoutNano) / 1e9).toBeLessThanOrEqual(5);
    expect(req.metadata.map((kv) => [kv.key, kv.value])).toEqual([['containerd-namespace-ttrpc', 'ttrpc-x']]);
    const fwd = fromBinary(ForwardRequestSchema, req.payload);
    expect(fwd.envelope?.topic).toBe('/tasks/start');
    expect(fwd.envelope?.namespace).toBe('ttrpc-x');
    expect(fwd.envelope?.event?.typeUrl).toBe('containerd.events.TaskStart');
    const start = unpackAnyAs(fwd.envelope!.event!, TaskStartSchema);
    expect(start).toMatchObject({ containerId: 'c1', pid: 11587 });
  });

  it("read the Go shim's answers, and ours encode to the same bytes", () => {
    const r = new FrameReader();
    const evs = frames(r, [GO.stateNotFound, GO.connectOk, GO.killOk, GO.waitOk]);
    expect(
      evs.map((e) => e.kind === 'frame' && [e.header.streamId, e.header.type, e.data.byteLength]),
    ).toEqual([
      [3, 2, 0x26],
      [1, 2, 5],
      [11, 2, 0],
      [13, 2, 0x12],
    ]);
    const [notFound, connect, kill, wait] = evs.map((e) => (e.kind === 'frame' ? e.data : new Uint8Array()));
    const nf = fromBinary(ResponseSchema, notFound!);
    expect(nf.status).toMatchObject({ code: 5, message: 'container not created: not found' });
    const c = fromBinary(ResponseSchema, connect!);
    expect(c.status).toBeUndefined();
    expect(fromBinary(ConnectResponseSchema, c.payload).shimPid).toBe(11566);
    expect(fromBinary(ResponseSchema, kill!).status).toBeUndefined();
    const w = fromBinary(WaitResponseSchema, fromBinary(ResponseSchema, wait!).payload);
    expect(w.exitStatus).toBe(137);
    // Re-encoded the way our server answers: byte for byte what Go sent.
    const again = (d: Uint8Array) => toHex(toBinary(ResponseSchema, fromBinary(ResponseSchema, d)));
    for (const d of [notFound!, connect!, kill!, wait!]) expect(again(d)).toBe(toHex(d));
  });
});

describe('FrameReader', () => {
  const a = encodeFrame(1, MessageType.Request, 0, hex('0a01'));
  const b = encodeFrame(3, MessageType.Request, 2, new Uint8Array(0));
  const c = encodeFrame(5, MessageType.Data, 1, new Uint8Array(1000).fill(7));
  const stream = Buffer.concat([a, b, c, GO.forwardTaskStart]);
  const want = frames(new FrameReader(), [stream]);

  it('reads several frames from one chunk, empty ones included, as views without copies', () => {
    expect(
      want.map((e) => e.kind === 'frame' && [e.header.streamId, e.header.flags, e.data.byteLength]),
    ).toEqual([
      [1, 0, 2],
      [3, 2, 0],
      [5, 1, 1000],
      [3, 0, 0xb3],
    ]);
    const first = want[0]!;
    if (first.kind === 'frame') expect(first.data.buffer).toBe(stream.buffer);
  });

  it('gives the same frames however the bytes are chunked', () => {
    const one = frames(
      new FrameReader(),
      split(stream, () => 1),
    );
    expect(norm(one)).toEqual(norm(want));
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let round = 0; round < 50; round++) {
      const reader = new FrameReader();
      expect(
        norm(
          frames(
            reader,
            split(stream, () => rand() % 40),
          ),
        ),
      ).toEqual(norm(want));
      expect(reader.pending).toBe(0);
    }
    // Split inside a header, then mid-data.
    const r = new FrameReader();
    expect(r.push(stream.subarray(0, 4))).toEqual([]);
    expect(r.pending).toBe(4);
    expect(r.push(stream.subarray(4, a.byteLength - 1))).toEqual([]);
    expect(norm(r.push(stream.subarray(a.byteLength - 1)))).toEqual(norm(want));
  });

  it('accepts exactly 4 MiB and reports a larger frame at its header, skipping its data unbuffered', () => {
    const max = new Uint8Array(MAX_MESSAGE_LENGTH).fill(1);
    const r = new FrameReader();
    const [ok] = r.push(encodeFrame(7, MessageType.Request, 0, max));
    expect(ok?.kind === 'frame' && ok.data.byteLength).toBe(MAX_MESSAGE_LENGTH);

    const over = MAX_MESSAGE_LENGTH + 1;
    const head = encodeHeader({ length: over, streamId: 9, type: MessageType.Request, flags: 0 });
    expect(r.push(head)).toEqual([
      { kind: 'oversize', header: { length: over, streamId: 9, type: MessageType.Request, flags: 0 } },
    ]);
    // The data goes by in chunks and is dropped as it comes; the next frame is read normally.
    const chunk = new Uint8Array(64 * 1024);
    let left = over;
    while (left > chunk.byteLength) {
      expect(r.push(chunk)).toEqual([]);
      left -= chunk.byteLength;
    }
    expect(norm(r.push(Buffer.concat([chunk.subarray(0, left), a])))).toEqual(norm([want[0]!]));
    expect(r.pending).toBe(0);

    // A smaller limit, and a header claiming 4 GiB: reported, never allocated.
    const small = new FrameReader(16);
    const huge = encodeHeader({ length: 0xffffffff, streamId: 1, type: 1, flags: 0 });
    expect(small.push(huge)[0]?.kind).toBe('oversize');
    expect(small.pending).toBe(0xffffffff);
  });
});
