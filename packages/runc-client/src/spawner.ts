import { spawn as nodeSpawn } from 'node:child_process';
import { constants } from 'node:os';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { errno, errnoName, loadLibc } from './libc.js';

// How runc processes are started, as go-runc's ProcessMonitor: an interface the caller may replace.
// The default is Node's child_process. Node forks (clone without CLONE_VM), so each spawn copies the
// parent's page tables while the event loop waits: about 1 ms at 50 MB of RSS, 7 ms at 150 MB. A shim
// that starts hundreds of containers spends a third of its time there. posixSpawner uses glibc's
// posix_spawn (clone with CLONE_VM|CLONE_VFORK: no copy, ~0.3 ms whatever the size); its exits are
// collected by the caller's reaper, which must then be the only one to wait for them.

/** One fd of the child: a parent fd to hand over, a new pipe, /dev/null, or the parent's own fd. */
export type SpawnSlot = number | 'pipe' | 'ignore' | 'inherit';

export interface SpawnOptions {
  /** fd 0, 1, 2, then extra fds (3, 4, ...). */
  stdio: readonly SpawnSlot[];
  env: NodeJS.ProcessEnv;
}

export interface SpawnExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedProcess {
  readonly pid: number;
  /** The parent's ends of 'pipe' slots 0, 1, 2. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves when the process has exited; rejects if it could not be started. */
  readonly exited: Promise<SpawnExit>;
  kill(signal: NodeJS.Signals): void;
}

export interface Spawner {
  /** Starts `file` (an absolute path) with `args` (argv[1..]). Throws (or rejects) if it cannot. */
  spawn(file: string, args: readonly string[], opts: SpawnOptions): SpawnedProcess | Promise<SpawnedProcess>;
}

/** child_process.spawn: works anywhere, Node reaps the child. */
export const nodeSpawner: Spawner = {
  spawn(file, args, opts) {
    const child = nodeSpawn(file, [...args], { stdio: [...opts.stdio], env: opts.env });
    const exited = new Promise<SpawnExit>((resolve, reject) => {
      child.once('error', (e) => {
        if (child.pid === undefined) reject(e);
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    exited.catch(() => {});
    return {
      get pid() {
        return child.pid ?? 0;
      },
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      kill: (signal) => {
        child.kill(signal);
      },
    };
  },
};

export interface PosixSpawnerOptions {
  /**
   * Resolves with the exit status (code, or 128+signal) of `pid`, a child of this process. The
   * shim's reaper does this; nothing else in the process may wait for the pid.
   */
  waitExit(pid: number): Promise<number>;
}

const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;
// glibc's posix_spawn_file_actions_t is 80 bytes on 64-bit Linux; room to spare.
const FILE_ACTIONS_SIZE = 256;

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** Splits an exit status as the reaper reports it (code, or 128+signal) into code and signal. */
export function exitFromStatus(status: number): SpawnExit {
  const signal = status > 128 ? signalNames.get(status - 128) : undefined;
  return signal ? { code: null, signal } : { code: status, signal: null };
}

function libcError(call: string, code: number): NodeJS.ErrnoException {
  const name = errnoName(code) ?? `errno ${code}`;
  const err = new Error(`${call}: ${name}`) as NodeJS.ErrnoException;
  err.code = name;
  err.errno = code;
  return err;
}

/**
 * posix_spawn through libc (koffi); Linux with glibc only. The call runs on koffi's worker thread, so
 * the event loop is not held while the kernel sets up the child and execs it.
 */
export function posixSpawner(opts: PosixSpawnerOptions): Spawner {
  return {
    async spawn(file, args, spawnOpts) {
      const libc = loadLibc();
      const fa = Buffer.alloc(FILE_ACTIONS_SIZE);
      if (libc.spawnFileActionsInit(fa) !== 0) throw libcError('posix_spawn_file_actions_init', errno());
      // Parent ends to wrap after the spawn, and child ends to close in the parent.
      const parentEnds: (number | undefined)[] = [];
      const childEnds: number[] = [];
      try {
        spawnOpts.stdio.forEach((slot, fd) => {
          if (slot === 'inherit') return;
          if (slot === 'ignore') {
            const rc = libc.spawnFileActionsAddOpen(fa, fd, '/dev/null', O_RDWR, 0);
            if (rc !== 0) throw libcError('posix_spawn_file_actions_addopen', rc);
            return;
          }
          let from = slot;
          if (slot === 'pipe') {
            const fds = new Int32Array(2);
            if (libc.pipe2(fds, O_CLOEXEC) !== 0) throw libcError('pipe2', errno());
            // fd 0 is read by the child; 1, 2 and extras are written by it.
            const [parent, child] = fd === 0 ? [fds[1]!, fds[0]!] : [fds[0]!, fds[1]!];
            parentEnds[fd] = parent;
            childEnds.push(child);
            from = child;
          }
          // dup2 leaves the new fd without FD_CLOEXEC, so exactly these reach the child.
          const rc = libc.spawnFileActionsAddDup2(fa, from as number, fd);
          if (rc !== 0) throw libcError('posix_spawn_file_actions_adddup2', rc);
        });
        const env = Object.entries(spawnOpts.env)
          .filter((e): e is [string, string] => e[1] !== undefined)
          .map(([k, v]) => `${k}=${v}`);
        const pidOut = new Int32Array(1);
        const rc = await new Promise<number>((resolve, reject) =>
          libc.posixSpawnAsync(pidOut, file, fa, null, [file, ...args, null], [...env, null], (err, r) =>
            err ? reject(err) : resolve(r),
          ),
        );
        if (rc !== 0) throw libcError(`posix_spawn ${file}`, rc);
        const pid = pidOut[0]!;
        for (const fd of childEnds) libc.close(fd);
        childEnds.length = 0;
        const wrap = (fd: number | undefined, readable: boolean) =>
          fd === undefined ? null : new Socket({ fd, readable, writable: !readable });
        const stdin = wrap(parentEnds[0], false);
        const stdout = wrap(parentEnds[1], true);
        const stderr = wrap(parentEnds[2], true);
        for (const fd of parentEnds.slice(3)) if (fd !== undefined) libc.close(fd);
        parentEnds.length = 0;
        const exited = opts.waitExit(pid).then(exitFromStatus);
        return {
          pid,
          stdin,
          stdout,
          stderr,
          exited,
          kill: (signal) => {
            try {
              process.kill(pid, signal);
            } catch {}
          },
        };
      } catch (e) {
        for (const fd of [...childEnds, ...parentEnds]) if (fd !== undefined) libc.close(fd);
        throw e;
      } finally {
        libc.spawnFileActionsDestroy(fa);
      }
    },
  };
}
