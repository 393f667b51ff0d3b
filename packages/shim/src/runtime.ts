// What the shim needs from runc, in the shim's own terms. runc-runtime.ts implements it with
// @ctrd/runc-client; tests of the task logic may implement it with a fake.

/** File descriptors for the process's stdin/stdout/stderr (undefined: /dev/null). */
export interface RuntimeStdio {
  stdin?: number | undefined;
  stdout?: number | undefined;
  stderr?: number | undefined;
}

export interface RuntimeCreateOptions {
  pidFile: string;
  stdio: RuntimeStdio;
  consoleSocket?: string | undefined;
  noPivot?: boolean | undefined;
  noNewKeyring?: boolean | undefined;
}

export interface RuntimeExecOptions {
  pidFile: string;
  stdio: RuntimeStdio;
  consoleSocket?: string | undefined;
}

export interface RuntimeCheckpointOptions {
  imagePath: string;
  workPath?: string | undefined;
  leaveRunning: boolean;
  tcpEstablished: boolean;
  externalUnixSockets: boolean;
  shellJob: boolean;
  fileLocks: boolean;
  emptyNamespaces: string[];
  cgroupsMode?: string | undefined;
}

export interface ConsoleSocket {
  readonly path: string;
  /** Resolves with the pty master fd runc sends (the caller owns it). */
  receiveMaster(signal?: AbortSignal): Promise<number>;
  close(): void;
}

export interface Runtime {
  /** Creates the container; resolves with its init's pid (as runc wrote it to `opts.pidFile`). */
  create(id: string, bundle: string, opts: RuntimeCreateOptions, signal?: AbortSignal): Promise<number>;
  start(id: string, signal?: AbortSignal): Promise<void>;
  /** Starts `process` in the container, detached; resolves with its pid (as written to `opts.pidFile`). */
  exec(id: string, process: unknown, opts: RuntimeExecOptions, signal?: AbortSignal): Promise<number>;
  kill(id: string, sig: number, all: boolean, signal?: AbortSignal): Promise<void>;
  delete(id: string, force: boolean, signal?: AbortSignal): Promise<void>;
  /** The container's runc status (`created`, `running`, `paused`, `stopped`), or undefined if runc does not know it. */
  state(id: string, signal?: AbortSignal): Promise<{ status: string; pid: number } | undefined>;
  ps(id: string, signal?: AbortSignal): Promise<number[]>;
  pause(id: string, signal?: AbortSignal): Promise<void>;
  resume(id: string, signal?: AbortSignal): Promise<void>;
  update(id: string, resources: unknown, signal?: AbortSignal): Promise<void>;
  checkpoint(id: string, opts: RuntimeCheckpointOptions, signal?: AbortSignal): Promise<void>;
  newConsoleSocket(dir: string, signal?: AbortSignal): Promise<ConsoleSocket>;
}

/** True when a runtime error says the container does not exist. */
export function isNoSuchContainer(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /does not exist|container not found|no such container/i.test(msg);
}
