import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

// Event-loop delay over the last complete window (the current one until the first closes), so
// the figure follows load instead of averaging the daemon's whole life. libuv does the sampling;
// our only timer closes windows and is unref'd.

export interface LoopDelayFigures {
  meanNs: number;
  p99Ns: number;
}

export class LoopDelay {
  readonly #resolutionMs: number;
  readonly #windowMs: number;
  readonly #histogram: IntervalHistogram;
  #last: LoopDelayFigures | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { resolutionMs?: number; windowMs?: number } = {}) {
    this.#resolutionMs = opts.resolutionMs ?? 20;
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#histogram = monitorEventLoopDelay({ resolution: this.#resolutionMs });
  }

  start(): void {
    if (this.#timer) return;
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      if (this.#histogram.count > 0) this.#last = this.#read();
      this.#histogram.reset();
    }, this.#windowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram.disable();
  }

  figures(): LoopDelayFigures {
    if (this.#last) return this.#last;
    return this.#histogram.count > 0 ? this.#read() : { meanNs: 0, p99Ns: 0 };
  }

  #read(): LoopDelayFigures {
    // Node records the whole interval between samples: take the sampling interval off.
    const base = this.#resolutionMs * 1e6;
    return {
      meanNs: Math.max(0, Math.round(this.#histogram.mean - base)),
      p99Ns: Math.max(0, this.#histogram.percentile(99) - base),
    };
  }
}
