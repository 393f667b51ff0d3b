import { create } from '@bufbuild/protobuf';
import {
  CPUStatSchema,
  HugeTlbStatSchema,
  type IOEntry,
  IOEntrySchema,
  IOStatSchema,
  MemoryEventsSchema,
  MemoryStatSchema,
  type Metrics,
  MetricsSchema,
  PidsStatSchema,
  type PSIStats,
  PSIDataSchema,
  PSIStatsSchema,
  type RdmaEntry,
  RdmaEntrySchema,
  RdmaStatSchema,
} from '@ctrd/api-proto/cgroups/v2';
import { join } from 'node:path';
import { listDir, parseKeyValues, readKeyValues, readText, readUint64 } from './cgroup-files.js';
import { type CgroupMounts, cgroupDir, readCgroupMounts } from './cgroup-paths.js';
import { hugetlbSizes } from './cgroup-v1.js';

export type CgroupV2Metrics = Metrics;

export interface CgroupV2Options {
  /** The cgroup2 mount point; default: found in /proc/self/mountinfo. */
  unifiedMount?: string;
  mounts?: CgroupMounts;
  procRoot?: string;
  signal?: AbortSignal;
}

/** PSI lines: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0". */
export function parsePsi(text: string): PSIStats | undefined {
  const psi = create(PSIStatsSchema);
  let any = false;
  for (const line of text.split('\n')) {
    const [kind, ...pairs] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const data = create(PSIDataSchema);
    for (const pair of pairs) {
      const [k, v = ''] = pair.split('=');
      if (k === 'total') data.total = /^\d+$/.test(v) ? BigInt(v) : 0n;
      else if (k === 'avg10' || k === 'avg60' || k === 'avg300') data[k] = Number.parseFloat(v) || 0;
    }
    psi[kind] = data;
    any = true;
  }
  return any ? psi : undefined;
}

/** io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function parseIoStat(text: string): IOEntry[] {
  const out: IOEntry[] = [];
  for (const line of text.split('\n')) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    const mm = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!mm) continue;
    const e = create(IOEntrySchema, { major: BigInt(mm[1]!), minor: BigInt(mm[2]!) });
    for (const pair of pairs) {
      const [k, v = ''] = pair.split('=');
      if (!/^\d+$/.test(v)) continue;
      if (k === 'rbytes' || k === 'wbytes' || k === 'rios' || k === 'wios') e[k] = BigInt(v);
    }
    out.push(e);
  }
  return out;
}

/** rdma.current / rdma.max lines: "mlx4_0 hca_handle=2 hca_object=2000" ("max" is 2^32-1). */
export function parseRdma(text: string): RdmaEntry[] {
  const out: RdmaEntry[] = [];
  const num = (v: string): number => (v === 'max' ? 0xffffffff : Number.parseInt(v, 10) >>> 0);
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const e = create(RdmaEntrySchema, { device: f[0]! });
    for (const pair of f.slice(1)) {
      const [k, v = ''] = pair.split('=');
      if (k === 'hca_handle') e.hcaHandles = num(v);
      else if (k === 'hca_object') e.hcaObjects = num(v);
    }
    out.push(e);
  }
  return out;
}

/**
 * containerd's io.containerd.cgroups.v2.Metrics for a cgroup at `path` under the unified mount (e.g.
 * readProcessCgroup(pid).unified). Controllers not enabled for the group and files the kernel lacks
 * are left out rather than failing the call.
 */
export async function readCgroupV2Metrics(
  path: string,
  options: CgroupV2Options = {},
): Promise<CgroupV2Metrics> {
  const { signal } = options;
  let mountPoint = options.unifiedMount;
  let root = '/';
  if (mountPoint === undefined) {
    const mounts = options.mounts ?? (await readCgroupMounts({ procRoot: options.procRoot, signal }));
    if (!mounts.unified)
      throw new Error('cgroup v2: no cgroup2 mount in /proc/self/mountinfo: mount it or use v1');
    mountPoint = mounts.unified.mountPoint;
    root = mounts.unified.root;
  }
  const dir = cgroupDir({ mountPoint, root }, path);
  const file = (name: string): string => join(dir, name);
  const m = create(MetricsSchema);

  const [pidsCurrent, pidsMax, cpuStat, cpuPsi] = await Promise.all([
    readUint64(file('pids.current'), signal),
    readUint64(file('pids.max'), signal),
    readKeyValues(file('cpu.stat'), signal),
    readText(file('cpu.pressure'), signal),
  ]);
  if (pidsCurrent !== undefined)
    m.pids = create(PidsStatSchema, { current: pidsCurrent, limit: pidsMax ?? 0n });
  if (cpuStat) {
    const c = (k: string): bigint => cpuStat.get(k) ?? 0n;
    m.cpu = create(CPUStatSchema, {
      usageUsec: c('usage_usec'),
      userUsec: c('user_usec'),
      systemUsec: c('system_usec'),
      nrPeriods: c('nr_periods'),
      nrThrottled: c('nr_throttled'),
      throttledUsec: c('throttled_usec'),
      nrBursts: c('nr_bursts'),
      burstUsec: c('burst_usec'),
      psi: cpuPsi === undefined ? undefined : parsePsi(cpuPsi),
    });
  }

  const names = ['current', 'max', 'peak', 'swap.current', 'swap.max', 'swap.peak'];
  const [memStat, memEvents, memPsi, ...memValues] = await Promise.all([
    readKeyValues(file('memory.stat'), signal),
    readKeyValues(file('memory.events'), signal),
    readText(file('memory.pressure'), signal),
    ...names.map((n) => readUint64(file(`memory.${n}`), signal)),
  ]);
  const [usage, usageLimit, maxUsage, swapUsage, swapLimit, swapMaxUsage] = memValues as (
    | bigint
    | undefined
  )[];
  if (memStat || usage !== undefined) {
    const s = (k: string): bigint => memStat?.get(k) ?? 0n;
    m.memory = create(MemoryStatSchema, {
      anon: s('anon'),
      file: s('file'),
      kernelStack: s('kernel_stack'),
      slab: s('slab'),
      sock: s('sock'),
      shmem: s('shmem'),
      fileMapped: s('file_mapped'),
      fileDirty: s('file_dirty'),
      fileWriteback: s('file_writeback'),
      anonThp: s('anon_thp'),
      inactiveAnon: s('inactive_anon'),
      activeAnon: s('active_anon'),
      inactiveFile: s('inactive_file'),
      activeFile: s('active_file'),
      unevictable: s('unevictable'),
      slabReclaimable: s('slab_reclaimable'),
      slabUnreclaimable: s('slab_unreclaimable'),
      pgfault: s('pgfault'),
      pgmajfault: s('pgmajfault'),
      workingsetRefault: s('workingset_refault'),
      workingsetActivate: s('workingset_activate'),
      workingsetNodereclaim: s('workingset_nodereclaim'),
      workingsetRefaultAnon: s('workingset_refault_anon'),
      workingsetRefaultFile: s('workingset_refault_file'),
      workingsetActivateAnon: s('workingset_activate_anon'),
      workingsetActivateFile: s('workingset_activate_file'),
      pgrefill: s('pgrefill'),
      pgscan: s('pgscan'),
      pgsteal: s('pgsteal'),
      pgactivate: s('pgactivate'),
      pgdeactivate: s('pgdeactivate'),
      pglazyfree: s('pglazyfree'),
      pglazyfreed: s('pglazyfreed'),
      thpFaultAlloc: s('thp_fault_alloc'),
      thpCollapseAlloc: s('thp_collapse_alloc'),
      usage: usage ?? 0n,
      usageLimit: usageLimit ?? 0n,
      maxUsage: maxUsage ?? 0n,
      swapUsage: swapUsage ?? 0n,
      swapLimit: swapLimit ?? 0n,
      swapMaxUsage: swapMaxUsage ?? 0n,
      psi: memPsi === undefined ? undefined : parsePsi(memPsi),
    });
  }
  if (memEvents) {
    const e = (k: string): bigint => memEvents.get(k) ?? 0n;
    m.memoryEvents = create(MemoryEventsSchema, {
      low: e('low'),
      high: e('high'),
      max: e('max'),
      oom: e('oom'),
      oomKill: e('oom_kill'),
      oomGroupKill: e('oom_group_kill'),
    });
  }

  const [ioStat, ioPsi, rdmaCurrent, rdmaMax, files] = await Promise.all([
    readText(file('io.stat'), signal),
    readText(file('io.pressure'), signal),
    readText(file('rdma.current'), signal),
    readText(file('rdma.max'), signal),
    listDir(dir),
  ]);
  if (ioStat !== undefined || ioPsi !== undefined) {
    m.io = create(IOStatSchema, {
      usage: ioStat === undefined ? [] : parseIoStat(ioStat),
      psi: ioPsi === undefined ? undefined : parsePsi(ioPsi),
    });
  }
  if (rdmaCurrent !== undefined || rdmaMax !== undefined) {
    m.rdma = create(RdmaStatSchema, {
      current: parseRdma(rdmaCurrent ?? ''),
      limit: parseRdma(rdmaMax ?? ''),
    });
  }
  for (const size of hugetlbSizes(files ?? [], 'current')) {
    const [current, max, events] = await Promise.all([
      readUint64(file(`hugetlb.${size}.current`), signal),
      readUint64(file(`hugetlb.${size}.max`), signal),
      readText(file(`hugetlb.${size}.events`), signal),
    ]);
    m.hugetlb.push(
      create(HugeTlbStatSchema, {
        pagesize: size,
        current: current ?? 0n,
        max: max ?? 0n,
        // hugetlb.<size>.events is "max N": allocations that failed at the limit.
        failcnt: events === undefined ? 0n : (parseKeyValues(events).get('max') ?? 0n),
      }),
    );
  }
  signal?.throwIfAborted();
  return m;
}
