import { create } from '@bufbuild/protobuf';
import {
  type BlkIOEntry,
  BlkIOEntrySchema,
  BlkIOStatSchema,
  CPUStatSchema,
  CPUUsageSchema,
  HugetlbStatSchema,
  type MemoryEntry,
  MemoryEntrySchema,
  MemoryOomControlSchema,
  MemoryStatSchema,
  type Metrics,
  MetricsSchema,
  PidsStatSchema,
  ThrottleSchema,
} from '@ctrd/api-proto/cgroups/v1';
import { join } from 'node:path';
import { listDir, readKeyValues, readText, readUint64 } from './cgroup-files.js';
import { type CgroupMounts, cgroupDir, readCgroupMounts } from './cgroup-paths.js';

export type CgroupV1Metrics = Metrics;

export interface CgroupV1Options {
  /** The v1 hierarchies; default: parsed from /proc/self/mountinfo. */
  mounts?: CgroupMounts;
  /** Default /proc: /proc/self/mountinfo and /proc/partitions (device names for blkio). */
  procRoot?: string;
  /** USER_HZ, the unit of cpuacct.stat; 100 on every Linux architecture ctrd runs on. */
  clockTicks?: number;
  signal?: AbortSignal;
}

const NS_PER_SECOND = 1_000_000_000n;

/**
 * containerd's io.containerd.cgroups.v1.Metrics for a cgroup. `path` is the cgroup's path in each
 * hierarchy (containerd's static path, e.g. "/default/web"), or a per-controller map such as
 * readProcessCgroup(pid).v1. Controllers that are not mounted, and files the kernel does not offer,
 * are left out rather than failing the call.
 */
export async function readCgroupV1Metrics(
  path: string | ReadonlyMap<string, string>,
  options: CgroupV1Options = {},
): Promise<CgroupV1Metrics> {
  const { signal } = options;
  const mounts = options.mounts ?? (await readCgroupMounts({ procRoot: options.procRoot, signal }));
  const dirOf = (controller: string): string | undefined => {
    const mount = mounts.v1.get(controller);
    const p = typeof path === 'string' ? path : path.get(controller);
    return mount && p !== undefined ? cgroupDir(mount, p) : undefined;
  };
  const metrics = create(MetricsSchema);
  const ctx: Ctx = {
    dirOf,
    signal,
    procRoot: options.procRoot ?? '/proc',
    clockTicks: options.clockTicks ?? 100,
  };
  await Promise.all([
    readPids(ctx, metrics),
    readCpu(ctx, metrics),
    readMemory(ctx, metrics),
    readBlkio(ctx, metrics),
    readHugetlb(ctx, metrics),
  ]);
  signal?.throwIfAborted();
  return metrics;
}

interface Ctx {
  dirOf(controller: string): string | undefined;
  signal: AbortSignal | undefined;
  procRoot: string;
  clockTicks: number;
}

async function readPids(ctx: Ctx, m: Metrics): Promise<void> {
  const dir = ctx.dirOf('pids');
  if (!dir) return;
  const current = await readUint64(join(dir, 'pids.current'), ctx.signal);
  if (current === undefined) return;
  // v1 reports an unlimited pids.max as 0, as containerd does.
  const limit = (await readUint64(join(dir, 'pids.max'), ctx.signal, 0n)) ?? 0n;
  m.pids = create(PidsStatSchema, { current, limit });
}

async function readCpu(ctx: Ctx, m: Metrics): Promise<void> {
  const acct = ctx.dirOf('cpuacct');
  const cpu = ctx.dirOf('cpu');
  const [total, percpu, stat, throttle] = await Promise.all([
    acct ? readUint64(join(acct, 'cpuacct.usage'), ctx.signal) : undefined,
    acct ? readText(join(acct, 'cpuacct.usage_percpu'), ctx.signal) : undefined,
    acct ? readKeyValues(join(acct, 'cpuacct.stat'), ctx.signal) : undefined,
    cpu ? readKeyValues(join(cpu, 'cpu.stat'), ctx.signal) : undefined,
  ]);
  if (total === undefined && percpu === undefined && stat === undefined && throttle === undefined) return;
  const ticks = BigInt(ctx.clockTicks);
  m.cpu = create(CPUStatSchema, {
    usage: create(CPUUsageSchema, {
      total: total ?? 0n,
      user: ((stat?.get('user') ?? 0n) * NS_PER_SECOND) / ticks,
      kernel: ((stat?.get('system') ?? 0n) * NS_PER_SECOND) / ticks,
      perCpu: (percpu ?? '')
        .trim()
        .split(/\s+/)
        .filter((s) => /^\d+$/.test(s))
        .map((s) => BigInt(s)),
    }),
    throttling: throttle
      ? create(ThrottleSchema, {
          periods: throttle.get('nr_periods') ?? 0n,
          throttledPeriods: throttle.get('nr_throttled') ?? 0n,
          throttledTime: throttle.get('throttled_time') ?? 0n,
        })
      : undefined,
  });
}

async function readMemoryEntry(
  dir: string,
  module: string,
  signal?: AbortSignal,
): Promise<MemoryEntry | undefined> {
  const prefix = module ? `memory.${module}.` : 'memory.';
  const [usage, max, failcnt, limit] = await Promise.all(
    ['usage_in_bytes', 'max_usage_in_bytes', 'failcnt', 'limit_in_bytes'].map((f) =>
      readUint64(join(dir, prefix + f), signal),
    ),
  );
  if (usage === undefined) return undefined;
  return create(MemoryEntrySchema, { usage, max: max ?? 0n, failcnt: failcnt ?? 0n, limit: limit ?? 0n });
}

async function readMemory(ctx: Ctx, m: Metrics): Promise<void> {
  const dir = ctx.dirOf('memory');
  if (!dir) return;
  const [stat, usage, swap, kernel, kernelTcp, oom] = await Promise.all([
    readKeyValues(join(dir, 'memory.stat'), ctx.signal),
    readMemoryEntry(dir, '', ctx.signal),
    readMemoryEntry(dir, 'memsw', ctx.signal),
    readMemoryEntry(dir, 'kmem', ctx.signal),
    readMemoryEntry(dir, 'kmem.tcp', ctx.signal),
    readKeyValues(join(dir, 'memory.oom_control'), ctx.signal),
  ]);
  if (stat === undefined && usage === undefined) return;
  const s = (k: string): bigint => stat?.get(k) ?? 0n;
  m.memory = create(MemoryStatSchema, {
    cache: s('cache'),
    rss: s('rss'),
    rssHuge: s('rss_huge'),
    mappedFile: s('mapped_file'),
    dirty: s('dirty'),
    writeback: s('writeback'),
    pgPgIn: s('pgpgin'),
    pgPgOut: s('pgpgout'),
    pgFault: s('pgfault'),
    pgMajFault: s('pgmajfault'),
    inactiveAnon: s('inactive_anon'),
    activeAnon: s('active_anon'),
    inactiveFile: s('inactive_file'),
    activeFile: s('active_file'),
    unevictable: s('unevictable'),
    hierarchicalMemoryLimit: s('hierarchical_memory_limit'),
    hierarchicalSwapLimit: s('hierarchical_memsw_limit'),
    totalCache: s('total_cache'),
    totalRss: s('total_rss'),
    totalRssHuge: s('total_rss_huge'),
    totalMappedFile: s('total_mapped_file'),
    totalDirty: s('total_dirty'),
    totalWriteback: s('total_writeback'),
    totalPgPgIn: s('total_pgpgin'),
    totalPgPgOut: s('total_pgpgout'),
    totalPgFault: s('total_pgfault'),
    totalPgMajFault: s('total_pgmajfault'),
    totalInactiveAnon: s('total_inactive_anon'),
    totalActiveAnon: s('total_active_anon'),
    totalInactiveFile: s('total_inactive_file'),
    totalActiveFile: s('total_active_file'),
    totalUnevictable: s('total_unevictable'),
    usage,
    swap,
    kernel,
    kernelTcp,
  });
  if (oom) {
    m.memoryOomControl = create(MemoryOomControlSchema, {
      oomKillDisable: oom.get('oom_kill_disable') ?? 0n,
      underOom: oom.get('under_oom') ?? 0n,
      oomKill: oom.get('oom_kill') ?? 0n,
    });
  }
}

/** /proc/partitions: "major minor #blocks name" after two header lines. First name per device wins. */
export function parsePartitions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(2)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) continue;
    const key = `${f[0]}:${f[1]}`;
    if (!out.has(key)) out.set(key, `/dev/${f[3]}`);
  }
  return out;
}

/** blkio.* lines: "major:minor op value" or "major:minor value"; the "Total" line is skipped. */
export function parseBlkioEntries(text: string, devices: ReadonlyMap<string, string>): BlkIOEntry[] {
  const out: BlkIOEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const mm = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (!mm || f.length < 2) continue;
    const value = f.length >= 3 ? f[2]! : f[1]!;
    if (!/^\d+$/.test(value)) continue;
    out.push(
      create(BlkIOEntrySchema, {
        device: devices.get(`${mm[1]}:${mm[2]}`) ?? '',
        major: BigInt(mm[1]!),
        minor: BigInt(mm[2]!),
        op: f.length >= 3 ? f[1]! : '',
        value: BigInt(value),
      }),
    );
  }
  return out;
}

const BLKIO_FILES = [
  ['io_service_bytes_recursive', 'ioServiceBytesRecursive'],
  ['io_serviced_recursive', 'ioServicedRecursive'],
  ['io_queued_recursive', 'ioQueuedRecursive'],
  ['io_service_time_recursive', 'ioServiceTimeRecursive'],
  ['io_wait_time_recursive', 'ioWaitTimeRecursive'],
  ['io_merged_recursive', 'ioMergedRecursive'],
  ['time_recursive', 'ioTimeRecursive'],
  ['sectors_recursive', 'sectorsRecursive'],
] as const;

async function readBlkio(ctx: Ctx, m: Metrics): Promise<void> {
  const dir = ctx.dirOf('blkio');
  if (!dir) return;
  const files = await listDir(dir);
  if (!files) return;
  const partitions = await readText(join(ctx.procRoot, 'partitions'), ctx.signal);
  const devices = parsePartitions(partitions ?? '');
  const stat = create(BlkIOStatSchema);
  const read = async (name: string): Promise<BlkIOEntry[]> => {
    const text = await readText(join(dir, `blkio.${name}`), ctx.signal);
    return text === undefined ? [] : parseBlkioEntries(text, devices);
  };
  let total = 0;
  for (const [file, field] of BLKIO_FILES) {
    stat[field] = await read(file);
    total += stat[field].length;
  }
  // Without the CFQ/BFQ scheduler the *_recursive files are absent or empty; the throttle files
  // still count bytes and operations, as containerd falls back to.
  if (total === 0) {
    stat.ioServiceBytesRecursive = await read('throttle.io_service_bytes');
    stat.ioServicedRecursive = await read('throttle.io_serviced');
  }
  m.blkio = stat;
}

/** Page sizes in hugetlb.<size>.* file names, smallest first ("2MB", "1GB"). */
export function hugetlbSizes(files: readonly string[], suffix: string): string[] {
  const unit: Record<string, number> = { KB: 1, MB: 1024, GB: 1024 * 1024 };
  const sizes = new Set<string>();
  for (const f of files) {
    const m = /^hugetlb\.(\d+(?:KB|MB|GB))\.(.+)$/.exec(f);
    if (m && m[2] === suffix) sizes.add(m[1]!);
  }
  const kb = (s: string): number => Number.parseInt(s, 10) * (unit[s.slice(-2)] ?? 1);
  return [...sizes].sort((a, b) => kb(a) - kb(b));
}

async function readHugetlb(ctx: Ctx, m: Metrics): Promise<void> {
  const dir = ctx.dirOf('hugetlb');
  if (!dir) return;
  const files = await listDir(dir);
  if (!files) return;
  for (const size of hugetlbSizes(files, 'usage_in_bytes')) {
    const [usage, max, failcnt] = await Promise.all(
      ['usage_in_bytes', 'max_usage_in_bytes', 'failcnt'].map((f) =>
        readUint64(join(dir, `hugetlb.${size}.${f}`), ctx.signal),
      ),
    );
    m.hugetlb.push(
      create(HugetlbStatSchema, {
        pagesize: size,
        usage: usage ?? 0n,
        max: max ?? 0n,
        failcnt: failcnt ?? 0n,
      }),
    );
  }
}
