// Node runs every request on one thread: a List that filters 20,000 containers in one go holds up
// every other call (Version included) for as long as it takes. Work over many objects therefore
// runs in slices of a few milliseconds with a turn of the event loop between them. The results and
// their order are the same as in one go; only other requests get their turn in between.

/** Length of a slice, in milliseconds. */
export const SLICE_MS = 5;

export interface SliceOptions {
  signal?: AbortSignal | undefined;
  /** Default SLICE_MS. */
  sliceMs?: number | undefined;
}

/** Tells when the current slice has run its time, and yields to the event loop. */
export class TimeSlice {
  private start = performance.now();

  constructor(private readonly ms = SLICE_MS) {}

  /** True once this slice has run its time; cheap enough to ask after every item. */
  get due(): boolean {
    return performance.now() - this.start >= this.ms;
  }

  /**
   * A turn of the event loop (setImmediate: pending I/O and timers run first), then a new slice.
   * Rejects with the signal's reason if it aborted meanwhile.
   */
  async yield(signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
    this.start = performance.now();
  }
}

/** `items.map(fn)`, in slices. */
export async function mapInSlices<T, U>(
  items: Iterable<T>,
  fn: (item: T) => U,
  opts: SliceOptions = {},
): Promise<U[]> {
  const slice = new TimeSlice(opts.sliceMs);
  const out: U[] = [];
  for (const item of items) {
    out.push(fn(item));
    if (slice.due) await slice.yield(opts.signal);
  }
  return out;
}

/** `items.filter(keep)`, in slices. */
export async function filterInSlices<T>(
  items: Iterable<T>,
  keep: (item: T) => boolean,
  opts: SliceOptions = {},
): Promise<T[]> {
  const slice = new TimeSlice(opts.sliceMs);
  const out: T[] = [];
  for (const item of items) {
    if (keep(item)) out.push(item);
    if (slice.due) await slice.yield(opts.signal);
  }
  return out;
}
