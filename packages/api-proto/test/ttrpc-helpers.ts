import { connect, type Socket } from 'node:net';
import { create, fromBinary, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import type { Logger } from '../src/logger.js';
import {
  encodeFrame,
  type FrameEvent,
  FrameReader,
  MessageType,
  RequestSchema,
  ResponseSchema,
} from '../src/ttrpc.js';

// A ttrpc peer that writes and reads frames by hand, to test what goes over the wire.
export class RawPeer {
  private readonly reader = new FrameReader();
  private readonly queue: FrameEvent[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(...this.reader.push(chunk));
      this.waiter?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  send(streamId: number, type: number, data: Uint8Array, flags = 0): void {
    this.socket.write(encodeFrame(streamId, type, flags, data));
  }

  request(streamId: number, init: MessageInitShape<typeof RequestSchema>): void {
    this.send(streamId, MessageType.Request, toBinary(RequestSchema, create(RequestSchema, init)));
  }

  /** The next frame, or undefined after `ms`. */
  async next(ms = 2000): Promise<FrameEvent | undefined> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  /** The next Response frame, decoded. */
  async response(
    ms = 2000,
  ): Promise<{ streamId: number; code: number; message: string; payload: Uint8Array }> {
    const ev = await this.next(ms);
    if (ev === undefined) throw new Error('no answer');
    if (ev.kind !== 'frame' || ev.header.type !== MessageType.Response)
      throw new Error(`not a response: ${JSON.stringify(ev.header)}`);
    const res = fromBinary(ResponseSchema, ev.data);
    return {
      streamId: ev.header.streamId,
      code: res.status?.code ?? 0,
      message: res.status?.message ?? '',
      payload: res.payload,
    };
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface LogLine {
  level: string;
  obj: object;
  msg: string | undefined;
}

export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
