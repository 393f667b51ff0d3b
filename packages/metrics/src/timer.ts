import { type Clock, systemClock } from './clock.js';
import { Histogram, type HistogramSnapshot } from './histogram.js';
import { Meter, type MeterSnapshot } from './meter.js';

export interface TimerOptions {
  clock?: Clock;
  /** Forward-decay factor per second for the distribution; 0 keeps all-time percentiles. */
  decay?: number;
}

/** Everything a report prints for a timer, in nanoseconds and events per second. */
export interface TimerSnapshot extends HistogramSnapshot, MeterSnapshot {}

/**
 * Durations in nanoseconds: a Meter for the rate of events plus a Histogram for their distribution.
 */
export class Timer {
  readonly kind = 'timer';
  readonly #clock: Clock;
  readonly #meter: Meter;
  readonly #histogram: Histogram;

  constructor(options: TimerOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#meter = new Meter(this.#clock);
    this.#histogram = new Histogram({ clock: this.#clock, decay: options.decay });
  }

  /** Record one duration in nanoseconds. */
  update(ns: number): void {
    this.#histogram.update(ns);
    this.#meter.mark(1);
  }

  /** Record the time since `startMs` (a clock reading), e.g. from a request's arrival. */
  updateSince(startMs: number): void {
    this.update(Math.round((this.#clock.now() - startMs) * 1e6));
  }

  /** Start timing; the returned function records and returns the elapsed nanoseconds. */
  start(): () => number {
    const t0 = this.#clock.now();
    let done = false;
    return () => {
      const ns = Math.round((this.#clock.now() - t0) * 1e6);
      if (!done) {
        done = true;
        this.update(ns);
      }
      return ns;
    };
  }

  /** Time a function, sync or async; failures are timed too. */
  time<T>(fn: () => T): T {
    const stop = this.start();
    let result: T;
    try {
      result = fn();
    } catch (err) {
      stop();
      throw err;
    }
    if (result instanceof Promise) {
      return result.finally(stop) as T;
    }
    stop();
    return result;
  }

  count(): number {
    return this.#histogram.count();
  }

  histogram(): Histogram {
    return this.#histogram;
  }

  meter(): Meter {
    return this.#meter;
  }

  snapshot(): TimerSnapshot {
    return { ...this.#meter.snapshot(), ...this.#histogram.snapshot() };
  }
}
