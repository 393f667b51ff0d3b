// Option and result types of every verb. Field names follow runc's flags in camelCase.

import type { Spawner } from './spawner.js';

export interface RuncOptions {
  /** runc binary: a path, or a name looked up in PATH (default "runc"). */
  binary?: string;
  /** --root: where runc keeps container state (default /run/runc). */
  root?: string;
  /** --log: runc's own log file. Without it, each call's errors are read from runc's stderr. */
  log?: string;
  /** --log-format (default json, which is what error parsing reads best). */
  logFormat?: 'json' | 'text';
  /** --systemd-cgroup */
  systemdCgroup?: boolean;
  /** --rootless true|false|auto */
  rootless?: boolean | 'auto';
  /** --debug */
  debug?: boolean;
  /** --criu: path of the criu binary. */
  criu?: string;
  /** Extra environment for runc (merged over process.env). */
  env?: Record<string, string>;
  /** pino-compatible logger; silent by default. */
  logger?: RuncLogger;
  /**
   * How runc is started (default: Node's child_process). posixSpawner() avoids fork's cost in a
   * large process, but its exits must be collected by the caller (a subreaper's reaper).
   */
  spawner?: Spawner;
}

export interface RuncLogger {
  debug(obj: object, msg?: string): void;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface CreateOptions extends CallOptions {
  /** Container stdio; default null IO (/dev/null). Ignored by runc when the spec asks for a terminal. */
  io?: import('./io.js').RuncIO;
  /** --pid-file; a temp file is used (and removed) when not given. */
  pidFile?: string;
  /** --console-socket: a path, or a ConsoleSocket. */
  consoleSocket?: string | { path: string };
  noPivot?: boolean;
  noNewKeyring?: boolean;
  /** --preserve-fds: extra fds (3, 4, …) to pass; they must be open in `extraFiles`. */
  preserveFds?: number;
  /** File descriptors passed as fd 3, 4, … (use with preserveFds). */
  extraFiles?: number[];
}

export interface RunOptions extends CreateOptions {
  /** --detach: return once the container runs (with its pid) instead of waiting for its exit. */
  detach?: boolean;
  /** --keep: do not delete the container after it exits. */
  keep?: boolean;
  noSubreaper?: boolean;
}

export interface ExecOptions extends CallOptions {
  /** The OCI process spec, written to a temp file for --process. */
  process?: object;
  /** Command line when no `process` is given (with the flags below). */
  args?: string[];
  cwd?: string;
  env?: string[];
  tty?: boolean;
  /** --user <uid>[:<gid>] */
  user?: string;
  additionalGids?: number[];
  processLabel?: string;
  apparmor?: string;
  noNewPrivs?: boolean;
  caps?: string[];
  /** --cgroup [<controller>:]<cgroup>, once per entry. */
  cgroup?: string[];
  ignorePaused?: boolean;
  detach?: boolean;
  io?: import('./io.js').RuncIO;
  pidFile?: string;
  consoleSocket?: string | { path: string };
  preserveFds?: number;
  extraFiles?: number[];
}

export type Signal = number | string;

export interface KillOptions extends CallOptions {
  all?: boolean;
}

export interface DeleteOptions extends CallOptions {
  force?: boolean;
}

export interface CheckpointOptions extends CallOptions {
  imagePath: string;
  workPath?: string;
  parentPath?: string;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  /** --ext-unix-sk */
  externalUnixSockets?: boolean;
  shellJob?: boolean;
  lazyPages?: boolean;
  statusFd?: number;
  /** ADDRESS:PORT */
  pageServer?: string;
  fileLocks?: boolean;
  preDump?: boolean;
  manageCgroupsMode?: 'soft' | 'full' | 'strict' | (string & {});
  /** --empty-ns, once per namespace (e.g. "network"). */
  emptyNamespaces?: string[];
  autoDedup?: boolean;
}

export interface RestoreOptions extends CallOptions {
  bundle: string;
  imagePath: string;
  workPath?: string;
  consoleSocket?: string | { path: string };
  tcpEstablished?: boolean;
  externalUnixSockets?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  manageCgroupsMode?: 'soft' | 'full' | 'strict' | (string & {});
  detach?: boolean;
  pidFile?: string;
  noSubreaper?: boolean;
  noPivot?: boolean;
  emptyNamespaces?: string[];
  autoDedup?: boolean;
  lazyPages?: boolean;
  lsmProfile?: string;
  lsmMountContext?: string;
  io?: import('./io.js').RuncIO;
}

export interface EventsOptions extends CallOptions {
  /** --interval in ms (runc's default is 5 s). */
  intervalMs?: number;
}

/** runc update's resources document (OCI LinuxResources; unchanged values may be omitted). */
export type Resources = Record<string, unknown>;

export interface Version {
  runc: string;
  commit?: string;
  spec?: string;
  go?: string;
  libseccomp?: string;
}

export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped' | (string & {});
  bundle: string;
  rootfs: string;
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/** Result of a foreground run/exec. */
export interface ExitResult {
  /** The process's exit code, or 128+signal. */
  exitStatus: number;
}

export interface DetachedResult {
  /** The container process's pid on the host (from --pid-file). */
  pid: number;
}
