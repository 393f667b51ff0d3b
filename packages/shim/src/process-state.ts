// The lifecycle of a shim process (a task's init or one of its execs), as containerd's runc shim
// keeps it: which operation each state allows. One table instead of a class per state: the shim keeps
// one of these per process, and a string costs nothing.
//
//   created ──start──▶ running ──pause──▶ paused (init only)
//      │                 │  ▲──resume──────┘
//      └──────exit───────┴──────exit──────▶ stopped ──delete──▶ deleted
//
// A created process can be deleted (the container never ran) and killed (runc kills runc-init).

export type ProcessStatus = 'created' | 'running' | 'pausing' | 'paused' | 'stopped' | 'deleted';

export type Operation =
  | 'start'
  | 'pause'
  | 'resume'
  | 'kill'
  | 'delete'
  | 'exec'
  | 'update'
  | 'checkpoint'
  | 'resize'
  | 'closeio'
  | 'pids'
  | 'stats';

const ALLOWED: Record<ProcessStatus, ReadonlySet<Operation>> = {
  created: new Set(['start', 'kill', 'delete', 'exec', 'update', 'resize', 'closeio', 'pids', 'stats']),
  running: new Set(['pause', 'kill', 'exec', 'update', 'checkpoint', 'resize', 'closeio', 'pids', 'stats']),
  pausing: new Set(['kill', 'resize', 'closeio', 'pids', 'stats']),
  paused: new Set(['resume', 'kill', 'update', 'checkpoint', 'resize', 'closeio', 'pids', 'stats']),
  stopped: new Set(['delete', 'closeio', 'resize']),
  deleted: new Set(),
};

/** Why `op` is refused in `status`, or undefined when it is allowed. */
export function refusal(status: ProcessStatus, op: Operation): string | undefined {
  if (ALLOWED[status].has(op)) return undefined;
  switch (op) {
    case 'start':
      return status === 'stopped' ? 'cannot start a stopped process' : `cannot start a ${status} process`;
    case 'delete':
      return `cannot delete a ${status} process: stop it first`;
    case 'pause':
      return status === 'paused' ? 'already paused' : `cannot pause a ${status} process`;
    case 'resume':
      return `cannot resume a ${status} process: it is not paused`;
    case 'kill':
      return status === 'stopped' ? 'process already finished' : `cannot kill a ${status} process`;
    default:
      return `cannot ${op} a ${status} process`;
  }
}

const TRANSITIONS: Record<ProcessStatus, ReadonlySet<ProcessStatus>> = {
  created: new Set(['running', 'stopped', 'deleted']),
  running: new Set(['pausing', 'paused', 'stopped']),
  pausing: new Set(['paused', 'running', 'stopped']),
  paused: new Set(['running', 'stopped']),
  stopped: new Set(['deleted']),
  deleted: new Set(),
};

/** True when a process may move from `from` to `to`. */
export function canTransition(from: ProcessStatus, to: ProcessStatus): boolean {
  return TRANSITIONS[from].has(to);
}
