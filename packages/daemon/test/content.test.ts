import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  createInMemoryClient,
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isUnavailable,
} from '@ctrd/api-proto';
import { ContentService, WriteAction } from '@ctrd/api-proto/content';
import { ContentDeleteSchema } from '@ctrd/api-proto/event-types';
import { LeasesService } from '@ctrd/api-proto/leases';
import { sha256Digest } from '@ctrd/api-proto/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { LocalContent } from '../src/content/local-content.js';
import { initPlugins } from '../src/plugin.js';
import { PluginType } from '../src/plugin.js';
import type { Exchange } from '../src/services/exchange.js';
import { MetaStore } from '../src/store/meta-store.js';
import { bytes, pastEvents, readAll, writeBlob, writeSession } from './content-support.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const errOf = async (p: Promise<unknown> | (() => Promise<unknown>)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
};

const blobsDir = () => join(h.root, 'content', 'blobs', 'sha256');
const ingestDir = () => join(h.root, 'content', 'ingest');

describe('Content: write, info, read, list, update, delete', () => {
  it('a full STAT/WRITE/COMMIT session makes the blob visible, read-only on disk', async () => {
    const c = h.client(ContentService);
    const data = bytes(300_000);
    const dgst = sha256Digest(data);
    const s = writeSession(c);
    const st = await s.send({ action: WriteAction.STAT, ref: 'layer-1', total: BigInt(data.length) });
    expect(st.action).toBe(WriteAction.STAT);
    expect(st.offset).toBe(0n);
    expect(st.total).toBe(BigInt(data.length));
    expect(st.startedAt).toBeDefined();
    const w1 = await s.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 100_000) });
    expect(w1.offset).toBe(100_000n);
    expect(w1.digest).toBe(sha256Digest(data.subarray(0, 100_000)));
    // While writing, the ingest is listed with its offset.
    expect((await c.status({ ref: 'layer-1' })).status?.offset).toBe(100_000n);
    const w2 = await s.send({ action: WriteAction.WRITE, offset: 100_000n, data: data.subarray(100_000) });
    expect(w2.offset).toBe(BigInt(data.length));
    const done = await s.send({
      action: WriteAction.COMMIT,
      offset: BigInt(data.length),
      total: BigInt(data.length),
      expected: dgst,
      labels: { a: 'b' },
    });
    await s.end();
    expect(done.action).toBe(WriteAction.COMMIT);
    expect(done.digest).toBe(dgst);
    expect(done.offset).toBe(BigInt(data.length));

    const info = (await c.info({ digest: dgst })).info!;
    expect(info.size).toBe(BigInt(data.length));
    expect(info.labels).toEqual({ a: 'b' });
    expect(info.createdAt).toBeDefined();
    const file = join(blobsDir(), dgst.slice(7));
    expect(statSync(file).mode & 0o777).toBe(0o444);
    expect(readdirSync(ingestDir())).toEqual([]);
    expect((await c.listStatuses({})).statuses).toEqual([]);
    expect((await readAll(c, dgst)).data.equals(data)).toBe(true);
  });

  it('a commit without expected digest or size is accepted (ctr content ingest)', async () => {
    const c = h.client(ContentService);
    const data = Buffer.from('hello\n');
    const s = writeSession(c);
    await s.send({ action: WriteAction.STAT, ref: 'plain' });
    await s.send({ action: WriteAction.WRITE, offset: 0n, data });
    const done = await s.send({ action: WriteAction.COMMIT, offset: BigInt(data.length) });
    await s.end();
    expect(done.digest).toBe(sha256Digest(data));
    expect((await c.info({ digest: sha256Digest(data) })).info?.size).toBe(6n);
  });

  it('Read streams exactly the asked range in chunks of at most 1 MiB', async () => {
    const c = h.client(ContentService);
    const data = bytes(2.5 * 1024 * 1024, 7);
    const dgst = sha256Digest(data);
    await writeBlob(c, 'big', data, { expected: dgst, chunk: 1 << 20 });
    const all = await readAll(c, dgst);
    expect(all.data.equals(data)).toBe(true);
    expect(all.chunks.every((x) => x.length <= 1 << 20)).toBe(true);
    expect(all.chunks.map((x) => x.offset)).toEqual([0n, 1048576n, 2097152n]);
    const mid = await readAll(c, dgst, 1000n, 5000n);
    expect(mid.data.equals(data.subarray(1000, 6000))).toBe(true);
    expect(mid.chunks[0]?.offset).toBe(1000n);
    // size beyond the end: min(size, remaining)
    const tail = await readAll(c, dgst, BigInt(data.length - 10), 1000n);
    expect(tail.data.equals(data.subarray(data.length - 10))).toBe(true);
    // size 0: to the end; offset at the end: nothing
    expect((await readAll(c, dgst, BigInt(data.length - 3))).data.length).toBe(3);
    expect((await readAll(c, dgst, BigInt(data.length))).data.length).toBe(0);
    const past = await errOf(readAll(c, dgst, BigInt(data.length + 1)));
    expect(isInvalidArgument(past)).toBe(true);
    expect(past.message).toContain('past the end');
    expect(isNotFound(await errOf(readAll(c, sha256Digest('nope'))))).toBe(true);
  });

  it('List filters by digest, size and labels; Update masks labels; Delete publishes /content/delete', async () => {
    const c = h.client(ContentService);
    const a = Buffer.from('aaa');
    const b = Buffer.from('bbbbbb');
    await writeBlob(c, 'a', a, { labels: { kind: 'x' } });
    await writeBlob(c, 'b', b, { labels: { kind: 'y', keep: '1' } });
    const digests = async (filters: string[]) => {
      const out: string[] = [];
      for await (const r of c.list({ filters })) out.push(...r.info.map((i) => i.digest));
      return out.sort();
    };
    expect(await digests([])).toEqual([sha256Digest(a), sha256Digest(b)].sort());
    expect(await digests([`digest==${sha256Digest(a)}`])).toEqual([sha256Digest(a)]);
    expect(await digests(['size==6'])).toEqual([sha256Digest(b)]);
    expect(await digests(['labels.kind==y'])).toEqual([sha256Digest(b)]);
    expect(await digests(['labels.kind==x', 'labels.keep'])).toEqual(
      [sha256Digest(a), sha256Digest(b)].sort(),
    );
    expect(isInvalidArgument(await errOf(digests(['labels.kind=="x'])))).toBe(true);

    // labels.<k>: set one, empty value deletes another; others untouched.
    const up = await c.update({
      info: { digest: sha256Digest(b), labels: { new: 'v', keep: '' } },
      updateMask: { paths: ['labels.new', 'labels.keep'] },
    });
    expect(up.info?.labels).toEqual({ kind: 'y', new: 'v' });
    // labels: replace all
    const all = await c.update({
      info: { digest: sha256Digest(b), labels: { only: '1' } },
      updateMask: { paths: ['labels'] },
    });
    expect(all.info?.labels).toEqual({ only: '1' });
    // empty mask: replaces the labels too
    expect((await c.update({ info: { digest: sha256Digest(b), labels: {} } })).info?.labels).toEqual({});
    expect(
      isInvalidArgument(
        await errOf(
          c.update({ info: { digest: sha256Digest(b), size: 1n }, updateMask: { paths: ['size'] } }),
        ),
      ),
    ).toBe(true);
    expect(
      isInvalidArgument(
        await errOf(
          c.update({
            info: { digest: sha256Digest(b), labels: { k: 'v'.repeat(5000) } },
            updateMask: { paths: ['labels.k'] },
          }),
        ),
      ),
    ).toBe(true);
    expect(isNotFound(await errOf(c.update({ info: { digest: sha256Digest('zz') } })))).toBe(true);

    await c.delete({ digest: sha256Digest(a) });
    const e = await errOf(c.info({ digest: sha256Digest(a) }));
    expect(isNotFound(e)).toBe(true);
    expect(e.message).toContain(`content digest ${sha256Digest(a)}: not found`);
    expect(isNotFound(await errOf(c.delete({ digest: sha256Digest(a) })))).toBe(true);
    const ev = await pastEvents(
      h.plugins.get<Exchange>(PluginType.Event, 'exchange'),
      'topic=="/content/delete"',
    );
    expect(ev).toHaveLength(1);
    expect(ev[0]?.event?.typeUrl).toBe('containerd.events.ContentDelete');
    expect(fromBinary(ContentDeleteSchema, ev[0]!.event!.value).digest).toBe(sha256Digest(a));
  });

  it('STAT with an expected digest already committed is AlreadyExists', async () => {
    const c = h.client(ContentService);
    const data = Buffer.from('dup');
    await writeBlob(c, 'one', data);
    const s = writeSession(c);
    const e = await errOf(s.send({ action: WriteAction.STAT, ref: 'two', expected: sha256Digest(data) }));
    expect(isAlreadyExists(e)).toBe(true);
    // and a second commit of the same bytes under another ref is AlreadyExists, ingest gone
    const e2 = await errOf(writeBlob(c, 'three', data));
    expect(isAlreadyExists(e2)).toBe(true);
    expect((await c.listStatuses({})).statuses).toEqual([]);
  });
});

describe('Content: bad input (reliability cases 30, 31, 32, 20)', () => {
  it('30: a digest mismatch is FailedPrecondition and nothing becomes visible', async () => {
    const c = h.client(ContentService);
    const data = Buffer.from('real bytes');
    const wrong = sha256Digest('other bytes');
    const e = await errOf(writeBlob(c, 'bad', data, { expected: wrong }));
    expect(isFailedPrecondition(e)).toBe(true);
    expect(e.message).toContain(`unexpected commit digest ${sha256Digest(data)}, expected ${wrong}`);
    expect(isNotFound(await errOf(c.info({ digest: wrong })))).toBe(true);
    expect(isNotFound(await errOf(c.info({ digest: sha256Digest(data) })))).toBe(true);
    expect(existsSync(join(blobsDir(), sha256Digest(data).slice(7)))).toBe(false);
    expect(existsSync(join(blobsDir(), wrong.slice(7)))).toBe(false);
    expect((await c.listStatuses({})).statuses).toEqual([]);
    let n = 0;
    for await (const r of c.list({})) n += r.info.length;
    expect(n).toBe(0);
  });

  it('31: a short blob fails the size check; a resumed write continues at the right offset', async () => {
    const c = h.client(ContentService);
    const data = bytes(10_000, 3);
    const dgst = sha256Digest(data);
    const s = writeSession(c);
    await s.send({ action: WriteAction.STAT, ref: 'trunc', total: BigInt(data.length), expected: dgst });
    await s.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 4000) });
    const e = await errOf(
      s.send({ action: WriteAction.COMMIT, offset: 4000n, total: BigInt(data.length), expected: dgst }),
    );
    expect(isFailedPrecondition(e)).toBe(true);
    expect(e.message).toContain('unexpected commit size 4000, expected 10000');
    await s.end().catch(() => undefined);
    expect(isNotFound(await errOf(c.info({ digest: dgst })))).toBe(true);
    const status = (await c.status({ ref: 'trunc' })).status!;
    expect(status.offset).toBe(4000n);
    expect(status.total).toBe(10_000n);
    expect(status.expected).toBe(dgst);

    // Resume: STAT says 4000; the rest goes on from there.
    const s2 = writeSession(c);
    const st = await s2.send({
      action: WriteAction.STAT,
      ref: 'trunc',
      total: BigInt(data.length),
      expected: dgst,
    });
    expect(st.offset).toBe(4000n);
    expect(st.digest).toBe(sha256Digest(data.subarray(0, 4000)));
    const wrongOffset = await errOf(
      s2.send({ action: WriteAction.WRITE, offset: 3000n, data: data.subarray(3000) }),
    );
    expect(isInvalidArgument(wrongOffset)).toBe(true);
    await s2.end().catch(() => undefined);
    const s3 = writeSession(c);
    await s3.send({ action: WriteAction.STAT, ref: 'trunc' });
    await s3.send({ action: WriteAction.WRITE, offset: 4000n, data: data.subarray(4000) });
    const done = await s3.send({ action: WriteAction.COMMIT, offset: 10_000n, expected: dgst });
    await s3.end();
    expect(done.digest).toBe(dgst);
    expect((await readAll(c, dgst)).data.equals(data)).toBe(true);
  });

  it('a WRITE at offset 0 restarts the ingest; a write past the expected total is refused', async () => {
    const c = h.client(ContentService);
    const s = writeSession(c);
    await s.send({ action: WriteAction.STAT, ref: 'restart', total: 5n });
    await s.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('xxx') });
    const r = await s.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('hel') });
    expect(r.offset).toBe(3n);
    const past = await errOf(s.send({ action: WriteAction.WRITE, offset: 3n, data: Buffer.from('lo!!') }));
    expect(isInvalidArgument(past)).toBe(true);
    await s.end().catch(() => undefined);
    const s2 = writeSession(c);
    await s2.send({ action: WriteAction.STAT, ref: 'restart' });
    await s2.send({ action: WriteAction.WRITE, offset: 3n, data: Buffer.from('lo') });
    const done = await s2.send({ action: WriteAction.COMMIT, offset: 5n, expected: sha256Digest('hello') });
    await s2.end();
    expect(done.digest).toBe(sha256Digest('hello'));
  });

  it('bad offsets and totals are InvalidArgument, and lose nothing already written', async () => {
    const c = h.client(ContentService);
    const s = writeSession(c);
    await s.send({ action: WriteAction.STAT, ref: 'keep', total: 5n });
    await s.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('hel') });
    const cases: [string, Parameters<typeof s.send>[0], RegExp][] = [
      [
        'negative offset',
        { action: WriteAction.WRITE, offset: -1n, data: Buffer.from('lo') },
        /^content ref "keep": write offset: must not be negative, got -1/,
      ],
      [
        'negative offset, no data',
        { action: WriteAction.COMMIT, offset: -3n },
        /^content ref "keep": write offset: must not be negative/,
      ],
      [
        'offset past what is written',
        { action: WriteAction.WRITE, offset: 4n, data: Buffer.from('o') },
        /^content ref "keep": write at offset 4 must occur at the current offset 3, past the 3 bytes written so far/,
      ],
      [
        'offset behind',
        { action: WriteAction.WRITE, offset: 1n, data: Buffer.from('el') },
        /^content ref "keep": write at offset 1 must occur at the current offset 3/,
      ],
      [
        'a restart that would not fit the total',
        { action: WriteAction.WRITE, offset: 0n, data: Buffer.from('123456') },
        /goes past the expected total of 5/,
      ],
      [
        'negative total',
        { action: WriteAction.WRITE, offset: 3n, total: -1n, data: Buffer.from('lo') },
        /^content ref "keep": total: must not be negative, got -1/,
      ],
      [
        'offset beyond int64 sense',
        { action: WriteAction.WRITE, offset: 1n << 62n },
        /larger than the maximum/,
      ],
    ];
    for (const [what, msg, message] of cases) {
      // A bad message ends its stream (and frees the ref): the first case uses the open one.
      const w = what === cases[0]![0] ? s : writeSession(c);
      if (w !== s) await w.send({ action: WriteAction.STAT, ref: 'keep' });
      const err = await errOf(w.send(msg));
      expect(isInvalidArgument(err), what).toBe(true);
      expect(err.message, what).toMatch(message);
      await w.end().catch(() => undefined);
      const st = (await c.status({ ref: 'keep' })).status!;
      expect([st.offset, st.total], what).toEqual([3n, 5n]);
    }
    const s2 = writeSession(c);
    await s2.send({ action: WriteAction.STAT, ref: 'keep' });
    await s2.send({ action: WriteAction.WRITE, offset: 3n, data: Buffer.from('lo') });
    const done = await s2.send({ action: WriteAction.COMMIT, offset: 5n, expected: sha256Digest('hello') });
    await s2.end();
    expect(done.digest).toBe(sha256Digest('hello'));
  });

  it('32: malformed digests are InvalidArgument with no filesystem access', async () => {
    const c = h.client(ContentService);
    const bad = [
      'sha256:../../x',
      `sha256:${'../'.repeat(21)}a`,
      'md5:d41d8cd98f00b204e9800998ecf8427e',
      `sha256:${'g'.repeat(64)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'a'.repeat(63)}`,
      'sha256',
      '',
      `../sha256:${'a'.repeat(64)}`,
    ];
    for (const digest of bad) {
      expect(isInvalidArgument(await errOf(c.info({ digest }))), digest).toBe(true);
      expect(isInvalidArgument(await errOf(readAll(c, digest))), digest).toBe(true);
      expect(isInvalidArgument(await errOf(c.delete({ digest }))), digest).toBe(true);
      expect(isInvalidArgument(await errOf(c.update({ info: { digest } }))), digest).toBe(true);
      if (digest !== '') {
        const s = writeSession(c);
        expect(
          isInvalidArgument(await errOf(s.send({ action: WriteAction.STAT, ref: 'r', expected: digest }))),
          digest,
        ).toBe(true);
        const s2 = writeSession(c);
        await s2.send({ action: WriteAction.STAT, ref: 'r2' });
        expect(
          isInvalidArgument(await errOf(s2.send({ action: WriteAction.COMMIT, expected: digest }))),
          digest,
        ).toBe(true);
      }
    }
    expect(readdirSync(join(h.root, 'content', 'blobs'))).toEqual([]);
    expect(existsSync(join(h.root, 'x'))).toBe(false);
  });

  it('refs: empty, over 1024 characters or with control characters are InvalidArgument', async () => {
    const c = h.client(ContentService);
    for (const ref of ['', 'x'.repeat(1025), 'a\nb', 'a\0b']) {
      const s = writeSession(c);
      expect(
        isInvalidArgument(await errOf(s.send({ action: WriteAction.STAT, ref }))),
        JSON.stringify(ref),
      ).toBe(true);
      if (ref !== '') {
        expect(isInvalidArgument(await errOf(c.status({ ref })))).toBe(true);
        expect(isInvalidArgument(await errOf(c.abort({ ref })))).toBe(true);
      }
    }
    // A negative total is InvalidArgument (containerd reads it as unknown).
    const s = writeSession(c);
    const neg = await errOf(s.send({ action: WriteAction.STAT, ref: 'neg', total: -5n }));
    expect(isInvalidArgument(neg)).toBe(true);
    expect(neg.message).toMatch(/^content ref "neg": total: must not be negative, got -5/);
    const huge = writeSession(c);
    expect(
      isInvalidArgument(await errOf(huge.send({ action: WriteAction.STAT, ref: 'huge', total: 1n << 62n }))),
    ).toBe(true);
  });

  it('20: a second writer of a ref being written gets Unavailable "locked"; free again after', async () => {
    const c = h.client(ContentService);
    const s1 = writeSession(c);
    await s1.send({ action: WriteAction.STAT, ref: 'shared-ref' });
    const attempts = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const s = writeSession(c);
        return errOf(s.send({ action: WriteAction.STAT, ref: 'shared-ref' }));
      }),
    );
    for (const e of attempts) {
      expect(isUnavailable(e)).toBe(true);
      expect(e.message).toMatch(/ref shared-ref locked for/);
    }
    expect(isUnavailable(await errOf(c.abort({ ref: 'shared-ref' })))).toBe(true);
    await s1.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('abc') });
    await s1.end();
    const s2 = writeSession(c);
    const st = await s2.send({ action: WriteAction.STAT, ref: 'shared-ref' });
    expect(st.offset).toBe(3n);
    await s2.end();
    // Abort removes it; again is NotFound.
    await c.abort({ ref: 'shared-ref' });
    expect(isNotFound(await errOf(c.status({ ref: 'shared-ref' })))).toBe(true);
    expect(isNotFound(await errOf(c.abort({ ref: 'shared-ref' })))).toBe(true);
    expect(readdirSync(ingestDir())).toEqual([]);
  });

  it('the first message must carry a ref; an unknown action is InvalidArgument', async () => {
    const c = h.client(ContentService);
    const s = writeSession(c);
    const e = await errOf(s.send({ action: WriteAction.WRITE, data: Buffer.from('x') }));
    expect(isInvalidArgument(e)).toBe(true);
    expect(e.message).toContain('first message must have a reference');
    const s2 = writeSession(c);
    expect(isInvalidArgument(await errOf(s2.send({ action: 7 as WriteAction, ref: 'q' })))).toBe(true);
  });
});

describe('Content: namespaces, leases, statuses', () => {
  it('26: another namespace sees NotFound, but may commit the blob from shared disk', async () => {
    const a = h.client(ContentService, 'ns-a');
    const b = h.client(ContentService, 'ns-b');
    const data = Buffer.from('shared blob');
    const dgst = sha256Digest(data);
    await writeBlob(a, 'x', data, { labels: { in: 'a' } });
    expect(isNotFound(await errOf(b.info({ digest: dgst })))).toBe(true);
    expect(isNotFound(await errOf(readAll(b, dgst)))).toBe(true);
    expect(isNotFound(await errOf(b.delete({ digest: dgst })))).toBe(true);
    let listed = 0;
    for await (const r of b.list({})) listed += r.info.length;
    expect(listed).toBe(0);
    // STAT naming the digest adds it to ns-b (AlreadyExists, as containerd's shared policy).
    const s = writeSession(b);
    const e = await errOf(
      s.send({ action: WriteAction.STAT, ref: 'y', expected: dgst, total: BigInt(data.length) }),
    );
    expect(isAlreadyExists(e)).toBe(true);
    const info = (await b.info({ digest: dgst })).info!;
    expect(info.size).toBe(BigInt(data.length));
    expect(info.labels).toEqual({});
    expect((await readAll(b, dgst)).data.equals(data)).toBe(true);
    // a wrong size does not borrow it
    const other = Buffer.from('other shared');
    await writeBlob(a, 'o', other);
    const s2 = writeSession(b);
    const st = await s2.send({
      action: WriteAction.STAT,
      ref: 'o2',
      expected: sha256Digest(other),
      total: 1n,
    });
    expect(st.offset).toBe(0n);
    await s2.end();
    // Statuses are per namespace too.
    const sa = writeSession(a);
    await sa.send({ action: WriteAction.STAT, ref: 'only-a' });
    await sa.end();
    expect((await a.listStatuses({})).statuses.map((x) => x.ref)).toEqual(['only-a']);
    expect((await b.listStatuses({})).statuses.map((x) => x.ref)).toEqual(['o2']);
    expect(isNotFound(await errOf(b.status({ ref: 'only-a' })))).toBe(true);
    // A full write in ns-b of a blob ns-a has: committed by adding the row.
    const c2 = Buffer.from('third');
    await writeBlob(a, 't', c2);
    const done = await writeBlob(b, 't', c2);
    expect(done.digest).toBe(sha256Digest(c2));
    expect((await b.info({ digest: sha256Digest(c2) })).info?.size).toBe(5n);
  });

  it('ListStatuses filters by ref', async () => {
    const c = h.client(ContentService);
    for (const ref of ['layer-sha256:1', 'layer-sha256:2', 'manifest-sha256:3']) {
      const s = writeSession(c);
      await s.send({ action: WriteAction.STAT, ref });
      await s.end();
    }
    const refs = async (filters: string[]) => (await c.listStatuses({ filters })).statuses.map((x) => x.ref);
    expect(await refs([])).toEqual(['layer-sha256:1', 'layer-sha256:2', 'manifest-sha256:3']);
    expect(await refs(['ref~="^layer-"'])).toEqual(['layer-sha256:1', 'layer-sha256:2']);
    expect(await refs(['ref=="manifest-sha256:3"'])).toEqual(['manifest-sha256:3']);
  });

  it('a write under a lease adds ingests/<ref> while writing and content/<digest> on commit', async () => {
    const leases = h.client(LeasesService);
    await leases.create({ id: 'L' });
    const c = h.client(ContentService, 'default', 'L');
    const data = Buffer.from('leased');
    const s = writeSession(c);
    await s.send({ action: WriteAction.STAT, ref: 'lr', total: BigInt(data.length) });
    const res = async () =>
      (await leases.listResources({ id: 'L' })).resources.map((r) => `${r.type}:${r.id}`);
    expect(await res()).toEqual(['ingests:lr']);
    await s.send({ action: WriteAction.WRITE, offset: 0n, data });
    await s.send({ action: WriteAction.COMMIT, offset: BigInt(data.length) });
    await s.end();
    expect(await res()).toEqual([`content:${sha256Digest(data)}`]);
    // An existing blob named in STAT is added to the lease as well.
    await leases.create({ id: 'L2' });
    const c2 = h.client(ContentService, 'default', 'L2');
    const s2 = writeSession(c2);
    expect(
      isAlreadyExists(
        await errOf(s2.send({ action: WriteAction.STAT, ref: 'z', expected: sha256Digest(data) })),
      ),
    ).toBe(true);
    expect((await leases.listResources({ id: 'L2' })).resources.map((r) => r.id)).toEqual([
      sha256Digest(data),
    ]);
    // An unknown lease is NotFound and leaves no ingest behind.
    const c3 = h.client(ContentService, 'default', 'nope');
    const s3 = writeSession(c3);
    expect(isNotFound(await errOf(s3.send({ action: WriteAction.STAT, ref: 'q' })))).toBe(true);
    expect(readdirSync(ingestDir())).toEqual([]);
  });

  it('LocalContent.ingest: commits, reports AlreadyExists, and cleans up a failed write', async () => {
    const local = h.plugins.get<LocalContent>(PluginType.Content, 'content');
    const src = async function* (parts: string[]) {
      for (const p of parts) yield Buffer.from(p);
    };
    const info = await local.ingest('default', src(['ab', 'cd']), {
      ref: 'int',
      expected: sha256Digest('abcd'),
      size: 4,
      labels: { x: 'y' },
    });
    expect(info.digest).toBe(sha256Digest('abcd'));
    expect(local.blobPath('default', info.digest)).toBe(join(blobsDir(), info.digest.slice(7)));
    expect(
      isAlreadyExists(
        await errOf(local.ingest('default', src(['abcd']), { ref: 'int2', expected: info.digest })),
      ),
    ).toBe(true);
    expect(isAlreadyExists(await errOf(local.ingest('default', src(['abcd']), { ref: 'int3' })))).toBe(true);
    const bad = await errOf(
      local.ingest('default', src(['abce']), { ref: 'int4', expected: sha256Digest('zz') }),
    );
    expect(isFailedPrecondition(bad)).toBe(true);
    const failing = async function* () {
      yield Buffer.from('partial');
      throw new Error('source broke');
    };
    expect((await errOf(local.ingest('default', failing(), { ref: 'int5' }))).message).toBe('source broke');
    expect(readdirSync(ingestDir())).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const b of local.readStream('default', info.digest, { offset: 1, size: 2 }))
      chunks.push(Buffer.from(b));
    expect(Buffer.concat(chunks).toString()).toBe('bc');
    expect(isNotFound(await errOf(async () => local.blobPath('other', info.digest)))).toBe(true);
  });
});

describe('Content: restart', () => {
  it('an ingest survives a daemon restart and resumes at its offset', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ctrd-content-restart-'));
    const load = () =>
      initPlugins(builtinPlugins({ root }), {
        config: { ...defaultConfig, root, stateDir: join(root, 'state') },
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        rootDir: root,
        stateDir: join(root, 'state'),
      });
    try {
      const data = bytes(50_000, 9);
      const dgst = sha256Digest(data);
      let plugins = await load();
      let c = createInMemoryClient(ContentService, { services: plugins.services, namespace: 'default' });
      const s = writeSession(c);
      const st0 = await s.send({ action: WriteAction.STAT, ref: 'resume', total: 50_000n, expected: dgst });
      await s.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 20_000) });
      await s.end();
      await plugins.close();

      plugins = await load();
      c = createInMemoryClient(ContentService, { services: plugins.services, namespace: 'default' });
      const status = (await c.status({ ref: 'resume' })).status!;
      expect(status.offset).toBe(20_000n);
      expect(status.total).toBe(50_000n);
      expect(status.expected).toBe(dgst);
      expect(status.startedAt).toEqual(st0.startedAt);
      const s2 = writeSession(c);
      const st = await s2.send({ action: WriteAction.STAT, ref: 'resume' });
      expect(st.offset).toBe(20_000n);
      await s2.send({ action: WriteAction.WRITE, offset: 20_000n, data: data.subarray(20_000) });
      const done = await s2.send({
        action: WriteAction.COMMIT,
        offset: 50_000n,
        total: 50_000n,
        expected: dgst,
      });
      await s2.end();
      expect(done.digest).toBe(dgst);
      expect((await readAll(c, dgst)).data.equals(data)).toBe(true);
      await plugins.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('Content: full disk (reliability case 18)', () => {
  it('a write that fills the disk is ResourceExhausted and leaves no blob, row or ingest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctrd-content-full-'));
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    const store = new MetaStore(join(dir, 'meta.db'));
    try {
      const local = new LocalContent({ root: join(mnt, 'content'), store });
      const big = bytes(1024 * 1024, 5);
      const src = async function* () {
        for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
      };
      const e = await errOf(local.ingest('default', src(), { ref: 'huge', expected: sha256Digest(big) }));
      expect(e.name).toBe('ResourceExhausted');
      expect(e.message).toContain('content ref "huge": no space left on device');
      expect(await local.list('default')).toEqual([]);
      expect(await local.listStatuses('default')).toEqual([]);
      expect(readdirSync(join(mnt, 'content', 'blobs'))).toEqual([]);
      // The store still works once there is room.
      const small = Buffer.from('fits');
      const info = await local.ingest(
        'default',
        (async function* () {
          yield small;
        })(),
        { ref: 'small' },
      );
      expect(info.digest).toBe(sha256Digest(small));
    } finally {
      store.close();
      execFileSync('umount', [mnt]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
