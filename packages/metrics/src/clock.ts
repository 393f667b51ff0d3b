import { performance } from 'node:perf_hooks';

/** Where metrics read the time. Milliseconds since the epoch, fractional for sub-millisecond timing. */
export interface Clock {
  now(): number;
}

/** The wall clock with performance.now()'s resolution, so short timers still measure in microseconds. */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};

/** A clock that only moves when told to: makes rates and decay deterministic in tests. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(startMs = 0) {
    this.#ms = startMs;
  }

  now(): number {
    return this.#ms;
  }

  advance(ms: number): void {
    this.#ms += ms;
  }

  set(ms: number): void {
    this.#ms = ms;
  }
}
