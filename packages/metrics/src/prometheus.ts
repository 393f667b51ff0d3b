import type { Logger } from './logger.js';
import type { Registry } from './registry.js';

export type PrometheusType = 'counter' | 'gauge' | 'summary' | 'histogram' | 'untyped';

export interface PrometheusSample {
  /** Appended to the family name, e.g. "_sum", "_count"; '' or absent for the plain sample. */
  suffix?: string;
  labels?: Readonly<Record<string, string>>;
  value: number | bigint;
}

/** One metric family: one HELP and TYPE line and its samples. Names are sanitised when written. */
export interface PrometheusFamily {
  name: string;
  help: string;
  type: PrometheusType;
  samples: PrometheusSample[];
}

/**
 * Adds families at scrape time (the daemon's per-container cgroup stats). Families with the same name
 * from several collectors are merged, so each may return one sample per container.
 */
export type PrometheusCollector = (
  signal?: AbortSignal,
) => Iterable<PrometheusFamily> | Promise<Iterable<PrometheusFamily>>;

export interface PrometheusOptions {
  /** Prepended with '_' to every registry metric name, e.g. "ctrd". Not applied to collectors. */
  namespace?: string;
  collectors?: readonly PrometheusCollector[];
  logger?: Logger;
  signal?: AbortSignal;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*; everything else becomes '_'. */
export function sanitizeMetricName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s || '_';
}

/** Label names match [a-zA-Z_][a-zA-Z0-9_]* and may not start with "__" (reserved). */
export function sanitizeLabelName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (/^[0-9]/.test(s)) s = `_${s}`;
  if (s.startsWith('__')) s = s.replace(/^_+/, '_');
  return s || '_';
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatPrometheusValue(v: number | bigint): string {
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${sanitizeLabelName(k)}="${escapeLabelValue(v)}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

/** Text exposition format 0.0.4 for the given families, merged by name in first-seen order. */
export function formatPrometheus(families: Iterable<PrometheusFamily>): string {
  const merged = new Map<string, PrometheusFamily>();
  for (const f of families) {
    const name = sanitizeMetricName(f.name);
    const prev = merged.get(name);
    if (prev) prev.samples.push(...f.samples);
    else merged.set(name, { ...f, name, samples: [...f.samples] });
  }
  let out = '';
  for (const f of merged.values()) {
    if (f.samples.length === 0) continue;
    out += `# HELP ${f.name} ${escapeHelp(f.help || f.name)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const suffix = s.suffix ? sanitizeMetricName(s.suffix) : '';
      out += `${f.name}${suffix}${formatLabels(s.labels)} ${formatPrometheusValue(s.value)}\n`;
    }
  }
  return out;
}

const NS_PER_SECOND = 1e9;

/**
 * The registry as Prometheus families: counters as `<name>_total`, gauges as is, meters as a
 * `<name>_total` counter, timers as `<name>_seconds` summaries (quantiles, _sum, _count in seconds),
 * histograms as summaries in their own unit.
 */
export function registryFamilies(registry: Registry, namespace = ''): PrometheusFamily[] {
  const out: PrometheusFamily[] = [];
  for (const { name, metric, help } of registry) {
    const base = sanitizeMetricName(namespace ? `${namespace}_${name}` : name);
    switch (metric.kind) {
      case 'counter':
        out.push({
          name: `${base}_total`,
          help: help ?? name,
          type: 'counter',
          samples: [{ value: metric.count() }],
        });
        break;
      case 'gauge':
        out.push({ name: base, help: help ?? name, type: 'gauge', samples: [{ value: metric.value() }] });
        break;
      case 'meter':
        out.push({
          name: `${base}_total`,
          help: help ?? name,
          type: 'counter',
          samples: [{ value: metric.count() }],
        });
        break;
      case 'timer':
      case 'histogram': {
        const scale = metric.kind === 'timer' ? NS_PER_SECOND : 1;
        const s = metric.snapshot();
        const q = (quantile: string, v: number): PrometheusSample => ({
          labels: { quantile },
          value: v / scale,
        });
        out.push({
          name: metric.kind === 'timer' ? `${base}_seconds` : base,
          help: help ?? name,
          type: 'summary',
          samples: [
            q('0.5', s.median),
            q('0.75', s.p75),
            q('0.95', s.p95),
            q('0.99', s.p99),
            q('0.999', s.p999),
            { suffix: '_sum', value: s.sum / scale },
            { suffix: '_count', value: s.count },
          ],
        });
        break;
      }
    }
  }
  return out;
}

/** The registry plus every collector's families, as one exposition. Failing collectors are skipped. */
export async function renderPrometheus(registry: Registry, options: PrometheusOptions = {}): Promise<string> {
  const families = registryFamilies(registry, options.namespace);
  const results = await Promise.allSettled((options.collectors ?? []).map(async (c) => c(options.signal)));
  options.signal?.throwIfAborted();
  const errors: unknown[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') families.push(...r.value);
    else {
      errors.push(r.reason);
      options.logger?.warn({ err: r.reason }, 'prometheus: collector failed');
    }
  }
  const text = formatPrometheus(families);
  if (errors.length > 0) {
    // A broken collector must not hide the rest; report it as a scrape-error gauge instead.
    return `${text}${formatPrometheus([
      {
        name: `${options.namespace ? `${options.namespace}_` : ''}scrape_collector_errors`,
        help: 'collectors that failed during this scrape',
        type: 'gauge',
        samples: [{ value: errors.length }],
      },
    ])}`;
  }
  return text;
}
