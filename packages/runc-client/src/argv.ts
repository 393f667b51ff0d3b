import { RuncValidationError } from './errors.js';
import type {
  CheckpointOptions,
  CreateOptions,
  DeleteOptions,
  EventsOptions,
  ExecOptions,
  KillOptions,
  RestoreOptions,
  RuncOptions,
  RunOptions,
  Signal,
} from './types.js';

// Pure argv builders, one per verb: what `runc` is called with, nothing run. Global flags precede
// the verb, as runc's CLI requires.

type Flags = string[];

const flag = (out: Flags, on: boolean | undefined, name: string) => {
  if (on) out.push(name);
};
const value = (out: Flags, v: string | number | undefined, name: string) => {
  if (v !== undefined) out.push(name, String(v));
};
const each = (out: Flags, vs: readonly (string | number)[] | undefined, name: string) => {
  for (const v of vs ?? []) out.push(name, String(v));
};
const socketPath = (s: string | { path: string } | undefined) => (typeof s === 'object' ? s.path : s);

export function globalArgs(o: RuncOptions): Flags {
  const a: Flags = [];
  value(a, o.root, '--root');
  value(a, o.log, '--log');
  value(a, o.logFormat ?? 'json', '--log-format');
  flag(a, o.systemdCgroup, '--systemd-cgroup');
  if (o.rootless !== undefined) a.push('--rootless', String(o.rootless));
  flag(a, o.debug, '--debug');
  value(a, o.criu, '--criu');
  return a;
}

function preserveFds(a: Flags, o: { preserveFds?: number; extraFiles?: number[] }) {
  const n = o.preserveFds ?? (o.extraFiles?.length ? o.extraFiles.length : undefined);
  if (n) a.push('--preserve-fds', String(n));
}

export function createArgs(id: string, bundle: string, o: Omit<CreateOptions, 'io'> = {}): Flags {
  const a: Flags = ['create', '--bundle', bundle];
  value(a, socketPath(o.consoleSocket), '--console-socket');
  value(a, o.pidFile, '--pid-file');
  flag(a, o.noPivot, '--no-pivot');
  flag(a, o.noNewKeyring, '--no-new-keyring');
  preserveFds(a, o);
  a.push(id);
  return a;
}

export function runArgs(id: string, bundle: string, o: Omit<RunOptions, 'io'> = {}): Flags {
  const a: Flags = ['run', '--bundle', bundle];
  value(a, socketPath(o.consoleSocket), '--console-socket');
  flag(a, o.detach, '--detach');
  flag(a, o.keep, '--keep');
  value(a, o.pidFile, '--pid-file');
  flag(a, o.noSubreaper, '--no-subreaper');
  flag(a, o.noPivot, '--no-pivot');
  flag(a, o.noNewKeyring, '--no-new-keyring');
  preserveFds(a, o);
  a.push(id);
  return a;
}

export function startArgs(id: string): Flags {
  return ['start', id];
}

/** `processFile` is where the Runc object wrote `o.process`. */
export function execArgs(id: string, o: Omit<ExecOptions, 'io'>, processFile?: string): Flags {
  const a: Flags = ['exec'];
  value(a, socketPath(o.consoleSocket), '--console-socket');
  flag(a, o.detach, '--detach');
  value(a, o.pidFile, '--pid-file');
  preserveFds(a, o);
  each(a, o.cgroup, '--cgroup');
  flag(a, o.ignorePaused, '--ignore-paused');
  if (processFile !== undefined) {
    a.push('--process', processFile, id);
    return a;
  }
  if (!o.args || o.args.length === 0) {
    throw new RuncValidationError(
      `runc exec ${id}: no process; pass { process } (an OCI process spec) or { args }`,
    );
  }
  value(a, o.cwd, '--cwd');
  each(a, o.env, '--env');
  flag(a, o.tty, '--tty');
  value(a, o.user, '--user');
  if (o.additionalGids?.length) each(a, o.additionalGids, '--additional-gids');
  value(a, o.processLabel, '--process-label');
  value(a, o.apparmor, '--apparmor');
  flag(a, o.noNewPrivs, '--no-new-privs');
  each(a, o.caps, '--cap');
  a.push(id, ...o.args);
  return a;
}

/** A signal as runc accepts it: a number, or a name with or without SIG. */
export function signalArg(sig: Signal): string {
  if (typeof sig === 'number') {
    if (!Number.isInteger(sig) || sig < 1 || sig > 64) {
      throw new RuncValidationError(
        `runc kill: signal ${sig} is out of range; use 1..64 or a name like "SIGTERM"`,
      );
    }
    return String(sig);
  }
  const s = sig.trim().toUpperCase();
  if (/^\d+$/.test(s)) return signalArg(Number(s));
  if (!/^(SIG)?[A-Z][A-Z0-9+-]*$/.test(s)) {
    throw new RuncValidationError(
      `runc kill: signal ${JSON.stringify(sig)} is not a signal name; use e.g. "SIGTERM", "KILL" or 9`,
    );
  }
  return s;
}

export function killArgs(id: string, sig: Signal, o: KillOptions = {}): Flags {
  const a: Flags = ['kill'];
  flag(a, o.all, '--all');
  a.push(id, signalArg(sig));
  return a;
}

export function deleteArgs(id: string, o: DeleteOptions = {}): Flags {
  const a: Flags = ['delete'];
  flag(a, o.force, '--force');
  a.push(id);
  return a;
}

export function stateArgs(id: string): Flags {
  return ['state', id];
}

export function listArgs(): Flags {
  return ['list', '--format', 'json'];
}

export function psArgs(id: string): Flags {
  return ['ps', '--format', 'json', id];
}

export function pauseArgs(id: string): Flags {
  return ['pause', id];
}

export function resumeArgs(id: string): Flags {
  return ['resume', id];
}

/** The resources document goes to runc's stdin. */
export function updateArgs(id: string): Flags {
  return ['update', '--resources', '-', id];
}

function criuCommon(
  a: Flags,
  o: Pick<
    CheckpointOptions,
    | 'imagePath'
    | 'workPath'
    | 'tcpEstablished'
    | 'externalUnixSockets'
    | 'shellJob'
    | 'fileLocks'
    | 'manageCgroupsMode'
    | 'emptyNamespaces'
    | 'autoDedup'
    | 'lazyPages'
  >,
) {
  value(a, o.imagePath, '--image-path');
  value(a, o.workPath, '--work-path');
  flag(a, o.tcpEstablished, '--tcp-established');
  flag(a, o.externalUnixSockets, '--ext-unix-sk');
  flag(a, o.shellJob, '--shell-job');
  flag(a, o.fileLocks, '--file-locks');
  value(a, o.manageCgroupsMode, '--manage-cgroups-mode');
  each(a, o.emptyNamespaces, '--empty-ns');
  flag(a, o.autoDedup, '--auto-dedup');
  flag(a, o.lazyPages, '--lazy-pages');
}

export function checkpointArgs(id: string, o: Omit<CheckpointOptions, 'signal'>): Flags {
  const a: Flags = ['checkpoint'];
  criuCommon(a, o);
  value(a, o.parentPath, '--parent-path');
  flag(a, o.leaveRunning, '--leave-running');
  value(a, o.statusFd, '--status-fd');
  value(a, o.pageServer, '--page-server');
  flag(a, o.preDump, '--pre-dump');
  a.push(id);
  return a;
}

export function restoreArgs(id: string, o: Omit<RestoreOptions, 'signal' | 'io'>): Flags {
  const a: Flags = ['restore', '--bundle', o.bundle];
  criuCommon(a, o);
  value(a, socketPath(o.consoleSocket), '--console-socket');
  flag(a, o.detach, '--detach');
  value(a, o.pidFile, '--pid-file');
  flag(a, o.noSubreaper, '--no-subreaper');
  flag(a, o.noPivot, '--no-pivot');
  value(a, o.lsmProfile, '--lsm-profile');
  value(a, o.lsmMountContext, '--lsm-mount-context');
  a.push(id);
  return a;
}

export function eventsArgs(id: string, o: { stats: true } | Omit<EventsOptions, 'signal'>): Flags {
  if ('stats' in o) return ['events', '--stats', id];
  const a: Flags = ['events'];
  if (o.intervalMs !== undefined) {
    if (!(o.intervalMs > 0)) throw new RuncValidationError(`runc events ${id}: intervalMs must be positive`);
    a.push('--interval', `${Math.round(o.intervalMs)}ms`);
  }
  a.push(id);
  return a;
}

export function versionArgs(): Flags {
  return ['--version'];
}

export function featuresArgs(): Flags {
  return ['features'];
}
