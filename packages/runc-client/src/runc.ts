import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import * as argv from './argv.js';
import { RuncError, RuncValidationError, runcMessageFrom } from './errors.js';
import type { RuncEvent, Stats } from './events.js';
import { nullIO, type RuncIO, type StdioSlot } from './io.js';
import { nodeSpawner, type SpawnedProcess } from './spawner.js';
import type {
  CallOptions,
  CheckpointOptions,
  ContainerState,
  CreateOptions,
  DeleteOptions,
  DetachedResult,
  EventsOptions,
  ExecOptions,
  ExitResult,
  KillOptions,
  Resources,
  RestoreOptions,
  RuncOptions,
  RunOptions,
  Signal,
  Version,
} from './types.js';
import {
  resolveBinary,
  validateAbsolute,
  validateBundle,
  validateCwd,
  validateId,
  validateProcess,
} from './validate.js';

interface Invocation {
  verb: string;
  args: string[];
  signal?: AbortSignal | undefined;
  /** Container stdio; when set, runc's own errors go to a per-call log file instead of stderr. */
  io?: RuncIO | undefined;
  input?: string | undefined;
  extraFiles?: number[] | undefined;
  /** runc's exit code is the container process's (run/exec in the foreground). */
  foreground?: boolean;
  /** Per-call temp dir (log file, pid file, process.json). */
  dir?: string | undefined;
}

interface Outcome {
  stdout: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

function abortError(signal: AbortSignal, what: string): Error {
  if (signal.reason instanceof Error) return signal.reason;
  const e = new Error(`${what}: aborted`, { cause: signal.reason });
  e.name = 'AbortError';
  return e;
}

/**
 * The runc CLI as an object: global options here, one method per verb. Every method validates what
 * runc would reject, runs runc once, and throws a RuncError carrying runc's own message on failure.
 */
export class Runc {
  readonly options: Readonly<RuncOptions>;
  private binaryPath: Promise<string> | undefined;

  constructor(options: RuncOptions = {}) {
    if (options.root !== undefined) validateAbsolute('', 'root', options.root);
    if (options.log !== undefined) validateAbsolute('', 'log', options.log);
    this.options = { ...options };
  }

  /** The argv runc gets before the verb. */
  globalArgs(): string[] {
    return argv.globalArgs(this.options);
  }

  async version(opts: CallOptions = {}): Promise<Version> {
    const { stdout } = await this.invoke({ verb: 'version', args: argv.versionArgs(), signal: opts.signal });
    return parseVersion(stdout);
  }

  /**
   * Checks that this runc is at least `min` (default 1.1.0, the oldest this client is tested with);
   * resolves with its version, or rejects saying which runc is too old.
   */
  async requireVersion(min = MIN_RUNC_VERSION, opts: CallOptions = {}): Promise<Version> {
    const v = await this.version(opts);
    if (compareVersions(v.runc, min) < 0) {
      throw new RuncValidationError(
        `runc binary ${await this.binary()}: version ${v.runc} is older than ${min}; install runc ${min} or newer`,
      );
    }
    return v;
  }

  /** `runc features` (experimental in runc 1.1): what this runc supports, as JSON. */
  async features(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const { stdout } = await this.invoke({
      verb: 'features',
      args: argv.featuresArgs(),
      signal: opts.signal,
    });
    return parseJson('features', stdout) as Record<string, unknown>;
  }

  /** Creates the container (its init waits for `start`); resolves with the init's pid. */
  async create(id: string, bundle: string, opts: CreateOptions = {}): Promise<DetachedResult> {
    return this.releasingIO(opts.io, async () => {
      validateId('create', id);
      await validateBundle(`create ${id}`, bundle);
      return this.withCallDir(async (dir) => {
        const pidFile = opts.pidFile ?? join(dir, 'pid');
        if (opts.pidFile !== undefined) validateAbsolute(`create ${id}`, 'pid file', opts.pidFile);
        await this.invoke({
          verb: `create ${id}`,
          args: argv.createArgs(id, bundle, { ...opts, pidFile }),
          signal: opts.signal,
          io: opts.io ?? nullIO(),
          extraFiles: opts.extraFiles,
          dir,
        });
        return { pid: await readPid(`create ${id}`, pidFile) };
      });
    });
  }

  async start(id: string, opts: CallOptions = {}): Promise<void> {
    validateId('start', id);
    await this.invoke({ verb: `start ${id}`, args: argv.startArgs(id), signal: opts.signal });
  }

  /**
   * create + start. Detached: resolves with the pid once the container runs. In the foreground:
   * resolves with the container's exit status when it exits (runc deletes it unless `keep`).
   */
  run(id: string, bundle: string, opts: RunOptions & { detach: true }): Promise<DetachedResult>;
  run(id: string, bundle: string, opts?: RunOptions & { detach?: false }): Promise<ExitResult>;
  async run(id: string, bundle: string, opts: RunOptions = {}): Promise<DetachedResult | ExitResult> {
    return this.releasingIO(opts.io, async () => {
      validateId('run', id);
      await validateBundle(`run ${id}`, bundle);
      return this.withCallDir(async (dir) => {
        const detach = opts.detach === true;
        const pidFile = opts.pidFile ?? (detach ? join(dir, 'pid') : undefined);
        const out = await this.invoke({
          verb: `run ${id}`,
          args: argv.runArgs(id, bundle, { ...opts, pidFile }),
          signal: opts.signal,
          io: opts.io ?? nullIO(),
          extraFiles: opts.extraFiles,
          foreground: !detach,
          dir,
        });
        if (detach) return { pid: await readPid(`run ${id}`, pidFile as string) };
        return { exitStatus: exitStatusOf(out) };
      });
    });
  }

  /**
   * Runs a process in the container. Detached: resolves with its pid. In the foreground: resolves
   * with its exit status.
   */
  exec(id: string, opts: ExecOptions & { detach: true }): Promise<DetachedResult>;
  exec(id: string, opts: ExecOptions & { detach?: false }): Promise<ExitResult>;
  async exec(id: string, opts: ExecOptions): Promise<DetachedResult | ExitResult> {
    return this.releasingIO(opts.io, async () => {
      validateId('exec', id);
      if (opts.process !== undefined) validateProcess(`exec ${id}`, opts.process);
      else if (opts.cwd !== undefined) validateCwd(`exec ${id}`, opts.cwd);
      return this.withCallDir(async (dir) => {
        const detach = opts.detach === true;
        const pidFile = opts.pidFile ?? (detach ? join(dir, 'pid') : undefined);
        let processFile: string | undefined;
        if (opts.process !== undefined) {
          processFile = join(dir, 'process.json');
          await writeFile(processFile, JSON.stringify(opts.process), { mode: 0o600 });
        }
        const out = await this.invoke({
          verb: `exec ${id}`,
          args: argv.execArgs(id, { ...opts, pidFile }, processFile),
          signal: opts.signal,
          io: opts.io ?? nullIO(),
          extraFiles: opts.extraFiles,
          foreground: !detach,
          dir,
        });
        if (detach) return { pid: await readPid(`exec ${id}`, pidFile as string) };
        return { exitStatus: exitStatusOf(out) };
      });
    });
  }

  /** Sends a signal (number, or name with or without SIG) to the init, or to every process with `all`. */
  async kill(id: string, sig: Signal, opts: KillOptions = {}): Promise<void> {
    validateId('kill', id);
    await this.invoke({ verb: `kill ${id}`, args: argv.killArgs(id, sig, opts), signal: opts.signal });
  }

  async delete(id: string, opts: DeleteOptions = {}): Promise<void> {
    validateId('delete', id);
    await this.invoke({ verb: `delete ${id}`, args: argv.deleteArgs(id, opts), signal: opts.signal });
  }

  async state(id: string, opts: CallOptions = {}): Promise<ContainerState> {
    validateId('state', id);
    const { stdout } = await this.invoke({
      verb: `state ${id}`,
      args: argv.stateArgs(id),
      signal: opts.signal,
    });
    return parseJson(`state ${id}`, stdout) as ContainerState;
  }

  async list(opts: CallOptions = {}): Promise<ContainerState[]> {
    const { stdout } = await this.invoke({ verb: 'list', args: argv.listArgs(), signal: opts.signal });
    return (parseJson('list', stdout) as ContainerState[] | null) ?? [];
  }

  /** Host pids of the container's processes. */
  async ps(id: string, opts: CallOptions = {}): Promise<number[]> {
    validateId('ps', id);
    const { stdout } = await this.invoke({ verb: `ps ${id}`, args: argv.psArgs(id), signal: opts.signal });
    return (parseJson(`ps ${id}`, stdout) as number[] | null) ?? [];
  }

  async pause(id: string, opts: CallOptions = {}): Promise<void> {
    validateId('pause', id);
    await this.invoke({ verb: `pause ${id}`, args: argv.pauseArgs(id), signal: opts.signal });
  }

  async resume(id: string, opts: CallOptions = {}): Promise<void> {
    validateId('resume', id);
    await this.invoke({ verb: `resume ${id}`, args: argv.resumeArgs(id), signal: opts.signal });
  }

  /** Updates cgroup limits from an OCI LinuxResources document (sent on runc's stdin). */
  async update(id: string, resources: Resources, opts: CallOptions = {}): Promise<void> {
    validateId('update', id);
    if (typeof resources !== 'object' || resources === null) {
      throw new RuncValidationError(`runc update ${id}: resources must be an object (OCI LinuxResources)`);
    }
    await this.invoke({
      verb: `update ${id}`,
      args: argv.updateArgs(id),
      input: JSON.stringify(resources),
      signal: opts.signal,
    });
  }

  async checkpoint(id: string, opts: CheckpointOptions): Promise<void> {
    validateId('checkpoint', id);
    validateAbsolute(`checkpoint ${id}`, 'image', opts.imagePath);
    if (opts.workPath !== undefined) validateAbsolute(`checkpoint ${id}`, 'work', opts.workPath);
    try {
      await this.invoke({
        verb: `checkpoint ${id}`,
        args: argv.checkpointArgs(id, opts),
        signal: opts.signal,
      });
    } catch (e) {
      throw await withCriuLog(e, `checkpoint ${id}`, opts.workPath ?? opts.imagePath);
    }
  }

  /** Restores a checkpoint; with `detach`, resolves with the pid, else with the exit status. */
  async restore(id: string, opts: RestoreOptions): Promise<DetachedResult | ExitResult> {
    return this.releasingIO(opts.io, async () => {
      validateId('restore', id);
      await validateBundle(`restore ${id}`, opts.bundle);
      validateAbsolute(`restore ${id}`, 'image', opts.imagePath);
      return this.withCallDir(async (dir) => {
        const detach = opts.detach === true;
        const pidFile = opts.pidFile ?? (detach ? join(dir, 'pid') : undefined);
        const out = await this.invoke({
          verb: `restore ${id}`,
          args: argv.restoreArgs(id, { ...opts, pidFile }),
          signal: opts.signal,
          io: opts.io ?? nullIO(),
          foreground: !detach,
          dir,
        });
        if (detach) return { pid: await readPid(`restore ${id}`, pidFile as string) };
        return { exitStatus: exitStatusOf(out) };
      });
    });
  }

  /** `runc events --stats`: one stats sample. */
  async stats(id: string, opts: CallOptions = {}): Promise<Stats> {
    validateId('events', id);
    const { stdout } = await this.invoke({
      verb: `events --stats ${id}`,
      args: argv.eventsArgs(id, { stats: true }),
      signal: opts.signal,
    });
    const ev = parseJson(`events --stats ${id}`, stdout) as RuncEvent;
    return (ev.data ?? {}) as Stats;
  }

  /**
   * `runc events`: stats every interval and OOM notices, until the container is gone, the signal
   * aborts, or the loop stops early (runc is killed then).
   */
  async *events(id: string, opts: EventsOptions = {}): AsyncGenerator<RuncEvent, void, undefined> {
    validateId('events', id);
    const args = argv.eventsArgs(id, {
      ...(opts.intervalMs !== undefined && { intervalMs: opts.intervalMs }),
    });
    opts.signal?.throwIfAborted();
    const bin = await this.binary();
    const full = [...this.globalArgs(), ...args];
    this.options.logger?.debug({ argv: [bin, ...full] }, 'runc');
    const child = spawn(bin, full, { stdio: ['ignore', 'pipe', 'pipe'], env: this.env() });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    // stdout is split by hand rather than through readline: readline's async iterator does not
    // settle when the stream is destroyed under it, so an abort would hang the consumer.
    const lines: string[] = [];
    let partial = '';
    let ended = false;
    let failed: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      partial += d;
      for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
        lines.push(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      notify();
    });
    child.once('error', (e) => {
      failed = e;
      notify();
    });
    const exited = new Promise<Outcome>((resolve) => {
      child.once('close', (code, sig) => {
        if (partial) lines.push(partial);
        partial = '';
        ended = true;
        resolve({ stdout: '', exitCode: code, signal: sig });
        notify();
      });
    });
    const onAbort = () => {
      child.kill('SIGKILL');
      notify();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (opts.signal?.aborted) throw abortError(opts.signal, `runc events ${id}`);
        if (failed) throw failed;
        const line = lines.shift();
        if (line !== undefined) {
          if (line.trim()) yield parseJson(`events ${id}`, line) as RuncEvent;
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const out = await exited;
      if (out.exitCode !== 0) throw this.failure(`events ${id}`, [bin, ...full], out, stderr);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
  }

  private env(): NodeJS.ProcessEnv {
    return this.options.env ? { ...process.env, ...this.options.env } : process.env;
  }

  private binary(): Promise<string> {
    if (!this.binaryPath) {
      this.binaryPath = resolveBinary(this.options.binary ?? 'runc', this.env());
      this.binaryPath.catch(() => {
        this.binaryPath = undefined;
      });
    }
    return this.binaryPath;
  }

  /**
   * On any failure, closes the container's ends of the caller's IO (a no-op once runc has them), so
   * the caller's streams end instead of waiting for a process that never started.
   */
  private async releasingIO<T>(io: RuncIO | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      io?.afterSpawn();
      throw e;
    }
  }

  // The call dir (pid file, runc's log) and the small files in it are made, read and removed
  // synchronously: microseconds each, where every async call costs a thread-pool round trip, and a
  // create made a dozen of them around runc.
  private async withCallDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), 'runc-call-'));
    try {
      return await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private failure(verb: string, full: string[], out: Outcome, logText: string): RuncError {
    return new RuncError(verb, {
      argv: full,
      exitCode: out.exitCode,
      signal: out.signal,
      runcMessage: runcMessageFrom(logText),
      stderr: logText,
    });
  }

  private async invoke(inv: Invocation): Promise<Outcome> {
    inv.signal?.throwIfAborted();
    const bin = await this.binary();
    // With container stdio, runc's stderr is the container's: its log goes to a file of its own.
    const callLog = inv.io && !this.options.log && inv.dir ? join(inv.dir, 'runc.log') : undefined;
    const globals = callLog ? argv.globalArgs({ ...this.options, log: callLog }) : this.globalArgs();
    const full = [bin, ...globals, ...inv.args];
    this.options.logger?.debug({ argv: full }, 'runc');
    const logStart = this.options.log && inv.io ? await fileSize(this.options.log) : 0;

    const io = inv.io;
    const stdio: (StdioSlot | 'pipe')[] = io
      ? [...io.stdio]
      : [inv.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'];
    for (const fd of inv.extraFiles ?? []) stdio.push(fd);

    let stdout = '';
    let stderr = '';
    let child: SpawnedProcess;
    try {
      child = await (this.options.spawner ?? nodeSpawner).spawn(bin, full.slice(1), {
        stdio,
        env: this.env(),
      });
    } catch (e) {
      io?.close();
      throw e;
    }
    io?.afterSpawn();
    const out = await new Promise<Outcome>((resolve, reject) => {
      let abortNow = () => {};
      const aborted = new Promise<void>((r) => {
        abortNow = r;
      });
      const onAbort = () => {
        child.kill('SIGKILL');
        abortNow();
      };
      inv.signal?.addEventListener('abort', onAbort, { once: true });
      // The spawn may have been awaited while the signal aborted.
      if (inv.signal?.aborted) onAbort();
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      if (inv.input !== undefined) child.stdin?.end(inv.input);
      child.stdin?.on('error', () => {});
      // With container stdio, the container keeps runc's stdout/stderr open after runc exits:
      // wait for runc's exit, not for its streams to close.
      // After an abort, a grandchild may still hold runc's pipes: runc's exit is enough then too.
      // Without container stdio, both pipes must also have ended so no output is lost.
      const ended = (s: NodeJS.ReadableStream | null) =>
        s ? new Promise<void>((r) => s.once('close', () => r())) : Promise.resolve();
      const streams = io ? Promise.resolve() : Promise.all([ended(child.stdout), ended(child.stderr)]);
      child.exited.then(
        async (exit) => {
          if (!io && !inv.signal?.aborted) await Promise.race([streams, aborted]);
          inv.signal?.removeEventListener('abort', onAbort);
          resolve({ stdout, exitCode: exit.code, signal: exit.signal });
        },
        (e: unknown) => {
          inv.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
    if (inv.signal?.aborted) throw abortError(inv.signal, `runc ${inv.verb}`);

    let logText = stderr;
    if (callLog) logText = readOptional(callLog);
    else if (this.options.log && io) logText = await readFrom(this.options.log, logStart);
    const runcFailed = runcMessageFrom(logText.split('\n').filter(isErrorLine).join('\n')) !== '';

    if (inv.foreground) {
      // The container's own exit code comes through runc's; only a logged error means runc failed.
      if (runcFailed || out.signal) throw this.failure(inv.verb, full, out, logText);
      return out;
    }
    if (out.exitCode !== 0) throw this.failure(inv.verb, full, out, logText || stderr);
    return out;
  }
}

function isErrorLine(line: string): boolean {
  return /"level":"(error|fatal|panic)"|\blevel=(error|fatal|panic)\b/.test(line);
}

function exitStatusOf(out: Outcome): number {
  if (out.exitCode !== null) return out.exitCode;
  return 128 + (out.signal ? (constants.signals[out.signal] ?? 0) : 0);
}

async function fileSize(path: string): Promise<number> {
  try {
    const { stat } = await import('node:fs/promises');
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  try {
    return (await readFile(path)).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function readPid(verb: string, pidFile: string): Promise<number> {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch (e) {
    throw new Error(`runc ${verb}: pid file ${pidFile} unreadable after runc succeeded`, { cause: e });
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!(pid > 0))
    throw new Error(`runc ${verb}: pid file ${pidFile} holds ${JSON.stringify(text)}, not a pid`);
  return pid;
}

function parseJson(verb: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`runc ${verb}: output is not JSON: ${JSON.stringify(text.slice(0, 200))}`, { cause: e });
  }
}

/**
 * runc reports a CRIU failure as "criu failed: type DUMP errno 0\nlog file: dump.log", the log
 * being relative to the work dir: attach its tail, where CRIU says what actually went wrong.
 */
async function withCriuLog(e: unknown, verb: string, workDir: string): Promise<unknown> {
  if (!(e instanceof RuncError)) return e;
  const name = /log file: (\S+)/.exec(e.runcMessage)?.[1];
  if (!name) return e;
  const text = await readFile(isAbsolute(name) ? name : join(workDir, name), 'utf8').catch(() => '');
  if (!text) return e;
  return new RuncError(verb, {
    argv: e.argv,
    exitCode: e.exitCode,
    signal: e.signal,
    runcMessage: e.runcMessage,
    stderr: e.stderr,
    criuLog: text.split('\n').slice(-20).join('\n'),
  });
}

export const MIN_RUNC_VERSION = '1.1.0';

/** Compares the numeric major.minor.patch of two runc versions ("1.1.5+ds1", "1.2.0-rc.1"). */
export function compareVersions(a: string, b: string): number {
  const nums = (v: string) =>
    (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v) ?? []).slice(1, 4).map((n) => Number(n ?? 0));
  const [x, y] = [nums(a), nums(b)];
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function parseVersion(text: string): Version {
  const v: Version = { runc: '' };
  for (const line of text.split('\n')) {
    const m = /^(runc version|commit|spec|go|libseccomp):?\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const val = (m[2] ?? '').trim();
    if (m[1] === 'runc version') v.runc = val;
    else if (m[1] === 'commit') v.commit = val;
    else if (m[1] === 'spec') v.spec = val;
    else if (m[1] === 'go') v.go = val.replace(/^version\s*/, '');
    else if (m[1] === 'libseccomp') v.libseccomp = val;
  }
  if (!v.runc) throw new Error(`runc version: unexpected output ${JSON.stringify(text.slice(0, 200))}`);
  return v;
}
