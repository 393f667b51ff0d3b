import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ResourceExhausted } from '../src/errors.js';
import { decompressStream, gzipStream, readTar } from '../src/tar.js';
import { collectBytes, END, rawHeader } from './tar-fuzz-support.js';

// Decompression bombs read with bounded memory: 1 GiB of zeros from about 1 MiB of gzip (or a
// few KB of zstd), generated as a stream and consumed without being kept; resident memory may
// grow by the decoders' buffers, not by the output.

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Most the resident set may grow while 1 GiB goes through. */
const MAX_RSS_GROWTH = 64 * MiB;

async function* zeros(total: number, chunk = MiB): AsyncGenerator<Uint8Array> {
  const block = new Uint8Array(chunk);
  for (let left = total; left > 0; left -= chunk) yield left >= chunk ? block : block.subarray(0, left);
}

function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  return collectBytes(
    gzipStream(
      (async function* () {
        yield bytes;
      })(),
    ),
  );
}

async function* repeat(parts: readonly Uint8Array[], times: number, after: readonly Uint8Array[] = []) {
  for (let i = 0; i < times; i++) yield* parts;
  yield* after;
}

/** Runs `consume`, sampling the resident set every few ms; returns its result and the peak growth. */
async function measured<T>(
  consume: (sample: () => void) => Promise<T>,
): Promise<{ result: T; growth: number }> {
  const base = process.memoryUsage.rss();
  let peak = base;
  let last = 0;
  const sample = () => {
    const now = performance.now();
    if (now - last < 5) return;
    last = now;
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const result = await consume(sample);
  sample();
  return { result, growth: peak - base };
}

describe('decompression bombs', () => {
  // One member of 64 MiB of zeros (about 64 KB); gzip members concatenate, so 16 make 1 GiB.
  let zeroMember: Promise<Uint8Array> | undefined;
  const member = () => {
    zeroMember ??= collectBytes(gzipStream(zeros(64 * MiB)));
    return zeroMember;
  };

  it('a gzipped tar holding a 1 GiB file of zeros is read with bounded memory', async () => {
    const zeroMember = await member();
    const header = await gzip(rawHeader({ typeflag: '0', size: GiB, name: 'bomb' }));
    const end = await gzip(END);
    let compressed = 0;
    const source = (async function* () {
      for await (const c of repeat([zeroMember], 16, [end])) {
        compressed += c.length;
        yield c;
      }
    })();
    const started = performance.now();
    const { result, growth } = await measured(async (sample) => {
      const seen: Array<{ name: string; size: number; read: number }> = [];
      const blob = (async function* () {
        yield header;
        yield* source;
      })();
      for await (const e of readTar(decompressStream(blob))) {
        let read = 0;
        for await (const c of e.body) {
          read += c.length;
          sample();
        }
        seen.push({ name: e.name, size: e.size, read });
      }
      return seen;
    });
    const ms = performance.now() - started;
    expect(result).toEqual([{ name: 'bomb', size: GiB, read: GiB }]);
    expect(compressed).toBeLessThan(2 * MiB);
    expect(growth).toBeLessThan(MAX_RSS_GROWTH);
    console.log(
      `gzip bomb: 1 GiB from ${(compressed / MiB).toFixed(2)} MiB in ${ms.toFixed(0)} ms, rss +${(growth / MiB).toFixed(1)} MiB`,
    );
  }, 120_000);

  it('maxBytes stops the same bomb early, and closes the source', async () => {
    const zeroMember = await member();
    let closed = false;
    let pulled = 0;
    const source = (async function* () {
      try {
        for await (const c of repeat([zeroMember], 16)) {
          pulled++;
          yield c;
        }
      } finally {
        closed = true;
      }
    })();
    // The daemon's cap for a compressed layer of this size would be 200 times it (2 GiB at least).
    await expect(collectBytes(decompressStream(source, { maxBytes: 100 * MiB }))).rejects.toBeInstanceOf(
      ResourceExhausted,
    );
    expect(closed).toBe(true);
    expect(pulled).toBeLessThanOrEqual(3);
  }, 60_000);

  const hasZstdCli = (() => {
    try {
      execFileSync('zstd', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasZstdCli)(
    '256 MiB of zeros as zstd frames goes through the JS decoder with bounded memory',
    async () => {
      // 8 MiB frames (an 8 MiB window each, which the JS decoder allocates per frame), 32 of
      // them: memory is per frame, so more frames would only take longer.
      const frame = new Uint8Array(
        execFileSync('zstd', ['-c', '-q', '-3'], { input: new Uint8Array(8 * MiB) }),
      );
      const started = performance.now();
      const { result, growth } = await measured(async (sample) => {
        let n = 0;
        for await (const c of decompressStream(repeat([frame], 32), { zstdDecoder: 'js' })) {
          n += c.length;
          sample();
        }
        return n;
      });
      const ms = performance.now() - started;
      expect(result).toBe(256 * MiB);
      expect(growth).toBeLessThan(MAX_RSS_GROWTH);
      console.log(
        `zstd bomb: 256 MiB from ${((frame.length * 32) / 1024).toFixed(1)} KiB in ${ms.toFixed(0)} ms, rss +${(growth / MiB).toFixed(1)} MiB`,
      );
    },
    120_000,
  );
});
