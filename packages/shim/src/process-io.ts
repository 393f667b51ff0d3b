import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { ReadStream as TtyReadStream, WriteStream as TtyWriteStream } from 'node:tty';
import type { LogFile } from './log-file.js';
import type { RuntimeStdio } from './runtime.js';
import type { BinaryLogger, StdinSource } from './stdio.js';
import { copyInput, copyOutput, openBinaryLogger, openOutput, openStdin } from './stdio.js';
import { setWinsize } from '@ctrd/runc-client';
import { dupCloexec, pipe } from './sys.js';

// The IO of one process (init or exec). Without a terminal, stdout and stderr are always real pipes,
// even when the client passed "", because the task's log file takes everything; stdin is a pipe only
// when the client gave one. With a terminal, runc hands over the pty master through the console
// socket and one stream (stdout) carries the output.
//
// Lifecycle: open() validates and opens the client's side (before runc runs, so a bad fifo fails the
// call cleanly), runtimeStdio() are the fds runc passes to the process, started() closes our copies
// of those and starts copying, attachConsole() does the same for a pty.

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** How long an exit waits for the output to drain before it is published anyway. */
export const DRAIN_TIMEOUT_MS = 2000;

export class ProcessIO {
  private stdinSource: StdinSource | undefined;
  private stdoutSink: Writable | undefined;
  private stderrSink: Writable | undefined;
  // [ours, theirs] pairs; ours is wrapped in a stream once runc has the other end.
  private stdinPipe: [number, number] | undefined;
  private stdoutPipe: [number, number] | undefined;
  private stderrPipe: [number, number] | undefined;
  private processStdin: Writable | undefined;
  private copies: Promise<void>[] = [];
  private master: number | undefined;
  private masterStreams: Array<Readable | Writable> = [];
  private stdinClosed = false;
  private logger: BinaryLogger | undefined;

  constructor(
    readonly paths: StdioPaths,
    private readonly log: LogFile | undefined,
  ) {}

  /** Opens the client's fifos/files/logger. Throws StdioError on a bad path. */
  async open(namespace: string, id: string, signal?: AbortSignal): Promise<void> {
    try {
      this.stdinSource = openStdin(this.paths.stdin);
      if (this.paths.stdout.startsWith('binary://')) {
        // One logger takes both streams, as in containerd.
        this.logger = await openBinaryLogger(this.paths.stdout, namespace, id, signal);
        this.stdoutSink = this.logger.stdout;
        if (!this.paths.terminal) this.stderrSink = this.logger.stderr;
      } else {
        this.stdoutSink = openOutput(this.paths.stdout, 'stdout');
        if (!this.paths.terminal) this.stderrSink = openOutput(this.paths.stderr, 'stderr');
      }
      if (!this.paths.terminal) {
        if (this.stdinSource) this.stdinPipe = swap(pipe());
        this.stdoutPipe = pipe();
        this.stderrPipe = pipe();
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The fds the process gets (their ends of the pipes). */
  runtimeStdio(): RuntimeStdio {
    return {
      stdin: this.stdinPipe?.[1],
      stdout: this.stdoutPipe?.[1],
      stderr: this.stderrPipe?.[1],
    };
  }

  /** runc has started the process with our pipes: drop our copies of its ends and start copying. */
  started(): void {
    if (this.stdinPipe) {
      closeSync(this.stdinPipe[1]);
      this.processStdin = new Socket({ fd: this.stdinPipe[0], readable: false, writable: true });
      this.stdinPipe = undefined;
      if (this.stdinSource) copyInput(this.stdinSource, this.processStdin);
      if (this.stdinClosed) this.stdinSource?.closeKeepAlive();
    }
    for (const [which, sinkName] of [
      ['stdout', 'stdoutSink'],
      ['stderr', 'stderrSink'],
    ] as const) {
      const p = which === 'stdout' ? this.stdoutPipe : this.stderrPipe;
      if (!p) continue;
      closeSync(p[1]);
      const source = new Socket({ fd: p[0], readable: true, writable: false });
      this.copies.push(copyOutput(source, which, this[sinkName], this.log));
      if (which === 'stdout') this.stdoutPipe = undefined;
      else this.stderrPipe = undefined;
    }
  }

  /** A terminal process: copy the client's stdin to the pty master and the master to stdout. */
  attachConsole(master: number): void {
    this.master = master;
    const reader = new TtyReadStream(master);
    const writer = new TtyWriteStream(dupCloexec(master));
    this.masterStreams.push(reader, writer);
    if (this.stdinSource) copyInput(this.stdinSource, writer);
    if (this.stdinClosed) this.stdinSource?.closeKeepAlive();
    // Reading a master whose slave side is gone fails with EIO: that is the end of the output.
    reader.on('error', () => reader.push(null));
    this.copies.push(copyOutput(reader, 'stdout', this.stdoutSink, this.log));
  }

  resize(width: number, height: number): void {
    if (this.master === undefined) return;
    setWinsize(this.master, { cols: width, rows: height });
  }

  /** CloseIO{stdin}: the process's stdin ends once the client's writes are drained. */
  closeStdin(): void {
    this.stdinClosed = true;
    if (this.stdinSource) this.stdinSource.closeKeepAlive();
    else this.processStdin?.end();
  }

  /** Resolves when the output copies finished, or after timeoutMs. */
  async drained(timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
    if (this.copies.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.copies),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
        timer.unref();
      }),
    ]);
    if (timer) clearTimeout(timer);
  }

  /** Closes every fd and stream this process holds. */
  close(): void {
    this.stdinSource?.closeKeepAlive();
    this.stdinSource?.stream.destroy();
    this.stdinSource = undefined;
    this.processStdin?.destroy();
    for (const p of [this.stdinPipe, this.stdoutPipe, this.stderrPipe]) {
      if (p) for (const fd of p) safeClose(fd);
    }
    this.stdinPipe = this.stdoutPipe = this.stderrPipe = undefined;
    this.stdoutSink?.destroy();
    this.stderrSink?.destroy();
    this.logger?.close();
    this.logger = undefined;
    for (const s of this.masterStreams) s.destroy();
    this.masterStreams = [];
    this.master = undefined;
  }
}

// For stdin the process reads and we write: [ours=write end, theirs=read end].
function swap(p: [number, number]): [number, number] {
  return [p[1], p[0]];
}

function safeClose(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
