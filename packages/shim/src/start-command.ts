import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ShimOptions } from './options.js';
import { toArgv } from './options.js';
import { shimDir, shimSocketPath, socketDir } from './socket-address.js';

// `ctrd-shim start`: makes sure a shim serves (namespace, shim id) and prints its socket address.
// The serving process is this program again (`serve`), started in its own session with its output
// in <state>/shims/<id>/shim.log, so it outlives the daemon that ran `start`. It says "ready" on an
// inherited pipe (fd 3) once its socket is bound, and only then does `start` print and exit.

export const READY_FD_ENV = 'CTRD_SHIM_READY_FD';
const READY_TIMEOUT_MS = 20_000;

export interface StartResult {
  address: string;
  /** False when a shim was already serving that socket (several tasks share a shim). */
  started: boolean;
  pid?: number | undefined;
}

function answers(path: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

export async function startShim(opts: ShimOptions, signal?: AbortSignal): Promise<StartResult> {
  const socketPath = shimSocketPath(opts.stateDir, opts.namespace, opts.id, opts.address);
  const address = `unix://${socketPath}`;
  if (await answers(socketPath)) return { address, started: false };
  mkdirSync(socketDir(opts.stateDir), { recursive: true, mode: 0o700 });
  const dir = shimDir(opts.stateDir, opts.id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logFd = openSync(`${dir}/shim.log`, 'a', 0o600);
  const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(process.execPath, [...process.execArgv, bin, ...toArgv('serve', opts)], {
      detached: true,
      cwd: '/',
      stdio: ['ignore', logFd, logFd, 'pipe'],
      env: { ...process.env, [READY_FD_ENV]: '3' },
    });
  } finally {
    closeSync(logFd);
  }
  const ready = child.stdio[3] as Readable;
  const outcome = await new Promise<string>((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve('error: shim did not become ready in time'), READY_TIMEOUT_MS);
    const onAbort = () => resolve('error: aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (s: string) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(s);
    };
    ready.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) finish(text.trim());
    });
    ready.once('end', () => finish(text.trim() || 'error: shim exited before it was ready'));
    ready.once('error', () => finish('error: shim exited before it was ready'));
    child.once('error', (e) => finish(`error: ${e.message}`));
  });
  ready.destroy();
  if (outcome === 'ready') {
    child.unref();
    return { address, started: true, pid: child.pid };
  }
  // Another `start` may have won the race for the same shim: then its shim is the answer.
  if (await answers(socketPath)) {
    child.unref();
    return { address, started: false };
  }
  if (child.exitCode === null) child.kill('SIGKILL');
  child.unref();
  throw new Error(`start shim ${opts.id}: ${outcome.replace(/^error: /, '')} (see ${dir}/shim.log)`);
}
