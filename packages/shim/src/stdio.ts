import { closeSync, constants, createWriteStream, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { LogFile, LogStream } from './log-file.js';

// A process's stdio as clients give it: fifo paths (stock ctr makes them, see containerd's cio),
// `file://` URIs, or "" for none. Output is copied from runc's side to the client's sink and to the
// task's log file; input is copied from the client's fifo to the process.
//
// FIFOs are opened non-blocking and served by libuv streams, never by fs streams: a blocking fs write
// to a fifo nobody reads would pin a threadpool thread forever and, four of them later, the shim.
// Output fifos are opened O_RDWR: open never blocks, and holding the read end keeps the pipe alive
// when the client goes away. The stdin fifo is opened read-only plus a write-only keep-alive handle
// (so there is no EOF before a client connects); CloseIO drops the keep-alive, and the copy ends once
// the client's writer has closed and everything written was read.

export class StdioError extends Error {}

function isFifo(fd: number): boolean {
  return fstatSync(fd).isFIFO();
}

function openFifo(path: string, flags: number, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new StdioError(`${what} fifo ${JSON.stringify(path)}: does not exist: create it with mkfifo`);
    throw new StdioError(`${what} fifo ${JSON.stringify(path)}: ${code ?? String(e)}`, { cause: e });
  }
  if (!isFifo(fd)) {
    closeSync(fd);
    throw new StdioError(
      `${what} ${JSON.stringify(path)}: not a fifo: pass a fifo path, a file:// URI or ""`,
    );
  }
  return fd;
}

function fileUriPath(uri: string, what: string): string {
  let path: string;
  try {
    path = fileURLToPath(uri);
  } catch (e) {
    throw new StdioError(`${what} ${JSON.stringify(uri)}: not a valid file:// URI`, { cause: e });
  }
  return path;
}

/** Where one output stream goes: a fifo, a file, or nowhere. */
export function openOutput(uri: string, what: LogStream): Writable | undefined {
  if (uri === '') return undefined;
  if (uri.startsWith('file://')) {
    const path = fileUriPath(uri, what);
    const ws = createWriteStream(path, { flags: 'a', mode: 0o600, highWaterMark: 16 * 1024 });
    return ws;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('fifo://')) {
    throw new StdioError(`${what} ${JSON.stringify(uri)}: unsupported scheme: use a fifo path or file://`);
  }
  const path = uri.startsWith('fifo://') ? uri.slice('fifo://'.length) : uri;
  const fd = openFifo(path, constants.O_RDWR, what);
  return new Socket({ fd, readable: false, writable: true });
}

export interface StdinSource {
  stream: Readable;
  /** Lets EOF through once the client's writer has closed. */
  closeKeepAlive(): void;
}

export function openStdin(uri: string): StdinSource | undefined {
  if (uri === '') return undefined;
  if (uri.startsWith('file://')) {
    throw new StdioError(`stdin ${JSON.stringify(uri)}: file:// is for output only: use a fifo path`);
  }
  const path = uri.startsWith('fifo://') ? uri.slice('fifo://'.length) : uri;
  const fd = openFifo(path, constants.O_RDONLY, 'stdin');
  let keep: number | undefined;
  try {
    keep = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    closeSync(fd);
    throw new StdioError(`stdin fifo ${JSON.stringify(path)}: ${(e as NodeJS.ErrnoException).code ?? e}`, {
      cause: e,
    });
  }
  const stream = new Socket({ fd, readable: true, writable: false });
  return {
    stream,
    closeKeepAlive() {
      if (keep === undefined) return;
      closeSync(keep);
      keep = undefined;
    },
  };
}

/**
 * Copies `source` (the process's stdout or stderr) to `sink` and the log, with backpressure from the
 * sink, and ends the sink when the source ends. Resolves when the source has ended and the sink
 * flushed (or failed: a client that went away never blocks the task).
 */
export function copyOutput(
  source: Readable,
  stream: LogStream,
  sink: Writable | undefined,
  log: LogFile | undefined,
): Promise<void> {
  return new Promise((resolve) => {
    let sinkOk = sink !== undefined;
    const finish = () => {
      log?.flush(stream);
      if (sink && sinkOk) {
        sink.end(() => resolve());
        sink.once('error', () => resolve());
      } else {
        sink?.destroy();
        resolve();
      }
    };
    sink?.on('error', () => {
      sinkOk = false;
      if (source.isPaused()) source.resume();
    });
    source.on('data', (chunk: Buffer) => {
      try {
        log?.write(stream, chunk);
      } catch {
        // A full disk must not stop the copy to the client.
      }
      if (sink && sinkOk && !sink.write(chunk)) {
        source.pause();
        sink.once('drain', () => source.resume());
      }
    });
    source.once('end', finish);
    source.once('error', () => {
      source.removeListener('end', finish);
      finish();
    });
  });
}

/** Copies the client's stdin to the process; ends the process's stdin at EOF. */
export function copyInput(source: StdinSource, target: Writable): void {
  target.on('error', () => source.stream.destroy());
  source.stream.on('error', () => target.end());
  source.stream.pipe(target);
}

export interface BinaryLogger {
  stdout: Writable;
  stderr: Writable;
  close(): void;
}

/**
 * `binary:///path/to/logger?k=v`: containerd's logging-binary protocol. The binary gets the query as
 * arguments (`k v`), CONTAINER_ID and CONTAINER_NAMESPACE in its environment, the process's stdout on
 * fd 3 and stderr on fd 4, and closes fd 5 once it is ready to read.
 */
export async function openBinaryLogger(
  uri: string,
  namespace: string,
  id: string,
  signal?: AbortSignal,
): Promise<BinaryLogger> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (e) {
    throw new StdioError(`stdout ${JSON.stringify(uri)}: not a valid binary:// URI`, { cause: e });
  }
  const path = decodeURIComponent(url.pathname);
  if (!path.startsWith('/'))
    throw new StdioError(`stdout ${JSON.stringify(uri)}: the logger path must be absolute`);
  const args: string[] = [];
  for (const [k, v] of url.searchParams) {
    args.push(k);
    if (v !== '') args.push(v);
  }
  const { spawn } = await import('node:child_process');
  const child = spawn(path, args, {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, CONTAINER_ID: id, CONTAINER_NAMESPACE: namespace },
    detached: false,
  });
  const [, , , out, err, ready] = child.stdio as unknown as [
    unknown,
    unknown,
    unknown,
    Writable,
    Writable,
    Readable,
  ];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StdioError(`logger ${path}: not ready after 10s`)), 10_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(new StdioError(`logger ${path}: ${e.message}`, { cause: e }));
    };
    child.once('error', fail);
    signal?.addEventListener('abort', () => fail(new Error('aborted')), { once: true });
    ready.resume();
    ready.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  }).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    stdout: out,
    stderr: err,
    close() {
      out.destroy();
      err.destroy();
    },
  };
}
