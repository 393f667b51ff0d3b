// Types of `runc events` output (runc's types/events.go). Numbers are as runc prints them.

export interface CpuUsage {
  total?: number;
  percpu?: number[];
  percpu_kernel?: number[];
  percpu_user?: number[];
  kernel: number;
  user: number;
}

export interface Stats {
  cpu?: {
    usage?: CpuUsage;
    throttling?: { periods?: number; throttled_periods?: number; throttled_time?: number };
  };
  cpuset?: Record<string, unknown>;
  memory?: {
    cache?: number;
    usage?: MemoryEntry;
    swap?: MemoryEntry;
    kernel?: MemoryEntry;
    kernelTCP?: MemoryEntry;
    raw?: Record<string, number>;
    use_hierarchy?: boolean;
  };
  pids?: { current?: number; limit?: number };
  blkio?: Record<string, unknown>;
  hugetlb?: Record<string, { usage?: number; max?: number; failcnt: number }>;
  intel_rdt?: Record<string, unknown>;
  network_interfaces?: Record<string, unknown>[] | null;
}

export interface MemoryEntry {
  limit: number;
  usage?: number;
  max?: number;
  failcnt: number;
}

export type RuncEvent =
  | { type: 'stats'; id: string; data: Stats }
  | { type: 'oom'; id: string; data?: unknown }
  | { type: string; id: string; data?: unknown };
