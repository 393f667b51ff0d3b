import type { DescMessage, MessageInitShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import type { Any, Timestamp } from '@bufbuild/protobuf/wkt';
import {
  envelopeAdaptor,
  type Filter,
  filterInSlices,
  InvalidArgument,
  isUnsetTimestamp,
  type Logger,
  nowTimestamp,
  packAny,
  parseFilters,
  ResourceExhausted,
  silentLogger,
  TimeSlice,
  timestampToNanos,
  validateIdentifier,
} from '@ctrd/api-proto';
import { type Envelope, EnvelopeSchema } from '@ctrd/api-proto/events';

// The event exchange: every publisher (daemon services, shims through Forward, clients through
// Publish) hands envelopes here; every subscriber gets all namespaces (containerd does not scope
// Subscribe) through its own bounded queue, so one slow reader never holds up the rest.

export interface ExchangeOptions {
  logger?: Logger | undefined;
  /** Envelopes a subscriber may have pending before it is cut off. */
  queueLimit?: number | undefined;
  /** Envelopes kept for EventHistory.Replay. */
  historyLimit?: number | undefined;
}

export interface ExchangeStats {
  published: number;
  subscribers: number;
  history: number;
}

interface Subscriber {
  filter: Filter;
  queue: Envelope[];
  wake: (() => void) | undefined;
  failed: Error | undefined;
  ended: boolean;
}

/** containerd's topic rule: starts with "/", each component an identifier. */
export function validateTopic(topic: string): void {
  if (topic === '') throw new InvalidArgument('topic: must not be empty');
  if (!topic.startsWith('/')) throw new InvalidArgument(`topic "${topic}": must start with "/"`);
  for (const part of topic.slice(1).split('/')) validateIdentifier(part, `topic "${topic}" component`);
}

export class Exchange {
  private readonly subscribers = new Set<Subscriber>();
  private readonly history: Envelope[] = [];
  private readonly log: Logger;
  private readonly queueLimit: number;
  private readonly historyLimit: number;
  private published = 0;

  constructor(opts: ExchangeOptions = {}) {
    this.log = opts.logger ?? silentLogger;
    this.queueLimit = opts.queueLimit ?? 4096;
    this.historyLimit = opts.historyLimit ?? 10_000;
  }

  stats(): ExchangeStats {
    return {
      published: this.published,
      subscribers: this.subscribers.size,
      history: Math.min(this.history.length, this.historyLimit),
    };
  }

  /** The last historyLimit envelopes (the array may hold a few more until its next trim). */
  private kept(): Envelope[] {
    const extra = this.history.length - this.historyLimit;
    return extra > 0 ? this.history.slice(extra) : this.history;
  }

  /** Daemon-side publishing of a typed payload (bare type URL, as containerd 1.6 clients need). */
  publishMessage<D extends DescMessage>(
    namespace: string,
    topic: string,
    schema: D,
    init: MessageInitShape<D>,
  ): void {
    this.publish(namespace, topic, packAny(schema, create(schema, init)));
  }

  /** Events.Publish: checks namespace and topic, stamps now. */
  publish(namespace: string, topic: string, event: Any | undefined): Envelope {
    validateIdentifier(namespace, 'namespace');
    validateTopic(topic);
    const env = create(EnvelopeSchema, { timestamp: nowTimestamp(), namespace, topic, event });
    this.broadcast(env);
    return env;
  }

  /** Events.Forward: the sender's envelope as is, after checking it. */
  forward(envelope: Envelope | undefined): void {
    if (!envelope) throw new InvalidArgument('envelope: must be set');
    validateIdentifier(envelope.namespace, 'envelope namespace');
    validateTopic(envelope.topic);
    if (isUnsetTimestamp(envelope.timestamp)) {
      throw new InvalidArgument(`envelope ${envelope.topic}: timestamp must be set`);
    }
    this.broadcast(envelope);
  }

  private broadcast(env: Envelope): void {
    this.published++;
    this.history.push(env);
    // Trimmed in steps of a quarter of the limit: a splice per event would move the whole array
    // each time.
    if (this.history.length > this.historyLimit + (this.historyLimit >> 2))
      this.history.splice(0, this.history.length - this.historyLimit);
    for (const sub of this.subscribers) this.offer(sub, env);
  }

  private offer(sub: Subscriber, env: Envelope): void {
    if (sub.failed) return;
    if (!sub.filter.match(envelopeAdaptor(env))) return;
    if (sub.queue.length >= this.queueLimit) {
      sub.failed = new ResourceExhausted(
        `event subscriber: more than ${this.queueLimit} events pending: read faster or filter more narrowly, then subscribe again`,
      );
      sub.queue.length = 0;
      this.log.warn({ limit: this.queueLimit }, 'event subscriber cut off: too slow');
    } else {
      sub.queue.push(env);
    }
    sub.wake?.();
  }

  /**
   * Live events matching `filters` (containerd's syntax; parse errors throw InvalidArgument before
   * anything is returned). Ends when `signal` aborts; throws ResourceExhausted when the reader lags.
   */
  subscribe(filters: readonly string[], signal?: AbortSignal): AsyncIterable<Envelope> {
    return this.stream(parseFilters(filters), undefined, signal);
  }

  /**
   * History at or after `since` (unset: all kept), then, with `follow`, live events. The history is
   * taken now (and the live subscription made now, so nothing falls between them) and filtered in
   * time slices as the stream starts: 10,000 envelopes, each decoded for `event.*` fields, would
   * otherwise hold up every other call.
   */
  replay(
    since: Timestamp | undefined,
    filters: readonly string[],
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<Envelope> {
    const filter = parseFilters(filters);
    const from = isUnsetTimestamp(since) ? undefined : timestampToNanos(since);
    const kept = [...this.kept()];
    const past = () =>
      filterInSlices(
        kept,
        (e) =>
          (from === undefined || timestampToNanos(e.timestamp) >= from) && filter.match(envelopeAdaptor(e)),
      );
    if (!follow) {
      return (async function* () {
        const slice = new TimeSlice();
        for (const e of await past()) {
          if (signal?.aborted) return;
          yield e;
          if (slice.due) await slice.yield();
        }
      })();
    }
    return this.stream(filter, past, signal);
  }

  private stream(
    filter: Filter,
    initial: (() => Promise<Envelope[]>) | undefined,
    signal?: AbortSignal,
  ): AsyncIterable<Envelope> {
    // Registered now, not on first next(), so nothing published after this call is missed.
    const sub: Subscriber = { filter, queue: [], wake: undefined, failed: undefined, ended: false };
    this.subscribers.add(sub);
    const subscribers = this.subscribers;
    const onAbort = (): void => sub.wake?.();
    signal?.addEventListener('abort', onAbort);
    return (async function* () {
      try {
        const slice = new TimeSlice();
        // An abort ends the stream quietly, as it always did (the checks below, not yield's).
        if (initial) {
          for (const e of await initial()) {
            if (signal?.aborted) return;
            yield e;
            if (slice.due) await slice.yield();
          }
        }
        for (;;) {
          if (signal?.aborted) return;
          const next = sub.queue.shift();
          if (next) {
            yield next;
            if (slice.due) await slice.yield();
            continue;
          }
          if (sub.failed) throw sub.failed;
          if (sub.ended) return;
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
          });
          sub.wake = undefined;
        }
      } finally {
        subscribers.delete(sub);
        signal?.removeEventListener('abort', onAbort);
      }
    })();
  }

  /** Ends every subscription (daemon shutdown). */
  close(): void {
    for (const sub of this.subscribers) {
      sub.ended = true;
      sub.wake?.();
    }
  }
}
