import type { Metric } from '@ctrd/api-proto/types';
import { anyToJson } from './container-json.js';
import { isoTime } from './time.js';

export interface MetricsJson {
  id: string;
  timestamp?: string;
  /** The payload's type: io.containerd.cgroups.v1.Metrics or io.containerd.cgroups.v2.Metrics. */
  type: string;
  /** The cgroups Metrics message in proto3 JSON (64-bit numbers as strings). */
  data: unknown;
}

export function metricsJson(metric: Metric): MetricsJson {
  const ts = isoTime(metric.timestamp);
  return {
    id: metric.id,
    ...(ts ? { timestamp: ts } : {}),
    type: metric.data?.typeUrl.replace(/^.*\//, '') ?? '',
    data: anyToJson(metric.data),
  };
}

type Tree = Record<string, unknown>;

function at(tree: unknown, path: string): string {
  let node: unknown = tree;
  for (const key of path.split('.')) node = (node as Tree | undefined)?.[key];
  if (node === undefined || node === null) return '0';
  return Array.isArray(node) ? `[${node.join(' ')}]` : String(node);
}

// The rows containerd's `ctr tasks metrics` prints, in its names.
const V1_ROWS: [string, string][] = [
  ['memory.usage_in_bytes', 'memory.usage.usage'],
  ['memory.limit_in_bytes', 'memory.usage.limit'],
  ['memory.stat.cache', 'memory.cache'],
  ['cpuacct.usage', 'cpu.usage.total'],
  ['cpuacct.usage_percpu', 'cpu.usage.perCpu'],
  ['pids.current', 'pids.current'],
  ['pids.limit', 'pids.limit'],
];
const V2_ROWS: [string, string][] = [
  ['pids.current', 'pids.current'],
  ['pids.limit', 'pids.limit'],
  ['cpu.usage_usec', 'cpu.usageUsec'],
  ['cpu.user_usec', 'cpu.userUsec'],
  ['cpu.system_usec', 'cpu.systemUsec'],
  ['cpu.nr_periods', 'cpu.nrPeriods'],
  ['cpu.nr_throttled', 'cpu.nrThrottled'],
  ['cpu.throttled_usec', 'cpu.throttledUsec'],
  ['memory.usage', 'memory.usage'],
  ['memory.usage_limit', 'memory.usageLimit'],
  ['memory.swap_usage', 'memory.swapUsage'],
  ['memory.swap_limit', 'memory.swapLimit'],
];

/** METRIC/VALUE rows for a cgroups v1 or v2 payload; undefined for a type ctr does not know. */
export function metricRows(json: MetricsJson): [string, string][] | undefined {
  const rows = json.type.endsWith('cgroups.v1.Metrics')
    ? V1_ROWS
    : json.type.endsWith('cgroups.v2.Metrics')
      ? V2_ROWS
      : undefined;
  return rows?.map(([name, path]) => [name, at(json.data, path)]);
}
