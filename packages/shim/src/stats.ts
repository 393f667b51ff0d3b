import type { Any } from '@bufbuild/protobuf/wkt';
import { packAny } from '@ctrd/api-proto';
import { MetricsSchema as V1MetricsSchema } from '@ctrd/api-proto/cgroups/v1';
import { MetricsSchema as V2MetricsSchema } from '@ctrd/api-proto/cgroups/v2';
import { readCgroupV1Metrics, readCgroupV2Metrics, readProcessCgroup } from '@ctrd/metrics';
import type { StatsReader } from './task-manager.js';

// Stats come from @ctrd/metrics' cgroup reader, as containerd's cgroups Metrics in an Any
// (`io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts, `io.containerd.cgroups.v2.Metrics` on
// pure v2). The cgroups are looked up from the init's /proc/<pid>/cgroup on every call: no per-task
// cache to keep.

export function createStatsReader(): StatsReader {
  return async (pid: number, signal?: AbortSignal): Promise<Any> => {
    const cg = await readProcessCgroup(pid, { signal });
    if (cg.v1.size > 0) {
      return packAny(V1MetricsSchema, await readCgroupV1Metrics(cg.v1, { signal }));
    }
    if (cg.unified === undefined) throw new Error(`process ${pid}: no cgroup found in /proc/${pid}/cgroup`);
    return packAny(V2MetricsSchema, await readCgroupV2Metrics(cg.unified, { signal }));
  };
}
