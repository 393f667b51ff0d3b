import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Starts a private `ctrd` (packages/daemon/dist/bundle/bin.js, the `ctrd` bin) as a real process on its own temp root,
// state dir and socket, never /run/ctrd. Reusable by every e2e test that needs a daemon:
//
//   const d = await startDaemon();            // or startDaemon({ dir: d.dir }) to restart on the same dirs
//   await run('/usr/bin/ctr', ['--address', d.socket, 'version']);
//   await d.stop();                           // SIGTERM, waits for exit
//   await d.dispose();                        // stop (SIGKILL if needed) and remove the temp dir
//
// Build the daemon first: `npx tsc -b packages/daemon`.

export const CTRD_BIN = fileURLToPath(
  new URL('../../../packages/daemon/dist/bundle/bin.js', import.meta.url),
);

export interface DaemonOptions {
  /** Reuse these dirs (a restart); default a new mkdtemp under the OS temp dir. */
  dir?: string | undefined;
  /** Extra ctrd flags, e.g. ['--metrics-interval', '0']. */
  args?: string[] | undefined;
  /** Pass --debug (one log line per call in `logs()`). Default true. */
  debug?: boolean | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** How long to wait for the socket. Default 60 s (a busy machine starts node slowly). */
  readyTimeoutMs?: number | undefined;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonProcess {
  /** The temp dir holding root/, state/ and the socket. */
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  /** `unix://<socket>` for createClient. */
  readonly address: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything ctrd wrote to stderr (pino JSON lines) so far. */
  logs(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Sends `signal` (default SIGTERM) and waits; SIGKILL after `timeoutMs` (default 15 s). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** stop(), then removes the temp dir (only if startDaemon made it). */
  dispose(): Promise<void>;
}

/** The paths a daemon on `dir` uses; the socket name is short to stay under the 104-byte limit. */
export function daemonPaths(dir: string): { root: string; state: string; socket: string } {
  return { root: join(dir, 'root'), state: join(dir, 'state'), socket: join(dir, 'ctrd.sock') };
}

/** Runs ctrd to completion with `args` (for tests of failures); resolves its exit and output. */
export function runCtrd(
  args: string[],
  timeoutMs = 60_000,
): Promise<Exit & { stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CTRD_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<DaemonProcess> {
  if (!existsSync(CTRD_BIN))
    throw new Error(`ctrd binary ${CTRD_BIN}: not built: run npx tsc -b packages/daemon`);
  const owned = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'ctrd-e2e-')));
  await mkdir(dir, { recursive: true });
  const { root, state, socket } = daemonPaths(dir);
  const args = [
    CTRD_BIN,
    '--config',
    '/dev/null',
    '--root',
    root,
    '--state-dir',
    state,
    '--listen',
    socket,
    '--metrics-interval',
    '0',
    ...(opts.debug === false ? [] : ['--debug']),
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let logs = '';
  child.stderr!.on('data', (d) => {
    logs += d;
  });
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let done: Exit | undefined;
  void exited.then((e) => {
    done = e;
  });

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (done)
      throw new Error(`ctrd exited before serving (code ${done.code}, signal ${done.signal}):\n${logs}`);
    if (await canConnect(socket)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`ctrd did not listen on ${socket} in time:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> => {
    if (done) return done;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const e = await exited;
    clearTimeout(timer);
    return e;
  };
  return {
    dir,
    root,
    state,
    socket,
    address: `unix://${socket}`,
    pid: child.pid!,
    child,
    logs: () => logs,
    exited,
    stop,
    async dispose() {
      await stop('SIGTERM', 5_000);
      if (owned) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * How many calls of `method` (as `Service/Method`, e.g. 'Events/Subscribe') the daemon's --debug log
 * shows. A stream's call is logged once its handler is serving it: a test can wait for a subscriber
 * to be live before making the events it must see.
 */
export function callsLogged(d: DaemonProcess, method: string): number {
  let n = 0;
  for (const line of d.logs().split('\n')) {
    if (!line.includes(method)) continue;
    try {
      const rec = JSON.parse(line) as { msg?: string; method?: string; code?: string };
      if (rec.msg === 'call' && rec.code === 'ok' && rec.method?.endsWith(`.${method}`)) n++;
    } catch {
      // a line still being written
    }
  }
  return n;
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
