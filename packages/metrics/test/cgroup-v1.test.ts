import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  cgroupDir,
  parseCgroupMounts,
  parseProcCgroup,
  readCgroupV1Metrics,
  readProcessCgroup,
} from '../src/index.js';

const HOST_MOUNTINFO = `22 1 0:21 / / rw - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /mnt/with\\040space rw - cgroup cgroup rw,pids
`;

describe('cgroup paths', () => {
  test('parses mountinfo: combined controllers, namespace roots, cgroup2, escapes', () => {
    const m = parseCgroupMounts(HOST_MOUNTINFO);
    expect(m.v1.get('cpu')).toEqual({ mountPoint: '/sys/fs/cgroup/cpu,cpuacct', root: '/' });
    expect(m.v1.get('cpuacct')).toEqual({ mountPoint: '/sys/fs/cgroup/cpu,cpuacct', root: '/' });
    expect(m.v1.get('memory')).toEqual({ mountPoint: '/sys/fs/cgroup/memory', root: '/docker/abc' });
    expect(m.v1.get('name=systemd')?.mountPoint).toBe('/sys/fs/cgroup/systemd');
    expect(m.v1.get('pids')?.mountPoint).toBe('/mnt/with space');
    expect(m.v1.has('xattr')).toBe(true);
    expect(m.unified).toEqual({ mountPoint: '/sys/fs/cgroup/unified', root: '/' });
  });

  test('parses /proc/PID/cgroup for v1 and v2', () => {
    const pc = parseProcCgroup(
      '12:cpu,cpuacct:/default/web\n4:memory:/default/web\n1:name=systemd:/init.scope\n0::/system.slice/x.service\n',
    );
    expect(pc.v1.get('cpu')).toBe('/default/web');
    expect(pc.v1.get('cpuacct')).toBe('/default/web');
    expect(pc.v1.get('memory')).toBe('/default/web');
    expect(pc.v1.get('name=systemd')).toBe('/init.scope');
    expect(pc.unified).toBe('/system.slice/x.service');
  });

  test('cgroupDir strips a namespaced mount root and never leaves the mount', () => {
    expect(cgroupDir({ mountPoint: '/sys/fs/cgroup/memory', root: '/docker/abc' }, '/docker/abc/web')).toBe(
      '/sys/fs/cgroup/memory/web',
    );
    expect(cgroupDir({ mountPoint: '/m', root: '/' }, 'default/web')).toBe('/m/default/web');
    expect(cgroupDir({ mountPoint: '/m', root: '/' }, '../../etc')).toBe('/m/etc');
  });
});

describe('cgroup v1 reader (fake tree)', () => {
  let root: string;
  let proc: string;

  const put = async (path: string, text: string): Promise<void> => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ctrd-metrics-v1-'));
    proc = join(root, 'proc');
    const cg = (c: string, f: string): string => join(root, 'cgroup', c, 'default', 'web', f);
    const mountinfo = ['cpu', 'cpuacct', 'memory', 'blkio', 'pids', 'hugetlb', 'freezer']
      .map((c, i) => `${30 + i} 20 0:${30 + i} / ${join(root, 'cgroup', c)} rw - cgroup cgroup rw,${c}`)
      .join('\n');
    await put(join(proc, 'self', 'mountinfo'), `${mountinfo}\n`);
    await put(
      join(proc, 'partitions'),
      'major minor  #blocks  name\n\n 254        0  268435456 vda\n   8       16   1000 sdb\n',
    );

    await put(cg('cpuacct', 'cpuacct.usage'), '123456789\n');
    await put(cg('cpuacct', 'cpuacct.usage_percpu'), '100000000 23456789 \n');
    await put(cg('cpuacct', 'cpuacct.stat'), 'user 250\nsystem 50\n');
    await put(cg('cpu', 'cpu.stat'), 'nr_periods 10\nnr_throttled 3\nthrottled_time 4500\n');

    await put(
      cg('memory', 'memory.stat'),
      'cache 4096\nrss 8192\nrss_huge 0\nmapped_file 11\npgfault 77\nhierarchical_memory_limit 9223372036854771712\nhierarchical_memsw_limit 9223372036854771712\ntotal_cache 5000\ntotal_rss 9000\ntotal_unevictable 3\n',
    );
    for (const [mod, usage] of [
      ['', 12288],
      ['memsw.', 20480],
      ['kmem.', 1000],
    ] as const) {
      await put(cg('memory', `memory.${mod}usage_in_bytes`), `${usage}\n`);
      await put(cg('memory', `memory.${mod}max_usage_in_bytes`), `${usage * 2}\n`);
      await put(cg('memory', `memory.${mod}failcnt`), '1\n');
      await put(cg('memory', `memory.${mod}limit_in_bytes`), '9223372036854771712\n');
    }
    // No kmem.tcp files: an old kernel. They must be skipped, not fail the call.
    await put(cg('memory', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');

    await put(cg('pids', 'pids.current'), '7\n');
    await put(cg('pids', 'pids.max'), 'max\n');

    await put(
      cg('blkio', 'blkio.io_service_bytes_recursive'),
      '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Total 12288\nTotal 12288\n',
    );
    await put(cg('blkio', 'blkio.io_serviced_recursive'), '254:0 Read 1\n254:0 Write 2\nTotal 3\n');
    await put(cg('blkio', 'blkio.sectors_recursive'), '254:0 24\n');
    await put(cg('blkio', 'blkio.throttle.io_service_bytes'), '8:16 Read 1\nTotal 1\n');

    await put(cg('hugetlb', 'hugetlb.2MB.usage_in_bytes'), '2097152\n');
    await put(cg('hugetlb', 'hugetlb.2MB.max_usage_in_bytes'), '4194304\n');
    await put(cg('hugetlb', 'hugetlb.2MB.failcnt'), '0\n');
    await put(cg('hugetlb', 'hugetlb.1GB.usage_in_bytes'), '0\n');
    await put(cg('hugetlb', 'hugetlb.1GB.max_usage_in_bytes'), '0\n');
    await put(cg('hugetlb', 'hugetlb.1GB.failcnt'), '5\n');
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('reads every controller into containerd cgroups v1 Metrics', async () => {
    const m = await readCgroupV1Metrics('/default/web', { procRoot: proc });
    expect(m.$typeName).toBe('io.containerd.cgroups.v1.Metrics');
    expect(m.cpu?.usage).toMatchObject({
      total: 123456789n,
      perCpu: [100000000n, 23456789n],
      user: 2_500_000_000n,
      kernel: 500_000_000n,
    });
    expect(m.cpu?.throttling).toMatchObject({ periods: 10n, throttledPeriods: 3n, throttledTime: 4500n });

    expect(m.memory).toMatchObject({
      cache: 4096n,
      rss: 8192n,
      mappedFile: 11n,
      pgFault: 77n,
      hierarchicalMemoryLimit: 9223372036854771712n,
      hierarchicalSwapLimit: 9223372036854771712n,
      totalCache: 5000n,
      totalRss: 9000n,
      totalUnevictable: 3n,
    });
    expect(m.memory?.usage).toMatchObject({
      usage: 12288n,
      max: 24576n,
      failcnt: 1n,
      limit: 9223372036854771712n,
    });
    expect(m.memory?.swap).toMatchObject({ usage: 20480n, max: 40960n });
    expect(m.memory?.kernel).toMatchObject({ usage: 1000n });
    expect(m.memory?.kernelTcp).toBeUndefined();
    expect(m.memoryOomControl).toMatchObject({ oomKillDisable: 0n, underOom: 0n, oomKill: 2n });

    expect(m.pids).toMatchObject({ current: 7n, limit: 0n });

    expect(m.blkio?.ioServiceBytesRecursive.map((e) => [e.device, e.major, e.minor, e.op, e.value])).toEqual([
      ['/dev/vda', 254n, 0n, 'Read', 4096n],
      ['/dev/vda', 254n, 0n, 'Write', 8192n],
      ['/dev/vda', 254n, 0n, 'Sync', 0n],
      ['/dev/vda', 254n, 0n, 'Total', 12288n],
    ]);
    expect(m.blkio?.ioServicedRecursive).toHaveLength(2);
    expect(m.blkio?.sectorsRecursive.map((e) => [e.op, e.value])).toEqual([['', 24n]]);

    expect(m.hugetlb.map((h) => [h.pagesize, h.usage, h.max, h.failcnt])).toEqual([
      ['2MB', 2097152n, 4194304n, 0n],
      ['1GB', 0n, 0n, 5n],
    ]);
  });

  test('falls back to blkio.throttle.* when the scheduler files are empty', async () => {
    const dir = join(root, 'cgroup', 'blkio', 'other');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'blkio.io_service_bytes_recursive'), 'Total 0\n');
    await writeFile(join(dir, 'blkio.throttle.io_service_bytes'), '8:16 Write 512\nTotal 512\n');
    const m = await readCgroupV1Metrics('/other', { procRoot: proc });
    expect(m.blkio?.ioServiceBytesRecursive.map((e) => [e.device, e.op, e.value])).toEqual([
      ['/dev/sdb', 'Write', 512n],
    ]);
    // Controllers without this group are skipped.
    expect(m.memory).toBeUndefined();
    expect(m.cpu).toBeUndefined();
    expect(m.pids).toBeUndefined();
  });

  test('a missing cgroup or unmounted controllers give empty metrics, not errors', async () => {
    const m = await readCgroupV1Metrics('/no/such/group', { procRoot: proc });
    expect(m.cpu).toBeUndefined();
    expect(m.memory).toBeUndefined();
    expect(m.blkio).toBeUndefined();
    expect(m.hugetlb).toEqual([]);
    const none = await readCgroupV1Metrics('/default/web', { mounts: { v1: new Map(), unified: undefined } });
    expect(none.memory).toBeUndefined();
  });

  test('an aborted signal rejects', async () => {
    await expect(
      readCgroupV1Metrics('/default/web', { procRoot: proc, signal: AbortSignal.abort() }),
    ).rejects.toThrow();
  });
});

describe.skipIf(!existsSync('/sys/fs/cgroup/memory/memory.stat'))('cgroup v1 reader (this process)', () => {
  test('reads a non-zero memory usage for our own cgroup', async () => {
    const pc = await readProcessCgroup(process.pid);
    expect(pc.v1.get('memory')).toBeDefined();
    const m = await readCgroupV1Metrics(pc.v1);
    expect(m.memory?.usage?.usage).toBeGreaterThan(0n);
    expect(m.memory?.usage?.limit).toBeGreaterThan(0n);
    expect(m.memory?.rss ?? 0n).toBeGreaterThanOrEqual(0n);
  });

  test('readProcessCgroup rejects bad pids and names a missing process', async () => {
    await expect(readProcessCgroup(-1)).rejects.toThrow('process cgroup: pid -1 is not a positive integer');
    await expect(readProcessCgroup(2 ** 30)).rejects.toThrow(/has the process exited\?/);
  });
});
