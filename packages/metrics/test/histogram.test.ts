import { describe, expect, test } from 'vitest';
import { Histogram, ManualClock, RELATIVE_ERROR } from '../src/index.js';

/** The value at rank ceil(q * n) of sorted data: the nearest-rank definition the histogram follows. */
function exactQuantile(sorted: number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

function shuffled(values: number[], seed = 42): number[] {
  const out = [...values];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const QS = [0.5, 0.75, 0.95, 0.99, 0.999];

function expectWithinError(h: Histogram, data: number[]): void {
  const sorted = [...data].sort((a, b) => a - b);
  const got = h.quantiles(QS);
  QS.forEach((q, i) => {
    const want = exactQuantile(sorted, q);
    // One bucket either side of the true rank is allowed for the bucket edge, plus the stated error.
    expect(Math.abs(got[i]! - want) / want, `q=${q} got ${got[i]} want ${want}`).toBeLessThanOrEqual(
      RELATIVE_ERROR * 1.0001,
    );
  });
}

describe('Histogram percentiles', () => {
  test('uniform 1..100000 within the stated relative error', () => {
    const data = shuffled(Array.from({ length: 100_000 }, (_, i) => i + 1));
    const h = new Histogram({ decay: 0 });
    for (const v of data) h.update(v);
    expectWithinError(h, data);
    const s = h.snapshot();
    expect(s.count).toBe(100_000);
    expect(s.min).toBe(1);
    expect(s.max).toBe(100_000);
    expect(s.mean).toBeCloseTo(50_000.5, 6);
    // Population stddev of 1..n is sqrt((n^2 - 1) / 12).
    expect(s.stddev).toBeCloseTo(Math.sqrt((100_000 ** 2 - 1) / 12), 3);
    expect(s.sum).toBe((100_000 * 100_001) / 2);
  });

  test('exponential durations in ns (mean 50 ms) within the stated relative error', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const data = Array.from({ length: 50_000 }, () => Math.round(-Math.log(1 - rand()) * 50e6) + 1);
    const h = new Histogram({ decay: 0 });
    for (const v of data) h.update(v);
    expectWithinError(h, data);
    const mean = data.reduce((a, b) => a + b, 0) / data.length;
    expect(h.mean()).toBeCloseTo(mean, 3);
  });

  test('a constant value reports exactly that value (clamped to min/max)', () => {
    const h = new Histogram({ decay: 0 });
    for (let i = 0; i < 10; i++) h.update(113077691);
    expect(h.quantiles(QS)).toEqual(QS.map(() => 113077691));
    expect(h.stddev()).toBe(0);
  });

  test('empty histogram reads zeros; negative values count as 0 and NaN is ignored', () => {
    const h = new Histogram();
    expect(h.snapshot()).toMatchObject({ count: 0, min: 0, max: 0, mean: 0, stddev: 0, median: 0, p999: 0 });
    h.update(-5);
    h.update(Number.NaN);
    h.update(Number.POSITIVE_INFINITY);
    expect(h.count()).toBe(1);
    expect(h.mean()).toBe(0);
    expect(h.quantiles([0.5])).toEqual([0]);
  });

  test('values beyond 2^64 land in the top bucket and report max', () => {
    const h = new Histogram({ decay: 0 });
    h.update(1e25);
    expect(h.quantiles([0.5])[0]).toBe(1e25);
  });
});

describe('Histogram decay', () => {
  test('recent samples dominate percentiles after minutes (alpha 0.015/s)', () => {
    const clock = new ManualClock(1_000_000);
    const h = new Histogram({ clock });
    for (let i = 0; i < 1000; i++) h.update(100);
    clock.advance(10 * 60_000);
    for (let i = 0; i < 100; i++) h.update(10_000);
    // 100 new samples weigh e^(0.015*600) ≈ 8103 times each old one: they are ~99.9% of the weight.
    const [median] = h.quantiles([0.5]);
    expect(Math.abs(median! - 10_000) / 10_000).toBeLessThanOrEqual(RELATIVE_ERROR);
    expect(h.mean()).toBeGreaterThan(9_900);
    // Lifetime values stay exact.
    expect(h.min()).toBe(100);
    expect(h.count()).toBe(1100);
  });

  test('rescales after an hour without losing the distribution', () => {
    const clock = new ManualClock(0);
    const h = new Histogram({ clock });
    for (let i = 1; i <= 1000; i++) h.update(i);
    for (let hour = 0; hour < 30; hour++) {
      clock.advance(3_601_000);
      for (let i = 1; i <= 1000; i++) h.update(i);
    }
    const [median] = h.quantiles([0.5]);
    expect(Math.abs(median! - 500) / 500).toBeLessThanOrEqual(RELATIVE_ERROR * 1.01);
    expect(Number.isFinite(h.mean())).toBe(true);
    expect(h.mean()).toBeCloseTo(500.5, 3);
  });
});
