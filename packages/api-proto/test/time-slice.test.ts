import { describe, expect, it } from 'vitest';
import { adaptObject, matchAll, matchAllSliced, parseFilters } from '../src/filters.js';
import { filterInSlices, mapInSlices, TimeSlice } from '../src/time-slice.js';

// Long lists are worked through in slices with a turn of the event loop between them: same
// results, same order, and other callbacks get to run meanwhile.

const busy = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
};

describe('time slices', () => {
  it('a slice is due after its time; yield lets other callbacks run first', async () => {
    const slice = new TimeSlice(2);
    expect(slice.due).toBe(false);
    busy(3);
    expect(slice.due).toBe(true);
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    await slice.yield();
    expect(ran).toBe(true);
    expect(slice.due).toBe(false);
  });

  it('map and filter keep results and order, and let a timer in while they run', async () => {
    const items = Array.from({ length: 200 }, (_, i) => i);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const mapped = await mapInSlices(
        items,
        (i) => {
          busy(0.1);
          return i * 2;
        },
        { sliceMs: 2 },
      );
      expect(mapped).toEqual(items.map((i) => i * 2));
      const kept = await filterInSlices(
        items,
        (i) => {
          busy(0.1);
          return i % 3 === 0;
        },
        { sliceMs: 2 },
      );
      expect(kept).toEqual(items.filter((i) => i % 3 === 0));
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(2);
  });

  it('an aborted signal stops the work at the next yield', async () => {
    const ac = new AbortController();
    ac.abort();
    const items = Array.from({ length: 100 }, (_, i) => i);
    await expect(
      mapInSlices(
        items,
        (i) => {
          busy(0.2);
          return i;
        },
        { sliceMs: 1, signal: ac.signal },
      ),
    ).rejects.toThrow(/abort/i);
  });

  it('matchAllSliced answers what matchAll does', async () => {
    const items = Array.from({ length: 3000 }, (_, i) => ({ id: `c${i}`, labels: { n: String(i % 7) } }));
    const adapt = (c: (typeof items)[number]) => adaptObject({ id: c.id }, { labels: c.labels });
    for (const filters of [[], ['labels.n==3'], ['id~=^c1[0-9]*$', 'labels.n!=0'], ['id~=9$,labels.n']]) {
      const f = parseFilters(filters);
      expect(await matchAllSliced(f, items, adapt, { sliceMs: 0 })).toEqual(matchAll(f, items, adapt));
    }
  });
});
