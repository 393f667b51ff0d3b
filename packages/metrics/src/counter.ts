/** A count that goes up and down (containers, subscribers). Exported to Prometheus as `<name>_total`. */
export class Counter {
  readonly kind = 'counter';
  #count = 0;

  inc(n = 1): void {
    this.#count += n;
  }

  dec(n = 1): void {
    this.#count -= n;
  }

  count(): number {
    return this.#count;
  }

  clear(): void {
    this.#count = 0;
  }
}
