import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Facts about the machine and its processes that the benches print: memory from /proc, versions of
// the tools under test. Everything is read, nothing is changed.

export const execP = promisify(execFile);

/** kB → MB (decimal MiB as `free -m` prints them). */
export const mb = (kb) => kb / 1024;

export function meminfo() {
  const out = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Proportional set size of one process in kB (shared pages split between their users), 0 if gone. */
export function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU time (user + system, all threads) of one process in ms, 0 if gone. /proc counts in clock
 * ticks: USER_HZ, 100 on every Linux architecture the benches run on.
 */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

export function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Live (not zombie) process? */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Pids whose command line has an argument equal to `arg` (e.g. our private socket path). */
export function pidsWithArg(arg) {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    if (cmdline(Number(e)).includes(arg)) out.push(Number(e));
  }
  return out;
}

export function mountsUnder(dir) {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/** Mounted cgroup hierarchies (v1 controllers and the unified one), not their alias symlinks. */
export function cgroupHierarchies() {
  return readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join('/sys/fs/cgroup', e.name));
}

async function version(bin, args, pick) {
  try {
    const { stdout } = await execP(bin, args);
    return pick(stdout);
  } catch {
    return 'unknown';
  }
}

export async function machine() {
  const mem = meminfo();
  return {
    nproc: cpus().length,
    memTotalMb: Math.round(mb(mem.MemTotal ?? 0)),
    kernel: release(),
    node: process.version,
    runc: await version('runc', ['--version'], (s) => s.split('\n')[0]?.replace(/^runc version /, '') ?? ''),
    containerd: existsSync('/usr/bin/containerd')
      ? await version('/usr/bin/containerd', ['--version'], (s) => s.trim().split(/\s+/)[2] ?? '')
      : 'not installed',
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

export function machineTable(m) {
  return [
    '| machine | kernel | node | runc | containerd | date |',
    '|---|---|---|---|---|---|',
    `| ${m.nproc} cpus, ${m.memTotalMb} MB | ${m.kernel} | ${m.node} | ${m.runc} | ${m.containerd} | ${m.date} |`,
  ].join('\n');
}
