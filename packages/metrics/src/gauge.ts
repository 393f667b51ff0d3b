/**
 * A value set by the caller, or computed when read (open fds, heap) so a report never shows a stale
 * sample and nothing polls in between.
 */
export class Gauge {
  readonly kind = 'gauge';
  #value = 0;
  readonly #read: (() => number) | undefined;

  constructor(read?: () => number) {
    this.#read = read;
  }

  update(value: number): void {
    if (this.#read) throw new Error('gauge: it is computed by its callback and cannot be set');
    this.#value = value;
  }

  value(): number {
    if (!this.#read) return this.#value;
    // A failing callback must not break the whole report.
    try {
      const v = this.#read();
      return Number.isFinite(v) ? v : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }
}
