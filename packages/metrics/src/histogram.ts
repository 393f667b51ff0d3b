import { type Clock, systemClock } from './clock.js';

/** Linear sub-buckets per power of two. 128 bounds the relative error of a percentile at 1/256. */
export const SUB_BUCKETS = 128;
/** The largest relative error of a reported percentile against the true sample value: 1/256 ≈ 0.39%. */
export const RELATIVE_ERROR = 1 / (2 * SUB_BUCKETS);
/** Coda Hale's decay factor for its exponentially decaying reservoir: biases toward the last ~5 minutes. */
export const DEFAULT_DECAY = 0.015;
/** Powers of two covered: values up to 2^64 (584 years in ns); larger values land in the top bucket. */
const OCTAVES = 64;
/** Rescale weights once an hour, as Coda Hale does, long before exp() could overflow. */
const RESCALE_SECONDS = 3600;

export interface HistogramOptions {
  clock?: Clock;
  /** Forward-decay factor per second; 0 keeps an all-time distribution. */
  decay?: number;
}

export interface HistogramSnapshot {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  median: number;
  p75: number;
  p95: number;
  p99: number;
  p999: number;
}

/**
 * A log-linear histogram with forward exponential decay. Memory is bounded (at most 64 x 128 weights,
 * allocated one power of two at a time as values reach it), an update is O(1), and each percentile is
 * within RELATIVE_ERROR of a recorded value. Samples weigh exp(decay * age) like Coda Hale's decaying
 * reservoir, so mean, stddev and percentiles follow recent behaviour; count, sum, min and max are exact
 * over the histogram's lifetime. Values are non-negative; values below 1 are counted as 0, so record
 * integers such as nanoseconds or bytes. NaN and infinities are ignored.
 */
export class Histogram {
  readonly kind = 'histogram';
  readonly #clock: Clock;
  readonly #decay: number;
  readonly #octaves: (Float64Array | undefined)[] = new Array(OCTAVES);
  #zero = 0;
  #landmark: number;
  #weight = 0;
  #mean = 0;
  #m2 = 0;
  #count = 0;
  #sum = 0;
  #min = 0;
  #max = 0;

  constructor(options: HistogramOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#decay = options.decay ?? DEFAULT_DECAY;
    this.#landmark = this.#clock.now() / 1000;
  }

  update(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(0, value);
    if (this.#count === 0 || v < this.#min) this.#min = v;
    if (this.#count === 0 || v > this.#max) this.#max = v;
    this.#count++;
    this.#sum += v;

    let w = 1;
    if (this.#decay > 0) {
      const now = this.#clock.now() / 1000;
      if (now - this.#landmark > RESCALE_SECONDS) this.#rescale(now);
      w = Math.exp(this.#decay * (now - this.#landmark));
    }
    this.#add(v, w);
    // Weighted Welford (West 1979): numerically stable for large ns values with small spread.
    this.#weight += w;
    const delta = v - this.#mean;
    this.#mean += (w / this.#weight) * delta;
    this.#m2 += w * delta * (v - this.#mean);
  }

  count(): number {
    return this.#count;
  }

  sum(): number {
    return this.#sum;
  }

  min(): number {
    return this.#min;
  }

  max(): number {
    return this.#max;
  }

  mean(): number {
    return this.#weight > 0 ? this.#mean : 0;
  }

  stddev(): number {
    return this.#weight > 0 ? Math.sqrt(Math.max(0, this.#m2 / this.#weight)) : 0;
  }

  /** Values at quantiles q in [0, 1]; one pass over the buckets for all of them. */
  quantiles(qs: readonly number[]): number[] {
    const out = qs.map(() => 0);
    if (this.#count === 0 || this.#weight <= 0) return out;
    const order = qs.map((q, i) => ({ i, target: Math.min(1, Math.max(0, q)) * this.#weight }));
    order.sort((a, b) => a.target - b.target);
    const slack = this.#weight * 1e-12;
    let k = 0;
    let seen = this.#zero;
    const clamp = (v: number): number => Math.min(this.#max, Math.max(this.#min, v));
    while (k < order.length && this.#zero > 0 && seen + slack >= order[k]!.target) {
      out[order[k]!.i] = clamp(0);
      k++;
    }
    for (let e = 0; e < OCTAVES && k < order.length; e++) {
      const oct = this.#octaves[e];
      if (!oct) continue;
      const base = 2 ** e;
      for (let s = 0; s < SUB_BUCKETS && k < order.length; s++) {
        const w = oct[s]!;
        if (w === 0) continue;
        seen += w;
        while (k < order.length && seen + slack >= order[k]!.target) {
          out[order[k]!.i] = clamp(base * (1 + (s + 0.5) / SUB_BUCKETS));
          k++;
        }
      }
    }
    for (; k < order.length; k++) out[order[k]!.i] = this.#max;
    return out;
  }

  snapshot(): HistogramSnapshot {
    const [median = 0, p75 = 0, p95 = 0, p99 = 0, p999 = 0] = this.quantiles([0.5, 0.75, 0.95, 0.99, 0.999]);
    return {
      count: this.#count,
      sum: this.#sum,
      min: this.#min,
      max: this.#max,
      mean: this.mean(),
      stddev: this.stddev(),
      median,
      p75,
      p95,
      p99,
      p999,
    };
  }

  #add(v: number, w: number): void {
    if (v < 1) {
      this.#zero += w;
      return;
    }
    let e = Math.floor(Math.log2(v));
    // log2 can be off by one ulp right at powers of two.
    if (2 ** e > v) e--;
    else if (2 ** (e + 1) <= v) e++;
    let s: number;
    if (e >= OCTAVES) {
      e = OCTAVES - 1;
      s = SUB_BUCKETS - 1;
    } else {
      s = Math.min(SUB_BUCKETS - 1, Math.floor((v / 2 ** e - 1) * SUB_BUCKETS));
    }
    let oct = this.#octaves[e];
    if (!oct) {
      oct = new Float64Array(SUB_BUCKETS);
      this.#octaves[e] = oct;
    }
    oct[s]! += w;
  }

  #rescale(now: number): void {
    const f = Math.exp(-this.#decay * (now - this.#landmark));
    this.#landmark = now;
    this.#zero *= f;
    this.#weight *= f;
    this.#m2 *= f;
    for (const oct of this.#octaves) {
      if (!oct) continue;
      for (let s = 0; s < SUB_BUCKETS; s++) oct[s]! *= f;
    }
  }
}
