import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Canceled, InvalidArgument, ResourceExhausted } from '../src/errors.js';
import { readTar, type TarEntry, type TarReaderOptions, TarWriter, writeTar } from '../src/tar.js';
import { BLOCK, FIELD, type FieldName, writeChecksum } from '../src/tar/header.js';
import { encodePaxRecord } from '../src/tar/pax.js';
import {
  archivePiece,
  chunkSizes,
  collectBytes,
  concat,
  END,
  encode,
  expectedError,
  expectedRead,
  type Feed,
  feed,
  fuzzParams,
  hex,
  mutate,
  mutations,
  READER_ERRORS,
  PROPERTY_TEST_TIMEOUT_MS,
  rawHeader,
  segment,
  unexpected,
  withData,
  writeBase256,
  writeEntry,
  failOnUnhandledRejections,
} from './tar-fuzz-support.js';

// Property tests of the streaming tar reader: whatever the bytes, readTar yields entries and ends
// or rejects with InvalidArgument / ResourceExhausted, makes progress on every step, closes its
// source, and holds no more than its caps; whatever the writer writes reads back the same.

failOnUnhandledRejections();

const params = fuzzParams(300);

const TYPES = new Set(['file', 'hardlink', 'symlink', 'chardev', 'blockdev', 'dir', 'fifo']);
const DEFAULT_MAX_PAX = 1024 * 1024;
const DEFAULT_MAX_NAME = 64 * 1024;

type BodyMode = 'read' | 'partial' | 'skip' | 'late';
const bodyModes = fc.array(fc.constantFrom<BodyMode>('read', 'partial', 'skip', 'late'), {
  minLength: 1,
  maxLength: 6,
});

const readerOptions: fc.Arbitrary<TarReaderOptions> = fc.record(
  {
    maxPaxSize: fc.constantFrom(256, 4096),
    maxNameLength: fc.constantFrom(64, 300),
    allowMissingEnd: fc.boolean(),
    drainTrailing: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** What a caller may rely on for any entry the reader yields. */
function checkEntry(e: TarEntry, opts: TarReaderOptions): void {
  const maxName = opts.maxNameLength ?? DEFAULT_MAX_NAME;
  const problems: string[] = [];
  if (!TYPES.has(e.type)) problems.push(`type ${e.type}`);
  if (!Number.isSafeInteger(e.size) || e.size < 0) problems.push(`size ${e.size}`);
  if (e.type !== 'file' && e.size !== 0) problems.push(`${e.type} with size ${e.size}`);
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) problems.push(`mode ${e.mode}`);
  for (const k of ['uid', 'gid', 'devmajor', 'devminor'] as const) {
    if (!Number.isSafeInteger(e[k]) || e[k] < 0) problems.push(`${k} ${e[k]}`);
  }
  if (!Number.isFinite(e.mtime)) problems.push(`mtime ${e.mtime}`);
  if (e.name.length > maxName || e.linkname.length > maxName) problems.push('name over the limit');
  for (const [k, v] of Object.entries(e.xattrs)) if (!(v instanceof Uint8Array)) problems.push(`xattr ${k}`);
  if (problems.length > 0) throw new Error(`entry "${e.name.slice(0, 80)}": ${problems.join(', ')}`);
}

/**
 * Reads every entry, each body as `modes` says (whole, one chunk, not at all, or after the reader
 * moved on), and fails on anything a caller could not rely on, including a step that consumed
 * nothing: each entry costs at least a block and each body chunk at least a byte.
 */
async function consume(f: Feed, total: number, modes: readonly BodyMode[], opts: TarReaderOptions) {
  const bound = total + 2;
  let steps = 0;
  const step = () => {
    if (++steps > bound) throw new Error(`no progress: ${steps} steps over ${total} bytes`);
  };
  let entries = 0;
  let late: TarEntry | undefined;
  const readLate = async () => {
    if (!late) return;
    const e = late;
    late = undefined;
    if (e.size === 0) {
      expect((await collectBytes(e.body)).length).toBe(0);
      return;
    }
    await expect(collectBytes(e.body)).rejects.toThrow(/read after the reader moved on/);
  };
  for await (const e of readTar(f.source, opts)) {
    step();
    checkEntry(e, opts);
    await readLate();
    const mode = modes[entries++ % modes.length]!;
    if (mode === 'read') {
      let n = 0;
      for await (const c of e.body) {
        step();
        if (c.length === 0) throw new Error('empty body chunk');
        n += c.length;
      }
      if (n !== e.size) throw new Error(`body of "${e.name}": ${n} bytes, size says ${e.size}`);
    } else if (mode === 'partial') {
      for await (const _ of e.body) break;
    } else if (mode === 'late') {
      late = e;
    }
  }
  await readLate();
  return entries;
}

/** 'ok', or 'error' for an allowed error class; anything else is thrown for fast-check to report. */
async function outcome(run: () => Promise<unknown>, allowed = READER_ERRORS): Promise<'ok' | 'error'> {
  try {
    await run();
    return 'ok';
  } catch (err) {
    if (expectedError(err, allowed)) return 'error';
    throw unexpected(err);
  }
}

describe('readTar on arbitrary bytes', () => {
  it(
    'random bytes: entries or InvalidArgument/ResourceExhausted, source closed',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 4096 }),
          chunkSizes,
          bodyModes,
          readerOptions,
          async (data, sizes, modes, opts) => {
            const f = feed(data, sizes);
            await outcome(() => consume(f, data.length, modes, opts));
            expect(f.closed).toBe(true);
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'written archives with PAX, GNU and random headers, mutated and re-chunked',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(archivePiece, { maxLength: 6 }),
          fc.constantFrom('end', 'none', 'half', 'trailing'),
          mutations,
          chunkSizes,
          bodyModes,
          readerOptions,
          async (pieces, ending, mutations, sizes, modes, opts) => {
            const parts = await Promise.all(pieces);
            if (ending === 'end') parts.push(END);
            if (ending === 'half') parts.push(END.subarray(0, BLOCK));
            if (ending === 'trailing') parts.push(END, new Uint8Array([1, 2, 3]));
            const data = mutate(concat(parts), mutations);
            const f = feed(data, sizes);
            await outcome(() => consume(f, data.length, modes, opts));
            expect(f.closed).toBe(true);
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'random numeric header fields, octal or base-256, re-checksummed',
    async () => {
      const numeric: FieldName[] = ['mode', 'uid', 'gid', 'size', 'mtime', 'devmajor', 'devminor'];
      await fc.assert(
        fc.asyncProperty(
          writeEntry,
          fc.constantFrom(...numeric),
          fc.oneof(
            fc.bigInt({ min: -(2n ** 20n), max: 2n ** 20n }),
            fc.bigInt({ min: -(2n ** 53n), max: 2n ** 53n }),
            fc.bigInt({ min: -(2n ** 95n), max: 2n ** 95n - 1n }),
          ),
          chunkSizes,
          async (entry, name, value, sizes) => {
            const bytes = await encode(entry);
            // The ustar header is the last one: after any PAX header, before the body.
            const headerAt = findUstarHeader(bytes);
            const pax = headerAt > 0;
            const data = concat([bytes, END]);
            const block = data.subarray(headerAt, headerAt + BLOCK);
            // Clamp into what base-256 in the field can hold: the top bit marks base-256 and the
            // next one is the sign, so an 8-byte field holds 62 bits and a 12-byte one 94.
            const m = 1n << BigInt(8 * FIELD[name][1] - 2);
            const v = (((value % m) + m) % m) - (value < 0n ? m : 0n);
            writeBase256(block, name, v);
            writeChecksum(block);
            const f = feed(data, sizes);
            const result = await outcome(() => consume(f, data.length, ['read'], {}));
            const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
            const device = entry.type === 'chardev' || entry.type === 'blockdev';
            const read = device || (name !== 'devmajor' && name !== 'devminor');
            if (!safe && read) expect(result).toBe('error');
            // A PAX record overrides the header's uid, gid, size or mtime, so only a header the
            // writer did not shadow says exactly what must happen.
            if (safe && !pax && ['uid', 'gid', 'devmajor', 'devminor'].includes(name)) {
              const matters = name === 'uid' || name === 'gid' || device;
              expect(result).toBe(matters && v < 0n ? 'error' : 'ok');
            }
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'early exit from the loop closes the source',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(writeEntry, { minLength: 1, maxLength: 5 }),
          fc.nat({ max: 4 }),
          chunkSizes,
          async (entries, stopAfter, sizes) => {
            const data = await collectBytes(writeTar(entries));
            const f = feed(data, sizes);
            let seen = 0;
            for await (const _ of readTar(f.source)) {
              if (seen++ === stopAfter) break;
            }
            expect(f.closed).toBe(true);
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'an abort part way through ends with Canceled (or the archive was already read)',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(writeEntry, { minLength: 1, maxLength: 5 }),
          fc.nat({ max: 8000 }),
          chunkSizes,
          async (entries, abortAt, sizes) => {
            const data = await collectBytes(writeTar(entries));
            const ac = new AbortController();
            const f = feed(data, sizes, (pulled) => {
              if (pulled >= abortAt) ac.abort(new Error('test abort'));
            });
            const result = await outcome(
              () => consume(f, data.length, ['read'], { signal: ac.signal }),
              [Canceled],
            );
            if (result === 'error') expect(ac.signal.aborted).toBe(true);
            expect(f.closed).toBe(true);
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

/** The offset of the first non-PAX header of an encoded entry. */
function findUstarHeader(bytes: Uint8Array): number {
  let at = 0;
  while (bytes[at + FIELD.typeflag[0]] === 'x'.charCodeAt(0)) {
    const size = Number.parseInt(Buffer.from(bytes.subarray(at + 124, at + 135)).toString('latin1'), 8);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return at;
}

async function readBack(data: Uint8Array, sizes: readonly number[]) {
  const out: ReturnType<typeof expectedRead>[] = [];
  for await (const e of readTar(feed(data, sizes).source)) {
    const body = await collectBytes(e.body);
    out.push({
      name: e.name,
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      mtime: e.mtime,
      linkname: e.linkname,
      uname: e.uname,
      gname: e.gname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      xattrs: Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, hex(v)])),
      body: hex(body),
    });
  }
  return out;
}

describe('tar round trip', () => {
  it(
    'whatever TarWriter writes reads back the same, however the stream is cut',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(writeEntry, { maxLength: 6 }),
          chunkSizes,
          fc.boolean(),
          async (entries, sizes, viaClass) => {
            let data: Uint8Array;
            if (viaClass) {
              const w = new TarWriter();
              const adding = (async () => {
                for (const e of entries) await w.add(e);
                await w.finish();
              })();
              data = await collectBytes(w);
              await adding;
            } else {
              data = await collectBytes(writeTar(entries));
            }
            expect(await readBack(data, sizes)).toEqual(entries.map(expectedRead));
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'GNU long name and long link headers give the entry its name and target',
    async () => {
      const longText = fc
        .array(segment, { minLength: 1, maxLength: 40 })
        .map((s) => s.join('/'))
        .filter((s) => s.length <= DEFAULT_MAX_NAME);
      await fc.assert(
        fc.asyncProperty(
          writeEntry,
          longText,
          fc.option(longText),
          chunkSizes,
          async (entry, name, link, sizes) => {
            const encoder = new TextEncoder();
            const plain = { ...entry, name: 'short', linkname: 'short-link', xattrs: {} };
            const parts = [withData('L', encoder.encode(`${name}\0`))];
            if (link !== null) parts.push(withData('K', encoder.encode(`${link}\0`)));
            const data = concat([...parts, await encode(plain), END]);
            const [read] = await readBack(data, sizes);
            expect(read).toEqual({
              ...expectedRead(plain),
              name,
              linkname: link ?? 'short-link',
            });
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'global PAX records are read and set aside: no later entry takes them (as Go and containerd)',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(writeEntry, { minLength: 1, maxLength: 4 }),
          fc.nat({ max: 2 ** 31 }),
          fc.uint8Array({ maxLength: 32 }),
          chunkSizes,
          async (entries, uid, xattr, sizes) => {
            const records = concat([
              encodePaxRecord('uid', String(uid)),
              encodePaxRecord('path', 'global-path'),
              encodePaxRecord('size', '7'),
              encodePaxRecord('SCHILY.xattr.user.global', xattr),
            ]);
            // Plain entries, so no local PAX record overrides the global ones.
            const plain = entries.map((e) => ({ ...e, name: `n${e.mode}`, uid: 1, xattrs: {} }));
            const data = concat([withData('g', records), ...(await Promise.all(plain.map(encode))), END]);
            const read = await readBack(data, sizes);
            expect(read).toEqual(plain.map((e) => expectedRead(e)));
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

describe('readTar memory stays within its caps', () => {
  /** A header, then an endless stream of zeros (cut off at 64 MiB so a bug stays finite). */
  function endless(header: Uint8Array, chunk: number) {
    const state = { pulled: 0 };
    const zeros = new Uint8Array(chunk);
    async function* gen() {
      state.pulled += header.length;
      yield header;
      while (state.pulled < 64 * 1024 * 1024) {
        state.pulled += zeros.length;
        yield zeros;
      }
    }
    return { source: gen(), state };
  }

  it(
    'a PAX header or GNU long name over its cap is refused before its data is read',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('x', 'g', 'L', 'K'),
          fc.bigInt({ min: 1n, max: 2n ** 40n }),
          fc.constantFrom(undefined, 512, 4096),
          fc.constantFrom(1, 4096, 65536),
          async (flag, over, cap, chunk) => {
            const pax = flag === 'x' || flag === 'g';
            const limit = cap ?? (pax ? DEFAULT_MAX_PAX : DEFAULT_MAX_NAME);
            const opts = pax ? { maxPaxSize: limit } : { maxNameLength: limit };
            const { source, state } = endless(
              rawHeader({ typeflag: flag, size: BigInt(limit) + over }),
              chunk,
            );
            await expect(
              consume({ source, pulled: 0, closed: false }, 0, ['skip'], opts),
            ).rejects.toBeInstanceOf(ResourceExhausted);
            expect(state.pulled).toBeLessThanOrEqual(BLOCK + chunk);
          },
        ),
        fuzzParams(60),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it('a PAX header or GNU long name exactly at its cap is read', async () => {
    for (const flag of ['x', 'g', 'L', 'K']) {
      const data = concat([
        withData(flag, new Uint8Array(512)),
        await encode({ name: 'f', type: 'file' }),
        END,
      ]);
      const opts = flag === 'x' || flag === 'g' ? { maxPaxSize: 512 } : { maxNameLength: 512 };
      expect(await consume(feed(data, [100]), data.length, ['read'], opts)).toBe(1);
    }
  });

  it(
    'a huge declared body is streamed, never buffered: truncation is found when it happens',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.bigInt({ min: 2n ** 20n, max: 2n ** 24n }),
            fc.bigInt({ min: 2n ** 28n, max: 2n ** 50n }),
          ),
          fc.boolean(),
          async (size, viaPax) => {
            const header = viaPax
              ? concat([
                  withData('x', encodePaxRecord('size', String(size))),
                  rawHeader({ typeflag: '0', size: 0, name: 'big' }),
                ])
              : rawHeader({ typeflag: '0', size, name: 'big' });
            const { source, state } = endless(header, 65536);
            const result = await consume({ source, pulled: 0, closed: false }, 2 ** 40, ['read'], {}).catch(
              (e: unknown) => e,
            );
            // A body shorter than the 64 MiB of zeros is read, and the zeros after it are the end
            // marker; a longer one runs out of stream part way.
            if (size < 32n * 1024n * 1024n) expect(result).toBe(1);
            if (size > 128n * 1024n * 1024n) expect(result).toBeInstanceOf(InvalidArgument);
            expect(state.pulled).toBeLessThanOrEqual(64 * 1024 * 1024 + 2 * 65536);
          },
        ),
        fuzzParams(10),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

// Defects these properties found, fixed: each test says what holds now.
describe('readTar: found by the properties', () => {
  /** PAX headers of `count` distinct 900-byte xattrs each, one header per xattr, then `entry`. */
  async function stacked(flag: 'x' | 'g', count: number): Promise<Uint8Array> {
    const headers: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      headers.push(withData(flag, encodePaxRecord(`SCHILY.xattr.user.k${i}`, 'v'.repeat(900))));
    }
    return concat([...headers, await encode({ name: 'f', type: 'file' }), END]);
  }
  const heldBytes = (e: TarEntry) => Object.values(e.xattrs).reduce((n, v) => n + v.length, 0);

  it('consecutive local PAX headers do not add up past maxPaxSize', async () => {
    // Each header is under the 1 KiB cap; only the last one applies (as in Go's archive/tar), so
    // N headers cannot make one entry hold N times the cap.
    const data = await stacked('x', 50);
    for await (const e of readTar(feed(data, [4096]).source, { maxPaxSize: 1024 })) {
      expect(heldBytes(e)).toBeLessThanOrEqual(1024);
    }
  });

  it('global PAX headers do not add up past maxPaxSize', async () => {
    const data = await stacked('g', 50);
    for await (const e of readTar(feed(data, [4096]).source, { maxPaxSize: 1024 })) {
      expect(heldBytes(e)).toBeLessThanOrEqual(1024);
    }
  });

  it("an xattr named __proto__ reads back as an xattr, not as the object's prototype", async () => {
    const xattrs = JSON.parse('{"__proto__": "x", "user.a": "y"}') as Record<string, string>;
    const data = await collectBytes(writeTar([{ name: 'f', type: 'file', xattrs }]));
    for await (const e of readTar(feed(data, [512]).source)) {
      expect(Object.getPrototypeOf(e.xattrs)).toBe(Object.prototype);
      expect(Object.keys(e.xattrs).sort()).toEqual(['__proto__', 'user.a']);
    }
  });

  it('one global PAX header does not make every later entry cost more', async () => {
    // Entries once walked every global record: one 1 MiB global header of ~88k keys cost each
    // later entry ~2.5 ms, O(records x entries). Global records are not applied now.
    const records: Uint8Array[] = [];
    for (let i = 0, n = 0; n < DEFAULT_MAX_PAX - 64; i++) {
      const r = encodePaxRecord(`c.${i}`, '');
      records.push(r);
      n += r.length;
    }
    const entry = await encode({ name: 'f', type: 'file' });
    const entries = Array.from({ length: 20 }, () => entry);
    const data = concat([withData('g', concat(records)), ...entries, END]);
    // Work counted, not timed: the Map iterator steps the reader takes (its PAX records are Maps).
    const original = Map.prototype[Symbol.iterator];
    let steps = 0;
    Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
      const it = original.call(this);
      return {
        next: () => {
          steps++;
          return it.next();
        },
        [Symbol.iterator]() {
          return this;
        },
      } as ReturnType<typeof original>;
    };
    let n = 0;
    try {
      for await (const _ of readTar(feed(data, [65536]).source)) n++;
    } finally {
      Map.prototype[Symbol.iterator] = original;
    }
    expect(n).toBe(entries.length);
    // Linear: a few steps per record and per entry, not records times entries.
    expect(steps).toBeLessThan(4 * (records.length + entries.length));
  });
});
