/** Seconds between EWMA ticks, as in Coda Hale metrics and go-metrics. */
export const TICK_SECONDS = 5;

/** alpha for an N-minute moving average ticked every 5 s: 1 - exp(-5/60/N). */
export function ewmaAlpha(minutes: number): number {
  return 1 - Math.exp(-TICK_SECONDS / 60 / minutes);
}

/**
 * Exponentially weighted moving average of events per second. tick() is called by the owning Meter
 * every 5 s of its clock; the Meter catches up on missed ticks when read, so no timer is needed.
 */
export class Ewma {
  readonly alpha: number;
  #uncounted = 0;
  #rate = 0;
  #initialized = false;

  constructor(alpha: number) {
    this.alpha = alpha;
  }

  update(n: number): void {
    this.#uncounted += n;
  }

  tick(): void {
    const instant = this.#uncounted / TICK_SECONDS;
    this.#uncounted = 0;
    if (this.#initialized) {
      this.#rate += this.alpha * (instant - this.#rate);
    } else {
      this.#rate = instant;
      this.#initialized = true;
    }
  }

  /**
   * n ticks at once. After the first, idle ticks only decay the rate by (1 - alpha), so a meter read
   * after days idle costs O(1), not one step per 5 s.
   */
  tickMany(n: number): void {
    if (n <= 0) return;
    this.tick();
    if (n > 1) this.#rate *= (1 - this.alpha) ** (n - 1);
  }

  /** Events per second. */
  rate(): number {
    return this.#rate;
  }
}
