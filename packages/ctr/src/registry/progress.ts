// The transfer board of pull, push and content fetch: one line per blob (ref, status, bytes,
// speed) and a closing `elapsed ... total ...` line. On a terminal the board is redrawn in place
// every interval; elsewhere (logs, pipes, tests) a line is printed each time a blob changes status,
// so the output reads as a history instead of a flood.

export type TransferStatus =
  | 'resolving'
  | 'resolved'
  | 'waiting'
  | 'downloading'
  | 'uploading'
  | 'done'
  | 'exists'
  | 'mounted'
  | 'skipped'
  | 'failed';

export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** Redraw in place (default: the sink's isTTY). */
  tty?: boolean;
  intervalMs?: number;
  now?: () => number;
}

interface Entry {
  ref: string;
  status: TransferStatus;
  total: number;
  /** Bytes stored, including what an earlier run left (a resumed ingest). */
  offset: number;
  /** Bytes moved by this run: what the speed and the total are made of. */
  moved: number;
  startedAt?: number;
}

const BAR = 30;
const FINAL = new Set<TransferStatus>(['done', 'exists', 'mounted', 'skipped', 'failed']);

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export class Progress {
  readonly #out: ProgressSink;
  readonly #tty: boolean;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #started: number;
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #stopped = false;

  constructor(out: ProgressSink, options: ProgressOptions = {}) {
    this.#out = out;
    this.#tty = options.tty ?? out.isTTY === true;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
  }

  /** Begins redrawing (terminal only). */
  start(): this {
    if (this.#tty && !this.#timer) {
      this.#timer = setInterval(() => this.#redraw(), this.#intervalMs);
      this.#timer.unref();
    }
    return this;
  }

  /** Adds a line, or updates its total and status when the ref is already on the board. */
  add(ref: string, total: number, status: TransferStatus = 'waiting'): void {
    const e = this.#entries.get(ref);
    if (e) {
      e.total = total;
      this.set(ref, status);
      return;
    }
    this.#entries.set(ref, { ref, status, total, offset: 0, moved: 0 });
    this.#changed(ref);
  }

  set(ref: string, status: TransferStatus, offset?: number): void {
    const e = this.#entries.get(ref);
    if (!e) {
      this.add(ref, 0, status);
      return;
    }
    if (offset !== undefined) e.offset = offset;
    if ((status === 'downloading' || status === 'uploading') && e.startedAt === undefined) {
      e.startedAt = this.#now();
    }
    if ((status === 'done' || status === 'exists' || status === 'mounted') && e.total > 0) e.offset = e.total;
    if (e.status === status) return;
    e.status = status;
    this.#changed(ref);
  }

  /** `bytes` more moved for `ref`. */
  advance(ref: string, bytes: number): void {
    const e = this.#entries.get(ref);
    if (!e) return;
    e.offset += bytes;
    e.moved += bytes;
  }

  /** Stops redrawing and prints the final board (terminal) and the elapsed/total line. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#tty) this.#redraw();
    const elapsed = Math.max(this.#now() - this.#started, 1);
    let moved = 0;
    for (const e of this.#entries.values()) moved += e.moved;
    this.#out.write(
      `elapsed: ${formatSeconds(elapsed)}\ttotal: ${formatBytes(moved)}\t(${formatBytes(Math.round((moved * 1000) / elapsed))}/s)\n`,
    );
  }

  #changed(ref: string): void {
    if (this.#tty || this.#stopped) return;
    const e = this.#entries.get(ref) as Entry;
    // History mode: the steps worth a line.
    if (e.status === 'waiting' || e.status === 'resolving') return;
    this.#out.write(`${this.#line(e, ref.length)}\n`);
  }

  #line(e: Entry, width: number): string {
    const parts = [`${`${e.ref}:`.padEnd(width + 1)} ${e.status.padEnd(11)}`];
    if (e.total > 0) {
      const filled = Math.min(BAR, Math.round((Math.min(e.offset, e.total) / e.total) * BAR));
      parts.push(`|${'+'.repeat(filled)}${'-'.repeat(BAR - filled)}|`);
      parts.push(`${formatBytes(Math.min(e.offset, e.total))}/${formatBytes(e.total)}`);
      if (e.startedAt !== undefined && e.moved > 0) {
        const ms = Math.max(this.#now() - e.startedAt, 1);
        parts.push(`(${formatBytes(Math.round((e.moved * 1000) / ms))}/s)`);
      }
    } else if (FINAL.has(e.status) || e.status === 'resolved') {
      parts.push(`|${'+'.repeat(BAR)}|`);
    }
    return parts.join(' ');
  }

  #redraw(): void {
    const entries = [...this.#entries.values()];
    const width = Math.max(0, ...entries.map((e) => e.ref.length));
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    for (const e of entries) text += `\x1b[2K${this.#line(e, width)}\n`;
    this.#drawn = entries.length;
    this.#out.write(text);
  }
}
