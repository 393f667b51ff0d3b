import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLocation } from './cgroup-path.js';

// OOM kills show as a counter in the container's memory cgroup: `oom_kill` in memory.oom_control
// (v1) or memory.events (v2). One shared timer polls the counters of every watched task (no per-task
// timer or fd), and the shim also checks a task right before it publishes that task's exit, so an OOM
// that killed the init is reported before (never after) its /tasks/exit.

export function readOomKills(loc: CgroupLocation): number | undefined {
  const file = loc.version === 1 ? 'memory.oom_control' : 'memory.events';
  let text: string;
  try {
    text = readFileSync(join(loc.memoryDir, file), 'utf8');
  } catch {
    return undefined;
  }
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

interface Entry {
  loc: CgroupLocation;
  seen: number;
  onOom: () => void;
}

export class OomWatcher {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs = 2000) {}

  /** Starts watching; the counter's current value is the baseline. */
  add(key: string, loc: CgroupLocation, onOom: () => void): void {
    this.entries.set(key, { loc, seen: readOomKills(loc) ?? 0, onOom });
    if (!this.timer) {
      this.timer = setInterval(() => this.checkAll(), this.intervalMs);
      this.timer.unref();
    }
  }

  remove(key: string): void {
    this.entries.delete(key);
    if (this.entries.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Reads one task's counter now and reports a rise. */
  check(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    const n = readOomKills(e.loc);
    if (n !== undefined && n > e.seen) {
      e.seen = n;
      e.onOom();
    }
  }

  checkAll(): void {
    for (const key of this.entries.keys()) this.check(key);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.entries.clear();
  }
}
