import { createRouterTransport } from '@connectrpc/connect';
import { isFailedPrecondition, isInvalidArgument, isResourceExhausted } from '@ctrd/api-proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Clients } from '../src/clients.js';
import { readBlob, readBytes, readJson, writeBlob } from '../src/images/content-io.js';
import { withLease } from '../src/images/with-lease.js';
import { FakeStore } from './fake-store.js';
import { sha } from './oci-fixtures.js';

let s: FakeStore;
let clients: Clients;
beforeEach(() => {
  s = new FakeStore();
  clients = new Clients({
    address: 'unused',
    namespace: 'default',
    transport: createRouterTransport(s.routes),
  });
});
afterEach(() => s.cleanup());

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('writeBlob', () => {
  it('writes, commits with labels, and treats an existing blob as written', async () => {
    const data = 'x'.repeat(3 * 1024 * 1024 + 5);
    const digest = sha(data);
    const res = await writeBlob(
      clients,
      { ref: 'r1', digest, size: data.length, labels: { a: 'b' } },
      chunks(data),
    );
    expect(res).toEqual({ digest, size: data.length, existed: false });
    expect(s.blobs.get('default')?.get(digest)?.labels).toEqual({ a: 'b' });
    const again = await writeBlob(clients, { ref: 'r1', digest, size: data.length }, chunks(data));
    expect(again.existed).toBe(true);
  });

  it('resumes an interrupted ingest at the offset the daemon reports', async () => {
    const data = 'hello, resumable world';
    const digest = sha(data);
    s.ingests.set('r2', { data: [Buffer.from(data.slice(0, 7))], size: 7, expected: digest });
    const res = await writeBlob(
      clients,
      { ref: 'r2', digest, size: data.length },
      chunks('hel', 'lo, re', 'sumable world'),
    );
    expect(res.existed).toBe(false);
    expect(s.blobs.get('default')?.get(digest)?.data.toString()).toBe(data);
  });

  it('restarts an ingest longer than the blob', async () => {
    const data = 'short';
    const digest = sha(data);
    s.ingests.set('r3', { data: [Buffer.from('much longer than it')], size: 19, expected: digest });
    await writeBlob(clients, { ref: 'r3', digest, size: data.length }, chunks(data));
    expect(s.blobs.get('default')?.get(digest)?.data.toString()).toBe(data);
  });

  it('fails on a digest mismatch, and aborts the ingest when asked', async () => {
    const e = await caught(
      writeBlob(clients, { ref: 'r4', digest: sha('other'), size: 4 }, chunks('data'), {
        abortOnError: true,
      }),
    );
    expect(isFailedPrecondition(e)).toBe(true);
    expect(e.message).toContain('unexpected commit digest');
    expect(s.ingests.has('r4')).toBe(false);
    expect(s.blobs.get('default')?.size ?? 0).toBe(0);
    expect(
      isInvalidArgument(
        await caught(writeBlob(clients, { ref: 'r5', digest: 'sha256:../../x', size: 1 }, chunks('x'))),
      ),
    ).toBe(true);
  });

  it('sends the lease header inside withLease and deletes the lease', async () => {
    const digest = sha('leased');
    await withLease(clients, (lease) =>
      writeBlob(clients, { ref: 'r6', digest, size: 6 }, chunks('leased'), { lease }),
    );
    expect(s.leased).toEqual(['Content.write']);
    expect(s.leases.size).toBe(0);
    expect(s.deletedLeases[0]).toMatch(/^\d+-[0-9a-f]{6}$/);
  });
});

describe('readBlob and readBytes', () => {
  it('streams ranges and checks size and digest', async () => {
    const data = 'y'.repeat(10_000);
    const digest = s.addBlob('default', data);
    const parts: Buffer[] = [];
    for await (const c of readBlob(clients, digest, { offset: 9000, size: 500 })) parts.push(Buffer.from(c));
    expect(Buffer.concat(parts).toString()).toBe('y'.repeat(500));
    expect(Buffer.from(await readBytes(clients, { digest, size: 10_000 }, 20_000)).toString()).toBe(data);
    expect(isResourceExhausted(await caught(readBytes(clients, { digest, size: 10_000 }, 100)))).toBe(true);
    const short = await caught(readBytes(clients, { digest, size: 9_999 }, 20_000));
    expect(short.message).toContain("longer than its descriptor's 9999 bytes");
    const json = s.addBlob('default', '{"a":1}');
    expect(await readJson(clients, { digest: json, size: 7 }, 100)).toEqual({ a: 1 });
    const notJson = s.addBlob('default', '{nope');
    expect(isInvalidArgument(await caught(readJson(clients, { digest: notJson, size: 5 }, 100)))).toBe(true);
  });
});
