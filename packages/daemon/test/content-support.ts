import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import {
  type ContentService,
  WriteAction,
  type WriteContentRequestSchema,
  type WriteContentResponse,
} from '@ctrd/api-proto/content';
import type { Envelope } from '@ctrd/api-proto/events';
import type { Exchange } from '../src/services/exchange.js';

// Drives Content.Write the way ctr's remote writer does: one message out, one reply back.

type WriteInit = MessageInitShape<typeof WriteContentRequestSchema>;

class Pushable<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  push(v: T): void {
    this.items.push(v);
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = undefined;
    }
  }
}

export interface WriteSession {
  send(msg: WriteInit): Promise<WriteContentResponse>;
  /** Half-closes and waits for the server to finish the call. */
  end(): Promise<void>;
}

export function writeSession(client: Client<typeof ContentService>, signal?: AbortSignal): WriteSession {
  const q = new Pushable<WriteInit>();
  const responses = client.write(q, { signal })[Symbol.asyncIterator]();
  return {
    async send(msg) {
      q.push(msg);
      const r = await responses.next();
      if (r.done) throw new Error('write stream ended without a reply');
      return r.value;
    },
    async end() {
      q.end();
      for (;;) {
        const r = await responses.next();
        if (r.done) return;
      }
    },
  };
}

/** STAT, WRITE in chunks, COMMIT: the whole blob in one session. */
export async function writeBlob(
  client: Client<typeof ContentService>,
  ref: string,
  data: Uint8Array,
  opts: { expected?: string; labels?: Record<string, string>; chunk?: number } = {},
): Promise<WriteContentResponse> {
  const s = writeSession(client);
  try {
    const st = await s.send({
      action: WriteAction.STAT,
      ref,
      total: BigInt(data.length),
      expected: opts.expected ?? '',
    });
    let offset = Number(st.offset);
    const chunk = opts.chunk ?? 64 * 1024;
    while (offset < data.length) {
      const part = data.subarray(offset, offset + chunk);
      const r = await s.send({ action: WriteAction.WRITE, offset: BigInt(offset), data: part });
      offset = Number(r.offset);
    }
    const done = await s.send({
      action: WriteAction.COMMIT,
      offset: BigInt(offset),
      total: BigInt(data.length),
      expected: opts.expected ?? '',
      labels: opts.labels ?? {},
    });
    await s.end();
    return done;
  } catch (e) {
    await s.end().catch(() => undefined);
    throw e;
  }
}

export async function readAll(
  client: Client<typeof ContentService>,
  digest: string,
  offset = 0n,
  size = 0n,
): Promise<{ data: Buffer; chunks: { offset: bigint; length: number }[] }> {
  const parts: Buffer[] = [];
  const chunks: { offset: bigint; length: number }[] = [];
  for await (const r of client.read({ digest, offset, size })) {
    parts.push(Buffer.from(r.data));
    chunks.push({ offset: r.offset, length: r.data.length });
  }
  return { data: Buffer.concat(parts), chunks };
}

export async function pastEvents(ex: Exchange, filter: string): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const e of ex.replay(undefined, [filter], false)) out.push(e);
  return out;
}

export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x & 0xff;
  }
  return b;
}
