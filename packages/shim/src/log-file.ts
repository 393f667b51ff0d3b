import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

// Every task's stdout/stderr also goes to a JSON-lines file in its bundle, so output outlives any
// client. Writes are synchronous appends: small, to a local file, and free of per-task queues or
// timers (a shim hosts many tasks, and the density target leaves no room for buffers). The file is
// bounded: at maxBytes it is renamed to `<path>.1` (replacing the older one) and a new one starts.

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Longest line kept whole; a longer one is split so a partial line never grows without bound. */
export const MAX_LINE_BYTES = 16 * 1024;

export type LogStream = 'stdout' | 'stderr';

/** One line of output as the file keeps it (a JSON line). */
export interface LogRecord {
  time: string;
  stream: LogStream;
  log: string;
}

/** Told of every record written after it subscribed, and of the file's close (the task is gone). */
export interface LogListener {
  record(r: LogRecord): void;
  closed(): void;
}

/** The file's content at one instant: descriptors opened then, oldest first, with the bytes to read. */
export interface LogSnapshot {
  parts: { fd: number; size: number }[];
  /** Closes the descriptors. */
  release(): void;
}

export interface LogFileOptions {
  /** Size at which the file rotates (default 10 MiB); with the one backup that bounds it at 2x. */
  maxBytes?: number;
  /** Clock for the `time` field, for tests. */
  now?: () => Date;
}

export class LogFile {
  readonly path: string;
  private fd: number;
  private size: number;
  private readonly maxBytes: number;
  private readonly now: () => Date;
  // The unterminated tail of each stream, emitted when its newline (or the end) arrives.
  private partial: Record<LogStream, string> = { stdout: '', stderr: '' };
  // Chunks can split a UTF-8 sequence; a decoder per stream carries the bytes over.
  private decoders: Partial<Record<LogStream, StringDecoder>> = {};
  private closed = false;
  private readonly listeners = new Set<LogListener>();

  constructor(path: string, opts: LogFileOptions = {}) {
    this.path = path;
    this.maxBytes = opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.now = opts.now ?? (() => new Date());
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /** Appends a chunk of output; complete lines become one record each. */
  write(stream: LogStream, chunk: Buffer | string): void {
    if (this.closed) return;
    let decoded: string;
    if (typeof chunk === 'string') decoded = chunk;
    else {
      let d = this.decoders[stream];
      if (!d) {
        d = new StringDecoder('utf8');
        this.decoders[stream] = d;
      }
      decoded = d.write(chunk);
    }
    let text = this.partial[stream] + decoded;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      this.record(stream, text.slice(0, nl + 1));
      text = text.slice(nl + 1);
      nl = text.indexOf('\n');
    }
    while (text.length > MAX_LINE_BYTES) {
      this.record(stream, text.slice(0, MAX_LINE_BYTES));
      text = text.slice(MAX_LINE_BYTES);
    }
    this.partial[stream] = text;
  }

  /** Writes out what is left of each stream's last line (the stream ended without a newline). */
  flush(stream?: LogStream): void {
    for (const s of stream ? [stream] : (['stdout', 'stderr'] as const)) {
      const tail = this.decoders[s]?.end() ?? '';
      if (tail !== '') this.partial[s] += tail;
      if (this.partial[s] !== '') {
        const rest = this.partial[s];
        this.partial[s] = '';
        this.record(s, rest);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.fd);
    for (const l of this.listeners) l.closed();
    this.listeners.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * What is in the file now (the backup, then the current file, as descriptors: a rotation after
   * this leaves them readable) and, through `listener`, every record written from now on. Both
   * are taken in one synchronous step, and writes are synchronous too, so a reader that reads the
   * snapshot and then the records sees each line once. Returns the unsubscribe function with it.
   */
  snapshot(listener?: LogListener): { snapshot: LogSnapshot; unsubscribe: () => void } {
    const parts: { fd: number; size: number }[] = [];
    try {
      const fd = openSync(`${this.path}.1`, 'r');
      parts.push({ fd, size: fstatSync(fd).size });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (!this.closed) {
      const fd = openSync(this.path, 'r');
      parts.push({ fd, size: this.size });
    }
    if (listener && !this.closed) this.listeners.add(listener);
    let released = false;
    const snapshot: LogSnapshot = {
      parts,
      release: () => {
        if (released) return;
        released = true;
        for (const p of parts) closeSync(p.fd);
      },
    };
    return {
      snapshot,
      unsubscribe: () => {
        if (listener) this.listeners.delete(listener);
      },
    };
  }

  private record(stream: LogStream, log: string): void {
    const rec: LogRecord = { time: this.now().toISOString(), stream, log };
    const line = `${JSON.stringify(rec)}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.size += bytes;
    for (const l of this.listeners) l.record(rec);
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = 0;
  }
}
