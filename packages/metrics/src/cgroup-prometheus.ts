import type { CgroupV1Metrics } from './cgroup-v1.js';
import type { CgroupV2Metrics } from './cgroup-v2.js';
import type { PrometheusFamily, PrometheusType } from './prometheus.js';

type Labels = Readonly<Record<string, string>>;

class Families {
  readonly #byName = new Map<string, PrometheusFamily>();

  add(
    name: string,
    type: PrometheusType,
    help: string,
    labels: Labels,
    value: number | bigint | undefined,
  ): void {
    if (value === undefined) return;
    let f = this.#byName.get(name);
    if (!f) {
      f = { name, help, type, samples: [] };
      this.#byName.set(name, f);
    }
    f.samples.push({ labels, value });
  }

  list(): PrometheusFamily[] {
    return [...this.#byName.values()];
  }
}

const seconds = (v: bigint | undefined, perSecond: number): number | undefined =>
  v === undefined ? undefined : Number(v) / perSecond;

/**
 * Prometheus samples of one container's cgroup stats (v1 or v2), each with `labels` (the daemon passes
 * { namespace, id }). Names follow cAdvisor's container_* metrics; CPU in seconds, memory in bytes.
 * Return values from several containers can be concatenated: the exporter merges families by name.
 */
export function cgroupMetricsFamilies(
  metrics: CgroupV1Metrics | CgroupV2Metrics,
  labels: Labels,
): PrometheusFamily[] {
  const f = new Families();
  const counter = (name: string, help: string, v: number | bigint | undefined, extra?: Labels): void =>
    f.add(name, 'counter', help, extra ? { ...labels, ...extra } : labels, v);
  const gauge = (name: string, help: string, v: number | bigint | undefined, extra?: Labels): void =>
    f.add(name, 'gauge', help, extra ? { ...labels, ...extra } : labels, v);

  if (metrics.$typeName === 'io.containerd.cgroups.v1.Metrics') {
    const u = metrics.cpu?.usage;
    counter('container_cpu_usage_seconds_total', 'CPU time used', seconds(u?.total, 1e9));
    counter('container_cpu_user_seconds_total', 'CPU time used in user mode', seconds(u?.user, 1e9));
    counter('container_cpu_system_seconds_total', 'CPU time used in kernel mode', seconds(u?.kernel, 1e9));
    u?.perCpu.forEach((ns, cpu) => {
      counter('container_cpu_usage_per_cpu_seconds_total', 'CPU time used per CPU', Number(ns) / 1e9, {
        cpu: String(cpu),
      });
    });
    const t = metrics.cpu?.throttling;
    counter('container_cpu_periods_total', 'CFS enforcement periods', t?.periods);
    counter('container_cpu_throttled_periods_total', 'CFS periods throttled', t?.throttledPeriods);
    counter('container_cpu_throttled_seconds_total', 'time throttled', seconds(t?.throttledTime, 1e9));

    const mem = metrics.memory;
    gauge('container_memory_usage_bytes', 'memory used, page cache included', mem?.usage?.usage);
    gauge('container_memory_limit_bytes', 'memory limit', mem?.usage?.limit);
    gauge('container_memory_max_usage_bytes', 'highest memory use recorded', mem?.usage?.max);
    counter('container_memory_failcnt_total', 'times memory use hit the limit', mem?.usage?.failcnt);
    gauge('container_memory_cache_bytes', 'page cache', mem?.cache);
    gauge('container_memory_rss_bytes', 'anonymous memory and swap cache', mem?.rss);
    if (mem?.swap && mem.usage) {
      // memsw counts memory plus swap; swap alone is the difference.
      const sw = mem.swap.usage - mem.usage.usage;
      gauge('container_memory_swap_bytes', 'swap used', sw > 0n ? sw : 0n);
    }
    gauge('container_memory_kernel_usage_bytes', 'kernel memory used', mem?.kernel?.usage);
    counter(
      'container_memory_oom_kills_total',
      'processes killed by the OOM killer',
      metrics.memoryOomControl?.oomKill,
    );

    gauge('container_pids_current', 'processes and threads', metrics.pids?.current);
    gauge('container_pids_limit', 'process limit (0: unlimited)', metrics.pids?.limit);

    for (const e of metrics.blkio?.ioServiceBytesRecursive ?? []) {
      if (e.op === 'Total') continue;
      counter(
        'container_blkio_io_service_bytes_total',
        'bytes transferred to and from block devices',
        e.value,
        {
          device: e.device,
          major: String(e.major),
          minor: String(e.minor),
          op: e.op,
        },
      );
    }
    for (const e of metrics.blkio?.ioServicedRecursive ?? []) {
      if (e.op === 'Total') continue;
      counter('container_blkio_io_serviced_total', 'I/O operations on block devices', e.value, {
        device: e.device,
        major: String(e.major),
        minor: String(e.minor),
        op: e.op,
      });
    }
    for (const h of metrics.hugetlb) {
      gauge('container_hugetlb_usage_bytes', 'huge pages used', h.usage, { pagesize: h.pagesize });
      gauge('container_hugetlb_max_usage_bytes', 'highest huge page use', h.max, { pagesize: h.pagesize });
      counter('container_hugetlb_failcnt_total', 'huge page allocations over the limit', h.failcnt, {
        pagesize: h.pagesize,
      });
    }
    return f.list();
  }

  const c = metrics.cpu;
  counter('container_cpu_usage_seconds_total', 'CPU time used', seconds(c?.usageUsec, 1e6));
  counter('container_cpu_user_seconds_total', 'CPU time used in user mode', seconds(c?.userUsec, 1e6));
  counter('container_cpu_system_seconds_total', 'CPU time used in kernel mode', seconds(c?.systemUsec, 1e6));
  counter('container_cpu_periods_total', 'CFS enforcement periods', c?.nrPeriods);
  counter('container_cpu_throttled_periods_total', 'CFS periods throttled', c?.nrThrottled);
  counter('container_cpu_throttled_seconds_total', 'time throttled', seconds(c?.throttledUsec, 1e6));

  const mem = metrics.memory;
  gauge('container_memory_usage_bytes', 'memory used, page cache included', mem?.usage);
  gauge('container_memory_limit_bytes', 'memory limit', mem?.usageLimit);
  gauge('container_memory_max_usage_bytes', 'highest memory use recorded', mem?.maxUsage);
  counter('container_memory_failcnt_total', 'times memory use hit the limit', metrics.memoryEvents?.max);
  gauge('container_memory_cache_bytes', 'page cache', mem?.file);
  gauge('container_memory_rss_bytes', 'anonymous memory', mem?.anon);
  gauge('container_memory_swap_bytes', 'swap used', mem?.swapUsage);
  gauge(
    'container_memory_kernel_usage_bytes',
    'kernel stack and slab memory',
    mem ? mem.kernelStack + mem.slab : undefined,
  );
  counter(
    'container_memory_oom_kills_total',
    'processes killed by the OOM killer',
    metrics.memoryEvents?.oomKill,
  );

  gauge('container_pids_current', 'processes and threads', metrics.pids?.current);
  gauge('container_pids_limit', 'process limit (18446744073709551615: unlimited)', metrics.pids?.limit);

  for (const e of metrics.io?.usage ?? []) {
    const dev = { major: String(e.major), minor: String(e.minor) };
    counter(
      'container_blkio_io_service_bytes_total',
      'bytes transferred to and from block devices',
      e.rbytes,
      {
        ...dev,
        op: 'Read',
      },
    );
    counter(
      'container_blkio_io_service_bytes_total',
      'bytes transferred to and from block devices',
      e.wbytes,
      {
        ...dev,
        op: 'Write',
      },
    );
    counter('container_blkio_io_serviced_total', 'I/O operations on block devices', e.rios, {
      ...dev,
      op: 'Read',
    });
    counter('container_blkio_io_serviced_total', 'I/O operations on block devices', e.wios, {
      ...dev,
      op: 'Write',
    });
  }
  for (const h of metrics.hugetlb) {
    gauge('container_hugetlb_usage_bytes', 'huge pages used', h.current, { pagesize: h.pagesize });
    gauge('container_hugetlb_limit_bytes', 'huge page limit', h.max, { pagesize: h.pagesize });
    counter('container_hugetlb_failcnt_total', 'huge page allocations over the limit', h.failcnt, {
      pagesize: h.pagesize,
    });
  }
  return f.list();
}
