import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DaemonProcess } from './helpers/daemon.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { type Run, runCommand } from './helpers/run.js';

// Shared by the tasks e2e tests: a busybox rootfs, the stock ctr against a private ctrd, and a
// cleanup that finds what a test left (shims under its state dir, runc containers under its runc
// root, mounts and cgroups of its namespaces) by its own paths and pids, never by name.

export const CTR = '/usr/bin/ctr';
const execP = promisify(execFile);

export type { Run } from './helpers/run.js';

export function ctrRun(d: DaemonProcess, args: string[], timeoutMs = 30_000): Promise<Run> {
  return runCommand(CTR, ['--address', d.socket, ...args], { timeout: timeoutMs });
}

export async function ctrOk(d: DaemonProcess, args: string[]): Promise<string> {
  const r = await ctrRun(d, args);
  if (r.code !== 0) {
    const log = d.logs().split('\n').slice(-20).join('\n');
    throw new Error(`ctr ${args.join(' ')} failed (${r.code}): ${r.stderr}\nlast daemon log lines:\n${log}`);
  }
  return r.stdout;
}

/** A busybox rootfs (the shared e2e builder), returned for convenience. */
export async function busyboxRootfs(dir: string): Promise<string> {
  await buildBusyboxRootfs(dir);
  return dir;
}

/** `ctr t ls` rows as {id, pid, status}. */
export function parseTaskList(out: string): { id: string; pid: number; status: string }[] {
  return out
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [id, pid, status] = l.trim().split(/\s+/);
      return { id: id ?? '', pid: Number(pid), status: status ?? '' };
    });
}

/** Pids of processes whose command line mentions `needle` (our private state dir). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) out.push(Number(e));
    } catch {}
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0): look at its state.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export function zombieChildrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const m = /^\d+ \(.*\) (\S) (\d+)/.exec(stat);
      if (m && m[1] === 'Z' && Number(m[2]) === pid) out.push(Number(e));
    } catch {}
  }
  return out;
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(dir));
}

/** Mounted cgroup hierarchies (v1 controllers and the unified one), not their alias symlinks. */
function hierarchies(): string[] {
  return readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
}

/** Container cgroups (ctr puts them at /<ns>/<id>) still there. */
export function cgroupLeftovers(namespaces: readonly string[]): string[] {
  const out: string[] = [];
  for (const ctl of hierarchies()) {
    for (const ns of namespaces) {
      const p = `/sys/fs/cgroup/${ctl}/${ns}`;
      if (!existsSync(p)) continue;
      for (const sub of readdirSync(p, { withFileTypes: true }))
        if (sub.isDirectory()) out.push(join(p, sub.name));
    }
  }
  return out;
}

/**
 * Whatever a test left behind: its shims (processes naming its dir), its containers (runc state
 * under the daemon's `state` dir, and any process still in a cgroup of its private namespaces,
 * e.g. one reparented to init after its shim was killed), mounts under its dir, its cgroups.
 */
export async function sweep(dir: string, state: string, namespaces: readonly string[]): Promise<void> {
  const kill = (pid: number): void => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  };
  for (const pid of pidsMentioning(dir)) kill(pid);
  for (const cg of cgroupLeftovers(namespaces)) {
    const procs = readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    for (const pid of procs) kill(Number(pid));
  }
  // Killed processes leave their cgroups a moment later.
  const populated = () =>
    cgroupLeftovers(namespaces).some((cg) => {
      try {
        return readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim() !== '';
      } catch {
        return false;
      }
    });
  for (const end = Date.now() + 30_000; populated() && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 100));
  const runcRoot = join(state, 'runc');
  for (const ns of await readdir(runcRoot).catch(() => [])) {
    for (const id of await readdir(join(runcRoot, ns)).catch(() => [])) {
      await execP('runc', ['--root', join(runcRoot, ns), 'delete', '--force', id]).catch(() => {});
    }
  }
  for (const m of mountsUnder(dir).reverse()) await execP('umount', ['-l', m]).catch(() => {});
  // Leaf groups first; rmdir only removes empty cgroups, never a process's.
  for (const p of cgroupLeftovers(namespaces)) await execP('rmdir', [p]).catch(() => {});
  for (const ctl of hierarchies())
    for (const ns of namespaces) await execP('rmdir', [`/sys/fs/cgroup/${ctl}/${ns}`]).catch(() => {});
}
