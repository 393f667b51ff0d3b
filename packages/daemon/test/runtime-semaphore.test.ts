import { describe, expect, it } from 'vitest';
import { Semaphore } from '../src/runtime/semaphore.js';

describe('Semaphore (the concurrency setting)', () => {
  it('never runs more than its limit at once and runs everything', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        sem.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return i;
        }),
      ),
    );
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(peak).toBe(2);
  });

  it('a failing operation frees its slot; an aborted waiter leaves the queue', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    let release: () => void = () => {};
    const holder = sem.run(() => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    const waiter = sem.run(async () => 'ran', ac.signal);
    ac.abort(new Error('gave up'));
    await expect(waiter).rejects.toThrow('gave up');
    release();
    await holder;
    expect(await sem.run(async () => 'next')).toBe('next');
  });
});
