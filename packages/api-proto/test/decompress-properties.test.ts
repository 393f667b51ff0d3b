import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgument, ResourceExhausted } from '../src/errors.js';
import {
  decompressStream,
  detectCompression,
  gzipStream,
  hasNativeZstd,
  readTar,
  writeTar,
} from '../src/tar.js';
import {
  chunkSizes,
  collectBytes,
  concat,
  expectedError,
  feed,
  fuzzParams,
  hex,
  mutate,
  mutations,
  PROPERTY_TEST_TIMEOUT_MS,
  unexpected,
  writeEntry,
  failOnUnhandledRejections,
} from './tar-fuzz-support.js';

// Property tests of layer decompression: random and damaged gzip and zstd end, or fail with
// InvalidArgument (or ResourceExhausted at a cap), never another error and never a hang, and the
// source is closed either way; intact input decompresses to what was compressed.

failOnUnhandledRejections();

const ERRORS = [InvalidArgument, ResourceExhausted] as const;
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

async function outcome(run: () => Promise<Uint8Array>): Promise<Uint8Array | 'error'> {
  try {
    return await run();
  } catch (err) {
    if (expectedError(err, ERRORS)) return 'error';
    throw unexpected(err);
  }
}

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  // Runs compress well: long matches exercise back-references.
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 400 }))
    .map(([unit, n]) => concat(Array.from({ length: n }, () => unit))),
  fc.array(writeEntry, { maxLength: 3 }).map((entries) => collectBytes(writeTar(entries))),
);
const payloads = fc.array(payload, { minLength: 1, maxLength: 3 });
const maxBytes = fc.option(fc.nat({ max: 20_000 }), { freq: 3 });

describe('decompressStream: gzip', () => {
  it(
    'gzip members, damaged or not, decompress or fail with InvalidArgument/ResourceExhausted',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          payloads,
          fc.integer({ min: 0, max: 9 }),
          mutations,
          chunkSizes,
          maxBytes,
          async (parts, level, muts, sizes, max) => {
            const plain = concat(await Promise.all(parts));
            const members = await Promise.all(parts.map(async (p) => gzipSync(await p, { level })));
            const gz = mutate(concat(members), muts);
            const f = feed(gz, sizes);
            const result = await outcome(() =>
              collectBytes(decompressStream(f.source, max === null ? {} : { maxBytes: max })),
            );
            expect(f.closed).toBe(true);
            if (muts.length === 0) {
              if (max !== null && plain.length > max) expect(result).toBe('error');
              else expect(result === 'error' ? result : hex(result)).toBe(hex(plain));
            }
          },
        ),
        fuzzParams(200),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'random bytes after the gzip magic fail with InvalidArgument or decompress',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), chunkSizes, async (rest, sizes) => {
          const f = feed(concat([Uint8Array.from(GZIP_MAGIC), rest]), sizes);
          await outcome(() => collectBytes(decompressStream(f.source)));
          expect(f.closed).toBe(true);
        }),
        fuzzParams(300),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'gzipStream output decompresses back to its input',
    async () => {
      await fc.assert(
        fc.asyncProperty(payloads, chunkSizes, chunkSizes, async (parts, inSizes, outSizes) => {
          const plain = concat(await Promise.all(parts));
          const gz = await collectBytes(gzipStream(feed(plain, inSizes).source));
          expect(detectCompression(gz)).toBe('gzip');
          expect(hex(await collectBytes(decompressStream(feed(gz, outSizes).source)))).toBe(hex(plain));
        }),
        fuzzParams(50),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'a damaged gzipped tar read through readTar fails only with the documented classes',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(writeEntry, { maxLength: 4 }),
          mutations,
          chunkSizes,
          async (entries, muts, sizes) => {
            const gz = mutate(gzipSync(await collectBytes(writeTar(entries))), muts);
            const f = feed(gz, sizes);
            try {
              for await (const e of readTar(decompressStream(f.source))) await collectBytes(e.body);
            } catch (err) {
              if (!expectedError(err, ERRORS)) throw unexpected(err);
            }
            expect(f.closed).toBe(true);
          },
        ),
        fuzzParams(150),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

describe('decompressStream: plain', () => {
  it(
    'bytes without a magic pass through unchanged',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), chunkSizes, async (data, sizes) => {
          fc.pre(detectCompression(data) === 'none');
          expect(hex(await collectBytes(decompressStream(feed(data, sizes).source)))).toBe(hex(data));
        }),
        fuzzParams(200),
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

const hasZstdCli = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasZstdCli)('decompressStream: zstd', () => {
  // zstd frames made by the zstd CLI (spawning it per run would dominate the run time): payloads
  // of several shapes, with and without checksums, single and multi-frame, behind a skippable frame.
  const pool: Array<{ plain: Uint8Array; z: Uint8Array }> = [];
  beforeAll(() => {
    const zstd = (data: Uint8Array, args: string[]) =>
      new Uint8Array(execFileSync('zstd', ['-c', '-q', ...args], { input: data }));
    const samples = fc.sample(payload, { numRuns: 12, seed: 42 });
    const plains: Uint8Array[] = [];
    for (const s of samples) plains.push(s instanceof Uint8Array ? s : new Uint8Array(0));
    plains.push(new Uint8Array(200_000).fill(3), new Uint8Array(0));
    const skippable = Uint8Array.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    for (const [i, plain] of plains.entries()) {
      const args = [['-1'], ['-19'], ['--no-check'], ['-3', '--no-check']][i % 4]!;
      const z = zstd(plain, args);
      pool.push({ plain, z });
      pool.push({ plain: concat([plain, plain]), z: concat([z, skippable, zstd(plain, ['--no-check'])]) });
    }
  }, 60_000);

  const decoders: Array<'js' | 'zlib'> = hasNativeZstd() ? ['js', 'zlib'] : ['js'];
  for (const zstdDecoder of decoders) {
    it(
      `zstd frames, damaged or not, decompress or fail with InvalidArgument/ResourceExhausted (${zstdDecoder})`,
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.nat(), mutations, chunkSizes, maxBytes, async (pick, muts, sizes, max) => {
            const { plain, z } = pool[pick % pool.length]!;
            // Node's decoder stops after the first frame; the multi-frame samples are for the JS one.
            fc.pre(zstdDecoder === 'js' || pick % 2 === 0);
            const f = feed(mutate(z, muts), sizes);
            const result = await outcome(() =>
              collectBytes(
                decompressStream(f.source, {
                  zstdDecoder,
                  compression: 'zstd',
                  ...(max === null ? {} : { maxBytes: max }),
                }),
              ),
            );
            expect(f.closed).toBe(true);
            if (muts.length === 0) {
              if (max !== null && plain.length > max) expect(result).toBe('error');
              else expect(result === 'error' ? result : hex(result)).toBe(hex(plain));
            }
          }),
          fuzzParams(200),
        );
      },
      PROPERTY_TEST_TIMEOUT_MS,
    );

    it(
      `random bytes after the zstd magic fail with InvalidArgument/ResourceExhausted (${zstdDecoder})`,
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), chunkSizes, async (rest, sizes) => {
            const f = feed(concat([Uint8Array.from(ZSTD_MAGIC), rest]), sizes);
            await outcome(() => collectBytes(decompressStream(f.source, { zstdDecoder })));
            expect(f.closed).toBe(true);
          }),
          fuzzParams(300),
        );
      },
      PROPERTY_TEST_TIMEOUT_MS,
    );
  }

  // A defect these properties found, kept as a failing test until src/tar is fixed.
  it.fails('a zstd frame whose content checksum does not match is refused (js decoder)', async () => {
    // fzstd never checks the frame's XXH64 content checksum, so damaged data comes out as if it
    // were good (the zstd CLI says "Restored data doesn't match checksum"). Flipping a bit of the
    // checksum itself (the frame's last 4 bytes) leaves the data intact and shows it plainly.
    const plain = new Uint8Array(50_000).map((_, i) => (i * 31) % 97);
    const z = new Uint8Array(execFileSync('zstd', ['-c', '-q', '--check'], { input: plain }));
    z[z.length - 1] = z[z.length - 1]! ^ 0x01;
    await expect(
      collectBytes(decompressStream(feed(z, [4096]).source, { zstdDecoder: 'js' })),
    ).rejects.toThrow(InvalidArgument);
  });
});
