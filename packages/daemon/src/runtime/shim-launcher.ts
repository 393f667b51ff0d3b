import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Client } from '@connectrpc/connect';
import { createClient, createUnixTransport, FailedPrecondition, Unavailable } from '@ctrd/api-proto';
import type { ReadRequest, ReadResponse } from '@ctrd/api-proto/logs';
import { ShimLogsService, type StateResponse, ShimTasksService, TaskService } from '@ctrd/api-proto/shim';

// How the daemon reaches shims: `ctrd-shim start` (prints the address), a Connect client per shim,
// and `ctrd-shim delete` for a task whose shim is gone. The daemon never imports shim code; it only
// runs the program, as containerd runs containerd-shim-runc-v2.

export type ShimClient = Client<typeof TaskService>;

/** A task's kept output, streamed (ctrd.shim.v1.Logs/Read). */
export type ReadLogs = (req: ReadRequest, signal?: AbortSignal) => AsyncIterable<ReadResponse>;

export interface ShimConnection {
  readonly client: ShimClient;
  /**
   * ctrd's shim addition (ctrd.shim.v1.Tasks/List): the init state of every task the shim hosts in
   * the connection's namespace, in one call. Absent, or NotImplemented, for other shims.
   */
  readonly listTasks?: ((signal?: AbortSignal) => Promise<StateResponse[]>) | undefined;
  /**
   * ctrd's shim addition (ctrd.shim.v1.Logs/Read): the output the shim keeps of one task it hosts.
   * Absent, or NotImplemented, for other shims.
   */
  readonly readLogs?: ReadLogs | undefined;
  close(): void;
}

/** What `ctrd-shim delete` prints: the task's last known exit. */
export interface DeadTaskExit {
  pid: number;
  exitStatus: number;
  exitedAt: Date;
}

export interface ShimLauncher {
  /** Makes sure a shim serves (namespace, shimId); resolves its address. */
  start(namespace: string, shimId: string, signal?: AbortSignal): Promise<string>;
  connect(address: string, namespace: string): ShimConnection;
  /** Settles one task of a dead shim (runc delete --force, unmount, exit file). */
  cleanup(namespace: string, id: string, bundle: string, signal?: AbortSignal): Promise<DeadTaskExit>;
}

export interface ProcessLauncherOptions {
  /** The ctrd-shim program; a .js file is run with this Node. Default: the installed @ctrd/shim's. */
  shimBinary?: string | undefined;
  stateDir: string;
  /** The daemon's socket, where shims forward events. */
  daemonAddress: string;
  runcBinary?: string | undefined;
  /** Base of runc's roots: each namespace uses <runcRoot>/<ns>. */
  runcRoot: string;
  oomNotify?: boolean | undefined;
  debug?: boolean | undefined;
}

/** The installed @ctrd/shim's `ctrd-shim` bin, found through its package.json (no code is loaded). */
export function resolveShimBinary(): string {
  const require = createRequire(import.meta.url);
  let pkgPath: string;
  try {
    pkgPath = require.resolve('@ctrd/shim/package.json');
  } catch (e) {
    throw new FailedPrecondition(
      'ctrd-shim: the @ctrd/shim package is not installed: install it or set shim_binary (--shim-binary)',
      { cause: e },
    );
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: Record<string, string> | string };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['ctrd-shim'];
  if (!bin) throw new FailedPrecondition(`ctrd-shim: ${pkgPath} names no ctrd-shim bin: set shim_binary`);
  return join(dirname(pkgPath), bin);
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Node flags for a shim that is a .js file, from CTRD_SHIM_NODE_ARGS (e.g. `--cpu-prof
 * --cpu-prof-dir /tmp/prof` for the benches; Node refuses --cpu-prof in NODE_OPTIONS). The shim
 * passes its own flags on to the server process it starts.
 */
export function shimNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CTRD_SHIM_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
}

function run(bin: string, args: string[], signal?: AbortSignal): Promise<Output> {
  const [cmd, argv] = bin.endsWith('.js')
    ? [process.execPath, [...shimNodeArgs(), bin, ...args]]
    : [bin, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', (e) =>
      reject(new Unavailable(`ctrd-shim ${args[0]}: cannot run ${bin}: ${e.message}`)),
    );
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export class ProcessShimLauncher implements ShimLauncher {
  private bin: string | undefined;

  constructor(private readonly opts: ProcessLauncherOptions) {}

  // Resolved on first use, so a daemon without a shim still serves everything but tasks.
  private get shimBinary(): string {
    this.bin ??= this.opts.shimBinary || resolveShimBinary();
    return this.bin;
  }

  private runcArgs(namespace: string): string[] {
    return [
      ...(this.opts.runcBinary ? ['--runc-binary', this.opts.runcBinary] : []),
      '--runc-root',
      join(this.opts.runcRoot, namespace),
    ];
  }

  async start(namespace: string, shimId: string, signal?: AbortSignal): Promise<string> {
    const args = [
      'start',
      '--namespace',
      namespace,
      '--id',
      shimId,
      '--state-dir',
      this.opts.stateDir,
      '--address',
      this.opts.daemonAddress,
      ...this.runcArgs(namespace),
      ...(this.opts.oomNotify ? ['--oom-notify'] : []),
      ...(this.opts.debug ? ['--debug'] : []),
    ];
    const out = await run(this.shimBinary, args, signal);
    const address = out.stdout.trim().split('\n').pop() ?? '';
    if (out.code !== 0 || !address.startsWith('unix://')) {
      throw new Unavailable(
        `shim ${shimId} in namespace ${namespace}: start failed (exit ${out.code}): ${out.stderr.trim() || out.stdout.trim()}`,
      );
    }
    return address;
  }

  connect(address: string, namespace: string): ShimConnection {
    const transport = createUnixTransport({ address, namespace });
    const tasks = createClient(ShimTasksService, { transport });
    const logs = createClient(ShimLogsService, { transport });
    return {
      client: createClient(TaskService, { transport }),
      listTasks: async (signal) => (await tasks.list({}, { signal, timeoutMs: 10_000 })).tasks,
      readLogs: (req, signal) => logs.read(req, { signal }),
      close: () => transport.close(),
    };
  }

  async cleanup(namespace: string, id: string, bundle: string, signal?: AbortSignal): Promise<DeadTaskExit> {
    const args = [
      'delete',
      '--namespace',
      namespace,
      '--id',
      id,
      '--bundle',
      bundle,
      ...this.runcArgs(namespace),
    ];
    const out = await run(this.shimBinary, args, signal);
    const line = out.stdout.trim().split('\n').pop() ?? '';
    let parsed: { pid?: unknown; exit_status?: unknown; exited_at?: unknown } | undefined;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (out.code !== 0 || !parsed || typeof parsed.exit_status !== 'number') {
      throw new Unavailable(
        `task ${id} in namespace ${namespace}: ctrd-shim delete failed (exit ${out.code}): ${out.stderr.trim() || line}`,
      );
    }
    const at = typeof parsed.exited_at === 'string' ? new Date(parsed.exited_at) : new Date();
    return {
      pid: typeof parsed.pid === 'number' ? parsed.pid : 0,
      exitStatus: parsed.exit_status,
      exitedAt: Number.isNaN(at.getTime()) ? new Date() : at,
    };
  }
}
