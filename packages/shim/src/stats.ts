import type { Any } from '@bufbuild/protobuf/wkt';
import type { CgroupLocation } from './cgroup-path.js';
import type { StatsReader } from './task-manager.js';

// Stats come from @ctrd/metrics' cgroup reader, as containerd's cgroups Metrics in an Any
// (`io.containerd.cgroups.v1.Metrics` or `io.containerd.cgroups.v2.Metrics`).

export function createStatsReader(): StatsReader {
  return async (cgroup: CgroupLocation, signal?: AbortSignal): Promise<Any> => {
    signal?.throwIfAborted();
    throw new Error(`stats for cgroup ${cgroup.path}: @ctrd/metrics reader not wired yet`);
  };
}
