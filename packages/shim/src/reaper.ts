import type { ChildProcess } from 'node:child_process';
import * as dc from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from './logger.js';

// The shim is the subreaper of its containers: every container init and exec process is reparented to
// it when runc exits, and so is every orphan of a container that shares the host pid namespace. It
// must collect each exit status exactly and leave no zombie.
//
// libuv reaps the children Node spawned by pid. waitpid(-1) would steal their status and hang those
// calls, so the reaper only ever waits for specific pids. On a SIGCHLD it asks the kernel which child
// exited without reaping it (waitid WNOWAIT, `peekExited`) and reaps that pid, one exit at a time:
// the cost follows the exits, not the number of containers running. When that names a child Node
// spawned, or without `peekExited`, it looks at
//  - the pids it was asked to watch (container inits and execs, from runc's --pid-file);
//  - our other children, which Node did not spawn (Node's are learned from the `child_process`
//    diagnostics channel): orphans of containers. The kernel lists a process's children per thread
//    (/proc/self/task/*/children), a few reads however many processes the host runs; a sweep of
//    all of /proc (hundreds of reads with a hundred containers running) is the fallback, and the
//    safety timer's second look.
// A zombie reaped by the sweep may be a watched pid that is not registered yet (runc create returned,
// the pid file is still being read): its status is kept for a while and handed over on watch().

export interface ExitInfo {
  pid: number;
  /** Exit code, or 128+signal when a signal ended the process. */
  exitStatus: number;
  exitedAt: Date;
}

/** waitpid(pid, WNOHANG) as the reaper needs it. */
export type WaitPid = (pid: number) => { exitStatus: number } | 'running' | 'not-child';

/** A child that exited and is not reaped yet (waitid WNOHANG|WNOWAIT), or undefined. */
export type PeekExited = () => number | undefined;

export interface ReaperOptions {
  waitPid: WaitPid;
  /** Without it, every SIGCHLD reads the children lists and asks each child (see the top). */
  peekExited?: PeekExited | undefined;
  logger?: Logger | undefined;
  /** Safety sweep period in ms (default 5000); SIGCHLD does the prompt work. */
  intervalMs?: number;
  /** Minimum gap between two /proc sweeps in ms (default 500). */
  sweepThrottleMs?: number;
  procRoot?: string;
  /** Our pid (tests may pass another). */
  selfPid?: number;
  /** Read the kernel's lists of our children (default); false: watched pids and /proc sweeps only. */
  childrenLists?: boolean;
}

const UNCLAIMED_MAX = 4096;
const UNCLAIMED_TTL_MS = 60_000;

interface Watch {
  resolve: (info: ExitInfo) => void;
  promise: Promise<ExitInfo>;
}

export class Reaper {
  private readonly watched = new Map<number, Watch>();
  private readonly unclaimed = new Map<number, ExitInfo>();
  private readonly spawned = new Set<ChildProcess>();
  private readonly opts: Required<Omit<ReaperOptions, 'logger' | 'peekExited'>> &
    Pick<ReaperOptions, 'logger' | 'peekExited'>;
  /** Pids watched since the last check: each is looked at once, in case it is already gone. */
  private readonly fresh = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private childrenUnsupported = false;
  private lastSweep = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly onSigchld = () => this.schedule();
  private readonly onSpawn = (msg: unknown) => {
    const child = (msg as { process?: ChildProcess }).process;
    if (!child) return;
    this.spawned.add(child);
    child.once('exit', () => this.spawned.delete(child));
    child.once('error', () => {
      if (child.pid === undefined) this.spawned.delete(child);
    });
  };
  /** Zombies reaped that nobody watched (orphans of containers). */
  orphansReaped = 0;

  constructor(opts: ReaperOptions) {
    this.opts = {
      intervalMs: 5000,
      sweepThrottleMs: 500,
      procRoot: '/proc',
      selfPid: process.pid,
      childrenLists: true,
      ...opts,
    };
    this.childrenUnsupported = !this.opts.childrenLists;
  }

  start(): void {
    if (this.timer) return;
    dc.subscribe('child_process', this.onSpawn);
    process.on('SIGCHLD', this.onSigchld);
    this.timer = setInterval(() => this.check(true), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    process.off('SIGCHLD', this.onSigchld);
    dc.unsubscribe('child_process', this.onSpawn);
  }

  /** Resolves when `pid` (a child of this process, or soon to be one) exits. */
  watch(pid: number): Promise<ExitInfo> {
    const existing = this.watched.get(pid);
    if (existing) return existing.promise;
    const early = this.claim(pid);
    if (early) return Promise.resolve(early);
    let resolve!: (info: ExitInfo) => void;
    const promise = new Promise<ExitInfo>((r) => {
      resolve = r;
    });
    this.watched.set(pid, { resolve, promise });
    this.fresh.add(pid);
    this.schedule();
    return promise;
  }

  /** Stops watching `pid` without reaping it. */
  forget(pid: number): void {
    this.watched.delete(pid);
  }

  get watchedCount(): number {
    return this.watched.size;
  }

  /**
   * Checks our children now. With `peekExited`, the exited children are reaped one by one as the
   * kernel names them, and the pids watched since the last check are looked at once; the rest of
   * this is then the fallback, and the safety timer's full look. Where the kernel lists a process's children
   * (/proc/<pid>/task/<tid>/children), each child on the main thread's list that Node did not
   * spawn is asked waitpid(WNOHANG) (containers, orphans), and so is each watched pid not on it.
   * Without the lists, every watched pid is asked and /proc is swept for zombies, throttled.
   * `full` (the safety timer) reads every thread's list and sweeps /proc as well.
   */
  check(full = false): void {
    if (!full && this.opts.peekExited && this.reapExited(this.opts.peekExited)) {
      const fresh = [...this.fresh];
      this.fresh.clear();
      this.settleWatched(fresh);
      return;
    }
    this.fresh.clear();
    const kids = this.children(full);
    if (kids === undefined) {
      this.checkWatched(full);
      return;
    }
    let nodeKids: Set<number> | undefined;
    for (const pid of kids) {
      nodeKids ??= this.nodeChildren();
      if (nodeKids.has(pid)) continue;
      this.tryReap(pid);
    }
    // Watched pids not in that list: runc's children still (container inits until runc exits),
    // our children on another thread's list (runc, posix_spawn'ed from koffi's worker thread), or
    // gone, reaped by their parent.
    this.settleWatched(this.watched.keys(), kids);
    if (full) this.sweep();
  }

  // Reaps each exited child waitid names until none is left; false when one is Node's (libuv reaps
  // it: the peek cannot see past it) or cannot be reaped, so the caller looks the slower way.
  private reapExited(peek: PeekExited): boolean {
    let nodeKids: Set<number> | undefined;
    for (let n = 0; n < 100_000; n++) {
      let pid: number | undefined;
      try {
        pid = peek();
      } catch (e) {
        this.opts.logger?.error({ err: e }, 'waitid failed');
        return false;
      }
      if (pid === undefined) return true;
      nodeKids ??= this.nodeChildren();
      if (nodeKids.has(pid)) return false;
      const r = this.tryReap(pid);
      if (r === 'running' || r === 'not-child' || r === 'error') return false;
    }
    return false;
  }

  // Each watched pid (but those in `skip`) is reaped if it exited. One not (yet) ours may still have
  // runc or sh as its parent, alive or as a zombie, and is reparented to us when that parent goes;
  // only when /proc has no trace of it did its parent reap it: it resolves with a status kept for it,
  // or 255.
  private settleWatched(pids: Iterable<number>, skip?: Set<number>): void {
    for (const pid of pids) {
      const w = this.watched.get(pid);
      if (!w || skip?.has(pid)) continue;
      const r = this.tryReap(pid);
      if (r !== 'not-child' || this.exists(pid)) continue;
      const early = this.claim(pid);
      this.watched.delete(pid);
      w.resolve(early ?? { pid, exitStatus: 255, exitedAt: new Date() });
    }
  }

  // waitpid(pid, WNOHANG); an exit goes to its watcher, or is kept as an orphan's.
  private tryReap(pid: number): ReturnType<WaitPid> | 'error' {
    let r: ReturnType<WaitPid>;
    try {
      r = this.opts.waitPid(pid);
    } catch (e) {
      this.opts.logger?.error({ err: e, pid }, 'waitpid failed');
      return 'error';
    }
    if (r !== 'running' && r !== 'not-child')
      this.reaped({ pid, exitStatus: r.exitStatus, exitedAt: new Date() });
    return r;
  }

  // Our children from the kernel's lists: the main thread's (where orphans are reparented and
  // Node spawns) on each SIGCHLD, every thread's on a full check. Undefined when the kernel does not
  // provide the lists.
  private children(allThreads: boolean): Set<number> | undefined {
    if (this.childrenUnsupported) return undefined;
    const task = `${this.opts.procRoot}/${this.opts.selfPid}/task`;
    let tids: string[];
    try {
      tids = allThreads ? readdirSync(task) : [String(this.opts.selfPid)];
    } catch {
      this.childrenUnsupported = true;
      return undefined;
    }
    const out = new Set<number>();
    for (const tid of tids) {
      let list: string;
      try {
        list = readFileSync(`${task}/${tid}/children`, 'latin1');
      } catch (e) {
        // A thread that ended meanwhile has no file; no file at all means no CONFIG_PROC_CHILDREN.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && tid === String(this.opts.selfPid)) {
          this.childrenUnsupported = true;
          return undefined;
        }
        continue;
      }
      for (const p of list.split(' ')) if (p !== '' && p !== '\n') out.add(Number(p));
    }
    return out;
  }

  private reaped(info: ExitInfo): void {
    const w = this.watched.get(info.pid);
    if (w) {
      this.watched.delete(info.pid);
      w.resolve(info);
      return;
    }
    this.orphansReaped++;
    this.keepUnclaimed(info);
  }

  // Without the children lists: every watched pid, then a throttled /proc sweep for the rest.
  private checkWatched(forceSweep: boolean): void {
    this.settleWatched(this.watched.keys());
    const now = Date.now();
    if (forceSweep || now - this.lastSweep >= this.opts.sweepThrottleMs) {
      this.lastSweep = now;
      this.sweep();
    } else if (!this.sweepTimer) {
      this.sweepTimer = setTimeout(
        () => {
          this.sweepTimer = undefined;
          this.checkWatched(true);
        },
        this.opts.sweepThrottleMs - (now - this.lastSweep),
      );
      this.sweepTimer.unref();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.check();
    });
  }

  private claim(pid: number): ExitInfo | undefined {
    const info = this.unclaimed.get(pid);
    if (!info) return undefined;
    this.unclaimed.delete(pid);
    // A live process with that pid means the kept status belongs to an older one.
    if (Date.now() - info.exitedAt.getTime() > UNCLAIMED_TTL_MS || this.alive(pid)) return undefined;
    return info;
  }

  private alive(pid: number): boolean {
    try {
      const stat = readFileSync(`${this.opts.procRoot}/${pid}/stat`, 'latin1');
      return parseStat(stat)?.state !== 'Z';
    } catch {
      return false;
    }
  }

  private exists(pid: number): boolean {
    try {
      readFileSync(`${this.opts.procRoot}/${pid}/stat`, 'latin1');
      return true;
    } catch {
      return false;
    }
  }

  private nodeChildren(): Set<number> {
    const pids = new Set<number>();
    for (const c of this.spawned)
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) pids.add(c.pid);
    return pids;
  }

  private sweep(): void {
    let entries: string[];
    try {
      entries = readdirSync(this.opts.procRoot);
    } catch {
      return;
    }
    let nodeKids: Set<number> | undefined;
    for (const name of entries) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      let stat: string;
      try {
        stat = readFileSync(`${this.opts.procRoot}/${name}/stat`, 'latin1');
      } catch {
        continue;
      }
      const s = parseStat(stat);
      if (s?.state !== 'Z' || s.ppid !== this.opts.selfPid) continue;
      const pid = Number(name);
      nodeKids ??= this.nodeChildren();
      if (nodeKids.has(pid)) continue;
      let r: ReturnType<WaitPid>;
      try {
        r = this.opts.waitPid(pid);
      } catch {
        continue;
      }
      if (r === 'running' || r === 'not-child') continue;
      this.reaped({ pid, exitStatus: r.exitStatus, exitedAt: new Date() });
    }
  }

  private keepUnclaimed(info: ExitInfo): void {
    this.unclaimed.delete(info.pid);
    this.unclaimed.set(info.pid, info);
    while (this.unclaimed.size > UNCLAIMED_MAX) {
      const oldest = this.unclaimed.keys().next().value as number;
      this.unclaimed.delete(oldest);
    }
  }
}

/** The state letter and parent pid from a /proc/<pid>/stat line. */
export function parseStat(stat: string): { state: string; ppid: number } | undefined {
  // comm is in parentheses and may itself contain ") ", so parse after the last one.
  const end = stat.lastIndexOf(')');
  if (end === -1) return undefined;
  const fields = stat.slice(end + 2).split(' ');
  const state = fields[0];
  const ppid = Number(fields[1]);
  if (!state || !Number.isInteger(ppid)) return undefined;
  return { state, ppid };
}

/** Exit status as containerd reports it: the code, or 128+n for signal n. */
export function exitStatusOf(code: number | null, signal: number | null): number {
  if (signal !== null && signal > 0) return 128 + signal;
  return code ?? 255;
}
