import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { loadLibc, sysError } from './libc.js';

// How a container process's stdio is wired. runc hands its own stdin/stdout/stderr to the process it
// starts, so an IO is just the three fds runc is spawned with, plus what the caller keeps.

export type StdioSlot = number | 'ignore' | 'inherit';

export interface RuncIO {
  /** What runc (and so the container process) gets as fd 0, 1, 2. */
  readonly stdio: readonly [StdioSlot, StdioSlot, StdioSlot];
  /** Called once runc has been spawned: closes our copies of the container's ends. */
  afterSpawn(): void;
  /** Closes everything this IO still holds. */
  close(): void;
  readonly stdin?: Writable | undefined;
  readonly stdout?: Readable | undefined;
  readonly stderr?: Readable | undefined;
}

const O_CLOEXEC = 0o2000000;

function pipe(): [number, number] {
  const fds = new Int32Array(2);
  if (loadLibc().pipe2(fds, O_CLOEXEC) !== 0) throw sysError('pipe2', 'pipe io');
  return [fds[0] as number, fds[1] as number];
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

export interface PipeIOOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

/**
 * Real pipes (not socketpairs: a process whose stdout is a socket cannot open /dev/stdout) for the
 * chosen streams; the others get /dev/null. Read `stdout`/`stderr`, write and end `stdin`.
 */
export function pipeIO(opts: PipeIOOptions = {}): RuncIO {
  const want = { stdin: opts.stdin ?? true, stdout: opts.stdout ?? true, stderr: opts.stderr ?? true };
  const childEnds: number[] = [];
  const sockets: Socket[] = [];
  const slot = (on: boolean, parentReads: boolean): [StdioSlot, Socket | undefined] => {
    if (!on) return ['ignore', undefined];
    const [r, w] = pipe();
    const child = parentReads ? w : r;
    const mine = parentReads ? r : w;
    childEnds.push(child);
    const s = new Socket({ fd: mine, readable: parentReads, writable: !parentReads });
    sockets.push(s);
    return [child, s];
  };
  const [in0, stdin] = slot(want.stdin, false);
  const [out1, stdout] = slot(want.stdout, true);
  const [err2, stderr] = slot(want.stderr, true);
  let spawned = false;
  return {
    stdio: [in0, out1, err2],
    stdin,
    stdout,
    stderr,
    afterSpawn() {
      if (spawned) return;
      spawned = true;
      for (const fd of childEnds.splice(0)) closeQuietly(fd);
    },
    close() {
      for (const fd of childEnds.splice(0)) closeQuietly(fd);
      for (const s of sockets) s.destroy();
    },
  };
}

/** Every stream to /dev/null. */
export function nullIO(): RuncIO {
  return { stdio: ['ignore', 'ignore', 'ignore'], afterSpawn() {}, close() {} };
}

/** The caller's own fds (undefined: /dev/null). They stay the caller's: nothing is closed. */
export function fdIO(fds: {
  stdin?: number | undefined;
  stdout?: number | undefined;
  stderr?: number | undefined;
}): RuncIO {
  const s = (fd: number | undefined): StdioSlot => (fd === undefined ? 'ignore' : fd);
  return { stdio: [s(fds.stdin), s(fds.stdout), s(fds.stderr)], afterSpawn() {}, close() {} };
}

/** This process's own stdin/stdout/stderr. */
export function inheritIO(): RuncIO {
  return { stdio: ['inherit', 'inherit', 'inherit'], afterSpawn() {}, close() {} };
}

/** Files: stdin read from a path, stdout/stderr appended to paths (the same path may serve both). */
export function fileIO(paths: { stdin?: string; stdout?: string; stderr?: string }): RuncIO {
  const opened: number[] = [];
  const open = (path: string | undefined, flags: string): StdioSlot => {
    if (path === undefined) return 'ignore';
    const fd = openSync(path, flags, 0o644);
    opened.push(fd);
    return fd;
  };
  const stdin = open(paths.stdin, 'r');
  const stdout = open(paths.stdout, 'a');
  const stderr =
    paths.stderr !== undefined && paths.stderr === paths.stdout ? stdout : open(paths.stderr, 'a');
  const done = () => {
    for (const fd of opened.splice(0)) closeQuietly(fd);
  };
  return { stdio: [stdin, stdout, stderr], afterSpawn: done, close: done };
}
