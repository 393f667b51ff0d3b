import { createConnection, type Socket } from 'node:net';
import { type Clock, systemClock } from './clock.js';
import { type Logger, silentLogger } from './logger.js';
import type { Registry, RegistryEntry } from './registry.js';

export interface GraphiteOptions {
  registry: Registry;
  /** "host:port" ("[::1]:2003" for IPv6) or { host, port }. */
  address: string | { host: string; port: number };
  /** Prepended to every path, e.g. "ctrd.host1". */
  prefix?: string;
  /** Milliseconds between flushes; 0 flushes only when flush() is called. Default 60 000. */
  intervalMs?: number;
  /** Unsent data kept while the server is away; the oldest batches are dropped beyond it. Default 1 MiB. */
  maxBufferBytes?: number;
  /** First reconnect delay, doubled per failure up to maxBackoffMs. Defaults 100 ms and 30 s. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Graphite paths allow dots as separators; anything else outside [A-Za-z0-9_-] becomes '_'. */
export function sanitizeGraphitePath(name: string): string {
  return name
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.|\.$/g, '');
}

function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** The plaintext-protocol lines of one metric ("path value timestamp"), with go-metrics' field names. */
export function graphiteLines(entry: RegistryEntry, prefix: string, unixSeconds: number): string[] {
  const base = [prefix, entry.name]
    .filter((p) => p !== '')
    .map(sanitizeGraphitePath)
    .join('.');
  const out: string[] = [];
  const add = (field: string, v: number): void => {
    // Graphite has no NaN: a gauge whose callback failed is left out of this flush.
    if (!Number.isFinite(v)) return;
    out.push(`${base}.${field} ${num(v)} ${unixSeconds}`);
  };
  const m = entry.metric;
  switch (m.kind) {
    case 'counter':
      add('count', m.count());
      break;
    case 'gauge':
      add('value', m.value());
      break;
    case 'meter': {
      const s = m.snapshot();
      add('count', s.count);
      add('one-minute', s.rate1);
      add('five-minute', s.rate5);
      add('fifteen-minute', s.rate15);
      add('mean', s.rateMean);
      break;
    }
    case 'histogram':
    case 'timer': {
      const s = m.snapshot();
      add('count', s.count);
      add('min', s.min);
      add('max', s.max);
      add('mean', s.mean);
      add('std-dev', s.stddev);
      add('50-percentile', s.median);
      add('75-percentile', s.p75);
      add('95-percentile', s.p95);
      add('99-percentile', s.p99);
      add('999-percentile', s.p999);
      if (m.kind === 'timer') {
        const t = m.snapshot();
        add('one-minute', t.rate1);
        add('five-minute', t.rate5);
        add('fifteen-minute', t.rate15);
        add('mean-rate', t.rateMean);
      }
      break;
    }
  }
  return out;
}

function parseAddress(address: GraphiteOptions['address']): { host: string; port: number } {
  if (typeof address !== 'string') return address;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`graphite address "${address}": not host:port: use e.g. "127.0.0.1:2003"`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

interface Batch {
  data: string;
  lines: number;
}

/**
 * Sends the registry to graphite over TCP. flush() never blocks or throws: lines wait in a bounded
 * buffer while the server is away and the reporter reconnects with exponential backoff; what does not
 * fit is dropped and counted. Its socket and timers are unref()'d so they never keep a process alive.
 */
export class GraphiteReporter {
  readonly #registry: Registry;
  readonly #host: string;
  readonly #port: number;
  readonly #prefix: string;
  readonly #maxBytes: number;
  readonly #initialBackoff: number;
  readonly #maxBackoff: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #pending: Batch[] = [];
  #pendingBytes = 0;
  #dropped = 0;
  #sent = 0;
  #socket: Socket | undefined;
  #connected = false;
  #backoff: number;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: GraphiteOptions) {
    const { host, port } = parseAddress(options.address);
    this.#registry = options.registry;
    this.#host = host;
    this.#port = port;
    this.#prefix = options.prefix ?? '';
    this.#maxBytes = options.maxBufferBytes ?? 1024 * 1024;
    this.#initialBackoff = options.initialBackoffMs ?? 100;
    this.#maxBackoff = options.maxBackoffMs ?? 30_000;
    this.#backoff = this.#initialBackoff;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    const intervalMs = options.intervalMs ?? 60_000;
    if (intervalMs > 0) {
      this.#interval = setInterval(() => this.flush(), intervalMs);
      this.#interval.unref();
    }
    this.#connect();
  }

  /** Lines dropped because the buffer was full while the server was away. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Lines handed to the socket. */
  get sent(): number {
    return this.#sent;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Format the registry now and send it, or buffer it until the server is back. */
  flush(): void {
    if (this.#stopped) return;
    const ts = Math.floor(this.#clock.now() / 1000);
    const lines: string[] = [];
    for (const entry of this.#registry) lines.push(...graphiteLines(entry, this.#prefix, ts));
    if (lines.length === 0) return;
    this.#enqueue({ data: `${lines.join('\n')}\n`, lines: lines.length });
    this.#pump();
  }

  /** Stop flushing and reconnecting; sends what is buffered if connected, then closes. */
  async stop(signal?: AbortSignal): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#interval) clearInterval(this.#interval);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    if (!socket) return;
    this.#pump();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        socket.destroy();
      };
      socket.once('close', done);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#connected) {
        socket.end();
        // A server that never closes its side must not hold stop() forever.
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
    });
  }

  #enqueue(batch: Batch): void {
    const size = Buffer.byteLength(batch.data);
    while (this.#pending.length > 0 && this.#pendingBytes + size > this.#maxBytes) {
      const old = this.#pending.shift()!;
      this.#pendingBytes -= Buffer.byteLength(old.data);
      this.#dropped += old.lines;
    }
    if (size > this.#maxBytes) {
      this.#dropped += batch.lines;
      this.#logger.warn({ lines: batch.lines, maxBufferBytes: this.#maxBytes }, 'graphite: batch too large');
      return;
    }
    this.#pending.push(batch);
    this.#pendingBytes += size;
  }

  #pump(): void {
    const socket = this.#socket;
    if (!socket || !this.#connected) return;
    while (this.#pending.length > 0 && !socket.writableNeedDrain) {
      const batch = this.#pending.shift()!;
      this.#pendingBytes -= Buffer.byteLength(batch.data);
      this.#sent += batch.lines;
      socket.write(batch.data);
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#reconnectTimer = undefined;
    const socket = createConnection({ host: this.#host, port: this.#port });
    this.#socket = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.#connected = true;
      this.#backoff = this.#initialBackoff;
      this.#logger.debug({ host: this.#host, port: this.#port }, 'graphite: connected');
      this.#pump();
    });
    socket.on('drain', () => this.#pump());
    // Graphite never answers; reading keeps the socket flowing so its FIN is noticed.
    socket.on('data', () => {});
    socket.on('error', (err) => {
      this.#logger.debug({ err, host: this.#host, port: this.#port }, 'graphite: connection failed');
    });
    socket.on('close', () => {
      this.#connected = false;
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopped) return;
      const delay = this.#backoff;
      this.#backoff = Math.min(this.#maxBackoff, this.#backoff * 2);
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
      this.#reconnectTimer.unref();
    });
  }
}
