import { describe, expect, test } from 'vitest';
import { Ewma, ewmaAlpha, ManualClock, Meter, Timer } from '../src/index.js';

describe('EWMA', () => {
  test('alpha is 1 - exp(-5/60/N)', () => {
    expect(ewmaAlpha(1)).toBeCloseTo(1 - Math.exp(-5 / 60), 15);
    expect(ewmaAlpha(5)).toBeCloseTo(1 - Math.exp(-5 / 300), 15);
    expect(ewmaAlpha(15)).toBeCloseTo(1 - Math.exp(-5 / 900), 15);
  });

  test('one-minute EWMA of 3 events decays to 0.6/e after a minute (Coda Hale reference values)', () => {
    const e = new Ewma(ewmaAlpha(1));
    e.update(3);
    e.tick();
    expect(e.rate()).toBeCloseTo(0.6, 12);
    for (let i = 0; i < 12; i++) e.tick();
    expect(e.rate()).toBeCloseTo(0.22072766, 8);
  });

  test('tickMany equals ticking one at a time', () => {
    const a = new Ewma(ewmaAlpha(5));
    const b = new Ewma(ewmaAlpha(5));
    a.update(7);
    b.update(7);
    a.tick();
    a.update(2);
    b.tick();
    b.update(2);
    for (let i = 0; i < 40; i++) a.tick();
    b.tickMany(40);
    expect(b.rate()).toBeCloseTo(a.rate(), 12);
  });
});

describe('Meter', () => {
  test('rates follow the clock: hand-computed after 5 s and after 65 s', () => {
    const clock = new ManualClock(1_000_000);
    const m = new Meter(clock);
    m.mark(3);
    expect(m.rate1()).toBe(0);
    clock.advance(5_000);
    expect(m.rate1()).toBeCloseTo(0.6, 12);
    expect(m.rate5()).toBeCloseTo(0.6, 12);
    expect(m.rate15()).toBeCloseTo(0.6, 12);
    clock.advance(60_000);
    // 12 idle ticks multiply each rate by exp(-60 s / N minutes).
    expect(m.rate1()).toBeCloseTo(0.6 * Math.exp(-1), 12);
    expect(m.rate5()).toBeCloseTo(0.6 * Math.exp(-1 / 5), 12);
    expect(m.rate15()).toBeCloseTo(0.6 * Math.exp(-1 / 15), 12);
    expect(m.rateMean()).toBeCloseTo(3 / 65, 12);
    expect(m.count()).toBe(3);
  });

  test('a steady 2 events/s converges to 2/s on every rate', () => {
    const clock = new ManualClock(0);
    const m = new Meter(clock);
    for (let s = 0; s < 3600; s++) {
      m.mark(2);
      clock.advance(1000);
    }
    const snap = m.snapshot();
    expect(snap.rate1).toBeCloseTo(2, 6);
    expect(snap.rate5).toBeCloseTo(2, 6);
    expect(snap.rate15).toBeCloseTo(2, 3);
    expect(snap.rateMean).toBeCloseTo(2, 12);
  });

  test('a meter idle for a century reads in O(1) and shows 0', () => {
    const clock = new ManualClock(0);
    const m = new Meter(clock);
    m.mark(100);
    clock.advance(100 * 365 * 24 * 3600 * 1000);
    const t0 = performance.now();
    expect(m.rate15()).toBe(0);
    // One 5 s tick at a time, 630 million of them, would take tens of seconds; a busy machine
    // may still stall the one closed-form step a little.
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('Timer', () => {
  test('time() records sync, async and failing calls in ns from the clock', async () => {
    const clock = new ManualClock(0);
    const t = new Timer({ clock, decay: 0 });
    expect(
      t.time(() => {
        clock.advance(2);
        return 'ok';
      }),
    ).toBe('ok');
    await expect(
      t.time(async () => {
        clock.advance(3);
        return 5;
      }),
    ).resolves.toBe(5);
    expect(() =>
      t.time(() => {
        clock.advance(1);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    const stop = t.start();
    clock.advance(4);
    expect(stop()).toBe(4_000_000);
    expect(stop()).toBe(4_000_000);
    const s = t.snapshot();
    expect(s.count).toBe(4);
    expect(s.min).toBe(1_000_000);
    expect(s.max).toBe(4_000_000);
    expect(s.sum).toBe(10_000_000);
    expect(s.mean).toBeCloseTo(2_500_000, 6);
    clock.advance(5_000);
    expect(t.snapshot().rate1).toBeCloseTo(4 / 5, 12);
  });
});
