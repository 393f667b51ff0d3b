import type { Any } from '@bufbuild/protobuf/wkt';
import { anyIs, type Logger, silentLogger, unpackAnyAs } from '@ctrd/api-proto';
import { MetricsSchema as V1MetricsSchema } from '@ctrd/api-proto/cgroups/v1';
import { MetricsSchema as V2MetricsSchema } from '@ctrd/api-proto/cgroups/v2';
import { cgroupMetricsFamilies, type PrometheusCollector, type PrometheusFamily } from '@ctrd/metrics';
import type { LocalTasks } from '../runtime/local-tasks.js';

// Per-container cgroup figures at scrape time: the same stats Tasks.Metrics answers (each shim
// reads its tasks' cgroups), labelled with namespace and id.

export interface TaskStats {
  namespace: string;
  id: string;
  /** containerd's cgroups Metrics (v1 or v2) in an Any, as the shim's Stats returns it. */
  data: Any | undefined;
}

/** Lists tasks' stats; a task whose stats fail is left out, never the whole list. */
export type TaskStatsSource = (signal?: AbortSignal) => Promise<TaskStats[]>;

/** Stats of every task of every namespace, through LocalTasks.metrics (one call per namespace). */
export function localTaskStats(tasks: LocalTasks): TaskStatsSource {
  return async (signal) => {
    const namespaces = new Set(tasks.manager.tasks().map((t) => t.namespace));
    const out: TaskStats[] = [];
    for (const namespace of namespaces) {
      signal?.throwIfAborted();
      for (const m of await tasks.metrics([`namespace==${JSON.stringify(namespace)}`], signal))
        out.push({ namespace, id: m.id, data: m.data });
    }
    return out;
  };
}

/** The Prometheus collector: container_* families from each task's cgroup stats. */
export function taskStatsCollector(
  source: () => TaskStatsSource | undefined,
  logger: Logger = silentLogger,
): PrometheusCollector {
  return async (signal) => {
    const list = source();
    if (!list) return [];
    const families: PrometheusFamily[] = [];
    for (const t of await list(signal)) {
      const labels = { namespace: t.namespace, id: t.id };
      try {
        if (anyIs(t.data, V1MetricsSchema))
          families.push(...cgroupMetricsFamilies(unpackAnyAs(t.data, V1MetricsSchema), labels));
        else if (anyIs(t.data, V2MetricsSchema))
          families.push(...cgroupMetricsFamilies(unpackAnyAs(t.data, V2MetricsSchema), labels));
        else logger.debug({ task: t.id, type: t.data?.typeUrl }, 'task stats of an unknown type');
      } catch (err) {
        // One shim answering garbage must not cost the other containers their figures.
        logger.debug({ task: t.id, err }, 'task stats undecodable');
      }
    }
    return families;
  };
}
