// Public entry of @ctrd/metrics.
export { type Clock, ManualClock, systemClock } from './clock.js';
export type { Logger } from './logger.js';
export { Counter } from './counter.js';
export { Gauge } from './gauge.js';
export { Ewma, ewmaAlpha, TICK_SECONDS } from './ewma.js';
export { Meter, type MeterSnapshot } from './meter.js';
export {
  DEFAULT_DECAY,
  Histogram,
  type HistogramOptions,
  type HistogramSnapshot,
  RELATIVE_ERROR,
  SUB_BUCKETS,
} from './histogram.js';
export { Timer, type TimerOptions, type TimerSnapshot } from './timer.js';
export {
  type Metric,
  type MetricKind,
  type MetricOptions,
  Registry,
  type RegistryEntry,
  type RegistryOptions,
} from './registry.js';
export { formatLogTime, formatMetricLines, formatTextReport, type TextFormatOptions } from './text-format.js';
export {
  startTextReporter,
  type TextReporter,
  type TextReporterOptions,
  type TextSink,
} from './text-reporter.js';
export { type GraphiteOptions, GraphiteReporter, graphiteLines, sanitizeGraphitePath } from './graphite.js';
export {
  escapeHelp,
  escapeLabelValue,
  formatPrometheus,
  formatPrometheusValue,
  PROMETHEUS_CONTENT_TYPE,
  type PrometheusCollector,
  type PrometheusFamily,
  type PrometheusOptions,
  type PrometheusSample,
  type PrometheusType,
  registryFamilies,
  renderPrometheus,
  sanitizeLabelName,
  sanitizeMetricName,
} from './prometheus.js';
export {
  type PrometheusServer,
  prometheusHandler,
  type ServePrometheusOptions,
  servePrometheus,
} from './prometheus-server.js';
export {
  type CgroupMounts,
  type CgroupV1Mount,
  cgroupDir,
  type ProcessCgroup,
  type ProcOptions,
  parseCgroupMounts,
  parseProcCgroup,
  readCgroupMounts,
  readProcessCgroup,
} from './cgroup-paths.js';
export {
  type CgroupV1Metrics,
  type CgroupV1Options,
  parseBlkioEntries,
  parsePartitions,
  readCgroupV1Metrics,
} from './cgroup-v1.js';
export {
  type CgroupV2Metrics,
  type CgroupV2Options,
  parseIoStat,
  parsePsi,
  readCgroupV2Metrics,
} from './cgroup-v2.js';
export { cgroupMetricsFamilies } from './cgroup-prometheus.js';
export { type ProcessGaugeOptions, registerProcessGauges } from './process-gauges.js';
