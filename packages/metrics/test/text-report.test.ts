import { describe, expect, test } from 'vitest';
import {
  formatTextReport,
  ManualClock,
  Registry,
  RELATIVE_ERROR,
  registerProcessGauges,
  startTextReporter,
} from '../src/index.js';

const DATE = new Date(Date.UTC(2015, 11, 16, 11, 48, 28));

describe('text report', () => {
  test('counters and gauges print exactly like the seed report', () => {
    const r = new Registry();
    r.counter('containers').inc();
    r.counter('events').inc(87);
    r.counter('events-subscribers').inc(2);
    r.gauge('goroutines', () => 38);
    r.gauge('fds').update(18);
    const text = formatTextReport(r, { prefix: '[containerd]', date: DATE, utc: true });
    expect(text).toBe(
      [
        '[containerd] 2015/12/16 11:48:28 counter containers',
        '[containerd] 2015/12/16 11:48:28   count:               1',
        '[containerd] 2015/12/16 11:48:28 counter events',
        '[containerd] 2015/12/16 11:48:28   count:              87',
        '[containerd] 2015/12/16 11:48:28 counter events-subscribers',
        '[containerd] 2015/12/16 11:48:28   count:               2',
        '[containerd] 2015/12/16 11:48:28 gauge goroutines',
        '[containerd] 2015/12/16 11:48:28   value:              38',
        '[containerd] 2015/12/16 11:48:28 gauge fds',
        '[containerd] 2015/12/16 11:48:28   value:              18',
        '',
      ].join('\n'),
    );
  });

  test('a timer block has the seed lines, right-aligned, times in ns', () => {
    const clock = new ManualClock(DATE.getTime());
    const r = new Registry({ clock, decay: 0 });
    const t = r.timer('container-start-time');
    const values = [25425883, 113077691, 65489003, 60000000];
    for (const v of values) t.update(v);
    clock.advance(5_000);
    const lines = formatTextReport(r, { date: DATE, utc: true }).trimEnd().split('\n');
    const head = '[ctrd] 2015/12/16 11:48:28 ';
    expect(lines.map((l) => l.slice(0, head.length))).toEqual(lines.map(() => head));
    const body = lines.map((l) => l.slice(head.length));
    expect(body[0]).toBe('timer container-start-time');
    expect(body[1]).toBe('  count:               4');
    expect(body[2]).toBe('  min:          25425883');
    expect(body[3]).toBe('  max:         113077691');
    const mean = values.reduce((a, b) => a + b) / values.length;
    expect(body[4]).toBe(`  mean:        ${mean.toFixed(2).padStart(12)}`);
    const labels = ['median:', '75%:', '95%:', '99%:', '99.9%:'];
    labels.forEach((label, i) => {
      const line = body[6 + i]!;
      expect(line.slice(0, 15)).toBe(`  ${label.padEnd(13)}`);
      expect(line).toMatch(/^ {2}\S+ +\d+\.\d\d$/);
      expect(line.length).toBe(27);
    });
    // Nearest-rank median of the 4 values is 60000000.
    const median = Number(body[6]!.trim().split(/\s+/)[1]);
    expect(Math.abs(median - 60_000_000) / 60_000_000).toBeLessThanOrEqual(RELATIVE_ERROR);
    const p999 = Number(body[10]!.trim().split(/\s+/)[1]);
    expect(Math.abs(p999 - 113077691) / 113077691).toBeLessThanOrEqual(RELATIVE_ERROR);
    expect(body[11]).toBe('  1-min rate:          0.80');
    expect(body[12]).toBe('  5-min rate:          0.80');
    expect(body[13]).toBe('  15-min rate:         0.80');
    expect(body[14]).toBe('  mean rate:           0.80');
    expect(body).toHaveLength(15);
  });

  test('meters print count and rates; an empty prefix drops the tag', () => {
    const clock = new ManualClock(0);
    const r = new Registry({ clock });
    r.meter('events').mark(10);
    clock.advance(10_000);
    expect(formatTextReport(r, { prefix: '', date: DATE, utc: true })).toBe(
      [
        '2015/12/16 11:48:28 meter events',
        '2015/12/16 11:48:28   count:              10',
        '2015/12/16 11:48:28   1-min rate:          1.84',
        '2015/12/16 11:48:28   5-min rate:          1.97',
        '2015/12/16 11:48:28   15-min rate:         1.99',
        '2015/12/16 11:48:28   mean rate:           1.00',
        '',
      ].join('\n'),
    );
  });

  test('a broken gauge callback prints NaN instead of breaking the report', () => {
    const r = new Registry();
    r.gauge('heap', () => {
      throw new Error('no');
    });
    expect(formatTextReport(r, { date: DATE, utc: true })).toMatch(
      /\n\[ctrd\] 2015\/12\/16 11:48:28 {3}value: +NaN\n/,
    );
  });

  test('periodic reporter writes every interval until stopped; interval 0 disables', async () => {
    const r = new Registry();
    r.counter('containers').inc(3);
    const chunks: string[] = [];
    const rep = startTextReporter({
      registry: r,
      out: { write: (c: string) => chunks.push(c) },
      intervalMs: 20,
    });
    await expect.poll(() => chunks.length).toBeGreaterThanOrEqual(2);
    rep.stop();
    const n = chunks.length;
    expect(chunks[0]).toMatch(/^\[ctrd\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d counter containers\n/);
    await new Promise((res) => setTimeout(res, 60));
    expect(chunks.length).toBe(n);

    const off: string[] = [];
    const idle = startTextReporter({
      registry: r,
      out: { write: (c: string) => off.push(c) },
      intervalMs: 0,
    });
    await new Promise((res) => setTimeout(res, 50));
    expect(off).toEqual([]);
    idle.report();
    expect(off).toHaveLength(1);
    idle.stop();
  });
});

describe('Registry', () => {
  test('get-or-register by name, iterate in order, unregister', () => {
    const r = new Registry();
    const c = r.counter('a');
    expect(r.counter('a')).toBe(c);
    r.timer('b');
    r.gauge('c');
    expect([...r].map((e) => `${e.name}:${e.metric.kind}`)).toEqual(['a:counter', 'b:timer', 'c:gauge']);
    expect(() => r.timer('a')).toThrow('metric "a": registered as a counter, not a timer: use another name');
    expect(r.unregister('a')).toBe(true);
    expect(r.unregister('a')).toBe(false);
    expect(r.get('a')).toBeUndefined();
    expect(r.size).toBe(2);
    expect(() => r.register('b', r.counter('x'))).toThrow(/already registered/);
    expect(() => r.counter('')).toThrow(/must be 1 to 256/);
  });

  test('process gauges read live values', () => {
    const r = new Registry();
    registerProcessGauges(r);
    const value = (name: string): number => {
      const m = r.get(name);
      if (m?.kind !== 'gauge') throw new Error(`${name} is not a gauge`);
      return m.value();
    };
    expect(value('fds')).toBeGreaterThan(2);
    expect(value('heap-used-bytes')).toBeGreaterThan(1_000_000);
    expect(value('rss-bytes')).toBeGreaterThan(value('heap-used-bytes'));
    expect(value('event-loop-handles')).toBeGreaterThanOrEqual(0);
    expect(formatTextReport(r)).toMatch(/gauge fds\n.* {3}value: +\d+\n/);
  });

  test('a computed gauge cannot be set', () => {
    const r = new Registry();
    expect(() => r.gauge('g', () => 1).update(2)).toThrow(/computed by its callback/);
  });
});
