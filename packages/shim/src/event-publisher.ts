import type { Logger } from './logger.js';

// Task events go to the daemon with Events.Forward. The daemon may be down (restarting, killed), and
// an exit must not be lost meanwhile: events wait in one bounded FIFO and are sent in order, one at a
// time, retrying with backoff until the daemon answers. When the queue is full the oldest event is
// dropped and counted: an unbounded queue would let a long daemon outage eat the shim's memory.

export interface QueuedEvent {
  namespace: string;
  topic: string;
  /** Bare type URL and encoded payload (see @ctrd/api-proto packAny). */
  typeUrl: string;
  value: Uint8Array;
  /** When it happened; sent as the envelope timestamp. */
  timestamp: Date;
}

/** Sends one event; throws to ask for a retry (see isPermanent). */
export type Forwarder = (event: QueuedEvent, signal: AbortSignal) => Promise<void>;

export interface EventPublisherOptions {
  forward: Forwarder;
  /** Queue bound (default 10000). */
  maxQueue?: number;
  /** First and largest retry delay in ms (defaults 100 and 5000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Errors for which retrying is pointless (the daemon refused the event itself). Such an event is
   * dropped after maxAttempts tries; all other errors are retried for as long as it takes.
   */
  isPermanent?: (e: unknown) => boolean;
  maxAttempts?: number;
  logger?: Logger | undefined;
}

/** How long a publish from idle waits before sending (see publish). */
const FIRST_SEND_DELAY_MS = 2;

export class EventPublisher {
  private queue: QueuedEvent[] = [];
  private head = 0;
  private running = false;
  private closed = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private drainedWaiters: Array<() => void> = [];
  /** Events dropped because the queue was full or the daemon refused them. */
  dropped = 0;
  /** Events the daemon accepted. */
  sent = 0;

  constructor(private readonly opts: EventPublisherOptions) {}

  get pending(): number {
    return this.queue.length - this.head;
  }

  publish(event: QueuedEvent): void {
    if (this.closed) return;
    const max = this.opts.maxQueue ?? 10_000;
    if (this.pending >= max) {
      this.head++;
      this.dropped++;
      this.opts.logger?.warn({ dropped: this.dropped }, 'event queue full: dropped the oldest event');
    }
    this.queue.push(event);
    this.compact();
    if (!this.running) {
      this.running = true;
      // A task call publishes its event just before it answers. Sent at once, the event reached the
      // daemon between the answer's data and its trailers (HTTP/2 sends those a loop turn apart),
      // and the daemon handled it before it could answer its own client: ~2.5 ms of each Create
      // and Start at C=1. A short pause lets the whole answer go first; events keep their order.
      setTimeout(() => void this.run(), FIRST_SEND_DELAY_MS);
    }
  }

  /** Resolves once every queued event was sent or dropped (or the publisher closed). */
  drained(signal?: AbortSignal): Promise<void> {
    if (this.pending === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.drainedWaiters = this.drainedWaiters.filter((w) => w !== done);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.drainedWaiters.push(done);
    });
  }

  /** Retries now instead of waiting out the backoff (e.g. the daemon is known to be back). */
  kick(): void {
    this.wake?.();
  }

  /** Stops sending; what is still queued is abandoned. */
  close(): void {
    this.closed = true;
    this.abort.abort();
    this.wake?.();
    this.notifyDrained();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private notifyDrained(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const w of waiters) w();
  }

  private async run(): Promise<void> {
    const minDelay = this.opts.minBackoffMs ?? 100;
    const maxDelay = this.opts.maxBackoffMs ?? 5000;
    const maxAttempts = this.opts.maxAttempts ?? 5;
    let attempt = 0;
    let delay = minDelay;
    try {
      while (!this.closed && this.pending > 0) {
        const event = this.queue[this.head] as QueuedEvent;
        try {
          await this.opts.forward(event, this.abort.signal);
          if (this.queue[this.head] === event) {
            this.head++;
            this.sent++;
          }
          attempt = 0;
          delay = minDelay;
          continue;
        } catch (e) {
          if (this.closed) break;
          attempt++;
          if (this.opts.isPermanent?.(e) && attempt >= maxAttempts) {
            this.opts.logger?.error({ err: e, topic: event.topic }, 'daemon refused event: dropped');
            if (this.queue[this.head] === event) {
              this.head++;
              this.dropped++;
            }
            attempt = 0;
            delay = minDelay;
            continue;
          }
          if (attempt === 1)
            this.opts.logger?.warn({ err: e, topic: event.topic }, 'forward event failed: retrying');
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
        delay = Math.min(delay * 2, maxDelay);
      }
    } finally {
      this.running = false;
      if (this.pending === 0) {
        this.queue = [];
        this.head = 0;
      }
      this.notifyDrained();
    }
  }
}
