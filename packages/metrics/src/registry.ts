import { type Clock, systemClock } from './clock.js';
import { Counter } from './counter.js';
import { Gauge } from './gauge.js';
import { Histogram } from './histogram.js';
import { Meter } from './meter.js';
import { Timer } from './timer.js';

export type Metric = Counter | Gauge | Meter | Timer | Histogram;
export type MetricKind = Metric['kind'];

export interface MetricOptions {
  /** One line of help text, used by the Prometheus exporter. */
  help?: string;
}

export interface RegistryEntry {
  name: string;
  metric: Metric;
  help: string | undefined;
}

export interface RegistryOptions {
  clock?: Clock;
  /** Forward-decay factor per second for timers and histograms made here (0: all-time). */
  decay?: number;
}

/**
 * Metrics by name. The getters register on first use and return the same metric after, so callers
 * need no setup step; iteration keeps registration order, which is the order reports print in.
 */
export class Registry {
  readonly clock: Clock;
  readonly #decay: number | undefined;
  readonly #entries = new Map<string, RegistryEntry>();

  constructor(options: RegistryOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.#decay = options.decay;
  }

  counter(name: string, options?: MetricOptions): Counter {
    return this.#getOrRegister(name, 'counter', options, () => new Counter());
  }

  /** A gauge; with `read` its value is computed each time it is read. */
  gauge(name: string, read?: () => number, options?: MetricOptions): Gauge {
    return this.#getOrRegister(name, 'gauge', options, () => new Gauge(read));
  }

  meter(name: string, options?: MetricOptions): Meter {
    return this.#getOrRegister(name, 'meter', options, () => new Meter(this.clock));
  }

  timer(name: string, options?: MetricOptions): Timer {
    return this.#getOrRegister(
      name,
      'timer',
      options,
      () => new Timer({ clock: this.clock, decay: this.#decay }),
    );
  }

  histogram(name: string, options?: MetricOptions): Histogram {
    return this.#getOrRegister(
      name,
      'histogram',
      options,
      () => new Histogram({ clock: this.clock, decay: this.#decay }),
    );
  }

  /** Register a metric made elsewhere; fails if the name is taken. */
  register(name: string, metric: Metric, options?: MetricOptions): void {
    checkName(name);
    const existing = this.#entries.get(name);
    if (existing) {
      throw new Error(
        `metric "${name}": already registered as a ${existing.metric.kind}: unregister it first`,
      );
    }
    this.#entries.set(name, { name, metric, help: options?.help });
  }

  get(name: string): Metric | undefined {
    return this.#entries.get(name)?.metric;
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Returns whether the name was registered. */
  unregister(name: string): boolean {
    return this.#entries.delete(name);
  }

  get size(): number {
    return this.#entries.size;
  }

  entries(): IterableIterator<RegistryEntry> {
    return this.#entries.values();
  }

  [Symbol.iterator](): IterableIterator<RegistryEntry> {
    return this.#entries.values();
  }

  #getOrRegister<M extends Metric>(
    name: string,
    kind: M['kind'],
    options: MetricOptions | undefined,
    make: () => M,
  ): M {
    const existing = this.#entries.get(name);
    if (existing) {
      if (existing.metric.kind !== kind) {
        throw new Error(
          `metric "${name}": registered as a ${existing.metric.kind}, not a ${kind}: use another name`,
        );
      }
      if (options?.help && !existing.help) existing.help = options.help;
      return existing.metric as M;
    }
    checkName(name);
    const metric = make();
    this.#entries.set(name, { name, metric, help: options?.help });
    return metric;
  }
}

function checkName(name: string): void {
  if (name.length === 0 || name.length > 256 || /[\n\r]/.test(name)) {
    throw new Error(`metric name ${JSON.stringify(name)}: must be 1 to 256 characters without line breaks`);
  }
}
