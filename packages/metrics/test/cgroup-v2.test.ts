import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { MetricsSchema } from '@ctrd/api-proto/cgroups/v2';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  cgroupMetricsFamilies,
  formatPrometheus,
  parsePsi,
  readCgroupV1Metrics,
  readCgroupMounts,
  readCgroupV2Metrics,
  readProcessCgroup,
} from '../src/index.js';

const MAX = (1n << 64n) - 1n;

describe('cgroup v2 reader (fake tree)', () => {
  let root: string;
  let group: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ctrd-metrics-v2-'));
    group = join(root, 'unified', 'default', 'web');
    await mkdir(group, { recursive: true });
    const files: Record<string, string> = {
      'pids.current': '4\n',
      'pids.max': 'max\n',
      'cpu.stat':
        'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 8\nnr_throttled 2\nthrottled_usec 1500\nnr_bursts 1\nburst_usec 7\n',
      'cpu.pressure':
        'some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
      'memory.stat':
        'anon 8192\nfile 4096\nkernel_stack 16384\nslab 2048\nsock 0\nshmem 0\nfile_mapped 1024\nfile_dirty 0\ninactive_anon 100\nactive_anon 200\npgfault 55\npgmajfault 1\nworkingset_refault_anon 3\nthp_fault_alloc 9\n',
      'memory.current': '33554432\n',
      'memory.max': '67108864\n',
      'memory.peak': '40000000\n',
      'memory.swap.current': '0\n',
      'memory.swap.max': 'max\n',
      'memory.events': 'low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\noom_group_kill 0\n',
      'io.stat':
        '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
      'hugetlb.2MB.current': '2097152\n',
      'hugetlb.2MB.max': 'max\n',
      'hugetlb.2MB.events': 'max 3\n',
      'rdma.current': 'mlx4_0 hca_handle=2 hca_object=2000\n',
      'rdma.max': 'mlx4_0 hca_handle=max hca_object=max\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(group, name), text);
    await mkdir(join(root, 'unified', 'empty'));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('reads every file into containerd cgroups v2 Metrics', async () => {
    const m = await readCgroupV2Metrics('/default/web', { unifiedMount: join(root, 'unified') });
    expect(m.$typeName).toBe('io.containerd.cgroups.v2.Metrics');
    expect(m.pids).toMatchObject({ current: 4n, limit: MAX });
    expect(m.cpu).toMatchObject({
      usageUsec: 2500000n,
      userUsec: 2000000n,
      systemUsec: 500000n,
      nrPeriods: 8n,
      nrThrottled: 2n,
      throttledUsec: 1500n,
      nrBursts: 1n,
      burstUsec: 7n,
    });
    expect(m.cpu?.psi?.some).toMatchObject({ avg10: 1.5, avg60: 0.25, avg300: 0, total: 12345n });
    expect(m.cpu?.psi?.full).toMatchObject({ total: 0n });
    expect(m.memory).toMatchObject({
      anon: 8192n,
      file: 4096n,
      kernelStack: 16384n,
      slab: 2048n,
      fileMapped: 1024n,
      inactiveAnon: 100n,
      activeAnon: 200n,
      pgfault: 55n,
      pgmajfault: 1n,
      workingsetRefaultAnon: 3n,
      thpFaultAlloc: 9n,
      usage: 33554432n,
      usageLimit: 67108864n,
      maxUsage: 40000000n,
      swapUsage: 0n,
      swapLimit: MAX,
      swapMaxUsage: 0n,
    });
    expect(m.memory?.psi).toBeUndefined();
    expect(m.memoryEvents).toMatchObject({
      low: 0n,
      high: 0n,
      max: 6n,
      oom: 1n,
      oomKill: 1n,
      oomGroupKill: 0n,
    });
    expect(m.io?.usage.map((e) => [e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios])).toEqual([
      [254n, 0n, 4096n, 8192n, 1n, 2n],
      [8n, 16n, 1n, 0n, 1n, 0n],
    ]);
    expect(m.hugetlb.map((h) => [h.pagesize, h.current, h.max, h.failcnt])).toEqual([
      ['2MB', 2097152n, MAX, 3n],
    ]);
    expect(m.rdma?.current[0]).toMatchObject({ device: 'mlx4_0', hcaHandles: 2, hcaObjects: 2000 });
    expect(m.rdma?.limit[0]).toMatchObject({ hcaHandles: 0xffffffff, hcaObjects: 0xffffffff });
    // What Tasks.Metrics puts on the wire decodes back to the same message.
    expect(fromBinary(MetricsSchema, toBinary(MetricsSchema, m))).toEqual(m);
  });

  test('a group without controllers, or a missing group, reads as empty', async () => {
    for (const p of ['/empty', '/gone']) {
      const m = await readCgroupV2Metrics(p, { unifiedMount: join(root, 'unified') });
      expect(m.pids).toBeUndefined();
      expect(m.cpu).toBeUndefined();
      expect(m.memory).toBeUndefined();
      expect(m.io).toBeUndefined();
      expect(m.hugetlb).toEqual([]);
    }
  });

  test('finds the unified mount from mountinfo, with a clear error when there is none', async () => {
    const proc = join(root, 'proc');
    await mkdir(join(proc, 'self'), { recursive: true });
    await writeFile(
      join(proc, 'self', 'mountinfo'),
      `41 31 0:38 / ${join(root, 'unified')} rw - cgroup2 cgroup2 rw\n`,
    );
    const m = await readCgroupV2Metrics('/default/web', { procRoot: proc });
    expect(m.pids?.current).toBe(4n);
    await expect(
      readCgroupV2Metrics('/default/web', { mounts: { v1: new Map(), unified: undefined } }),
    ).rejects.toThrow('cgroup v2: no cgroup2 mount in /proc/self/mountinfo');
  });

  test('parsePsi ignores junk', () => {
    expect(parsePsi('')).toBeUndefined();
    expect(parsePsi('some avg10=x total=y\n')?.some).toMatchObject({ avg10: 0, total: 0n });
  });

  test('Prometheus samples for v2 stats carry the given labels', async () => {
    const m = await readCgroupV2Metrics('/default/web', { unifiedMount: join(root, 'unified') });
    const text = formatPrometheus(cgroupMetricsFamilies(m, { namespace: 'default', id: 'web' }));
    const l = '{namespace="default",id="web"}';
    expect(text).toContain('# TYPE container_cpu_usage_seconds_total counter\n');
    expect(text).toContain(`container_cpu_usage_seconds_total${l} 2.5\n`);
    expect(text).toContain(`container_memory_usage_bytes${l} 33554432\n`);
    expect(text).toContain(`container_memory_limit_bytes${l} 67108864\n`);
    expect(text).toContain(`container_memory_oom_kills_total${l} 1\n`);
    expect(text).toContain(`container_pids_current${l} 4\n`);
    expect(text).toContain(`container_pids_limit${l} 18446744073709551615\n`);
    expect(text).toContain(
      'container_blkio_io_service_bytes_total{namespace="default",id="web",major="254",minor="0",op="Write"} 8192\n',
    );
    expect(text).toContain(
      'container_hugetlb_failcnt_total{namespace="default",id="web",pagesize="2MB"} 3\n',
    );
  });
});

describe('cgroup Prometheus samples (v1)', () => {
  test('two containers merge into one family each', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ctrd-metrics-v1p-'));
    try {
      for (const [id, usage] of [
        ['a', 100],
        ['b', 200],
      ] as const) {
        const mem = join(root, 'memory', id);
        await mkdir(mem, { recursive: true });
        await writeFile(join(mem, 'memory.usage_in_bytes'), `${usage}\n`);
        await writeFile(join(mem, 'memory.limit_in_bytes'), '1000\n');
        await writeFile(join(mem, 'memory.stat'), 'cache 1\nrss 2\n');
        const acct = join(root, 'cpuacct', id);
        await mkdir(acct, { recursive: true });
        await writeFile(join(acct, 'cpuacct.usage'), '1500000000\n');
      }
      const mounts = {
        v1: new Map([
          ['memory', { mountPoint: join(root, 'memory'), root: '/' }],
          ['cpuacct', { mountPoint: join(root, 'cpuacct'), root: '/' }],
        ]),
        unified: undefined,
      };
      const fams = [];
      for (const id of ['a', 'b']) {
        const m = await readCgroupV1Metrics(`/${id}`, { mounts });
        fams.push(...cgroupMetricsFamilies(m, { namespace: 'default', id }));
      }
      const text = formatPrometheus(fams);
      expect(text.match(/# TYPE container_memory_usage_bytes gauge/g)).toHaveLength(1);
      expect(text).toContain('container_memory_usage_bytes{namespace="default",id="a"} 100\n');
      expect(text).toContain('container_memory_usage_bytes{namespace="default",id="b"} 200\n');
      expect(text).toContain('container_memory_limit_bytes{namespace="default",id="b"} 1000\n');
      expect(text).toContain('container_cpu_usage_seconds_total{namespace="default",id="a"} 1.5\n');
      expect(text).not.toContain('container_pids_current');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!existsSync('/proc/self/cgroup'))('cgroup v2 reader (this process)', () => {
  test('reads CPU usage of our own unified cgroup when one is mounted', async () => {
    const mounts = await readCgroupMounts();
    const pc = await readProcessCgroup('self');
    if (!mounts.unified || pc.unified === undefined) return;
    const m = await readCgroupV2Metrics(pc.unified, { mounts });
    // Hybrid hosts (this one) enable no controllers in the v2 tree, but every group has cpu.stat (4.15+).
    expect(m.cpu?.usageUsec).toBeGreaterThan(0n);
  });
});
