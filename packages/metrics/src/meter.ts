import { type Clock, systemClock } from './clock.js';
import { Ewma, ewmaAlpha, TICK_SECONDS } from './ewma.js';

const TICK_MS = TICK_SECONDS * 1000;

/** A point-in-time copy of a meter's values, so a report prints one consistent set. */
export interface MeterSnapshot {
  count: number;
  rate1: number;
  rate5: number;
  rate15: number;
  rateMean: number;
}

/**
 * Counts events and their 1/5/15-minute exponentially weighted rates and mean rate, per second. Ticks
 * lazily from the clock when marked or read, so it holds no timer and never keeps a process alive.
 */
export class Meter {
  readonly kind = 'meter';
  readonly #clock: Clock;
  readonly #m1 = new Ewma(ewmaAlpha(1));
  readonly #m5 = new Ewma(ewmaAlpha(5));
  readonly #m15 = new Ewma(ewmaAlpha(15));
  readonly #start: number;
  #lastTick: number;
  #count = 0;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
    this.#start = clock.now();
    this.#lastTick = this.#start;
  }

  mark(n = 1): void {
    this.#tickIfNecessary();
    this.#count += n;
    this.#m1.update(n);
    this.#m5.update(n);
    this.#m15.update(n);
  }

  count(): number {
    return this.#count;
  }

  rate1(): number {
    this.#tickIfNecessary();
    return this.#m1.rate();
  }

  rate5(): number {
    this.#tickIfNecessary();
    return this.#m5.rate();
  }

  rate15(): number {
    this.#tickIfNecessary();
    return this.#m15.rate();
  }

  rateMean(): number {
    const seconds = (this.#clock.now() - this.#start) / 1000;
    return seconds > 0 ? this.#count / seconds : 0;
  }

  snapshot(): MeterSnapshot {
    this.#tickIfNecessary();
    return {
      count: this.#count,
      rate1: this.#m1.rate(),
      rate5: this.#m5.rate(),
      rate15: this.#m15.rate(),
      rateMean: this.rateMean(),
    };
  }

  #tickIfNecessary(): void {
    const now = this.#clock.now();
    const age = now - this.#lastTick;
    if (age < TICK_MS) return;
    const ticks = Math.floor(age / TICK_MS);
    this.#lastTick += ticks * TICK_MS;
    this.#m1.tickMany(ticks);
    this.#m5.tickMany(ticks);
    this.#m15.tickMany(ticks);
  }
}
