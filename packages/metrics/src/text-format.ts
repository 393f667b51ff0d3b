import type { Registry, RegistryEntry } from './registry.js';

export interface TextFormatOptions {
  /** The tag at the start of each line; '' for none. Default '[ctrd]'. */
  prefix?: string;
  /** The time stamped on each line. Default: now. */
  date?: Date;
  /** Stamp in UTC instead of local time (Go's log prints local time). */
  utc?: boolean;
}

// The seed's report is go-metrics' log output: a 13-column label, integers right-aligned in 9 columns
// and everything else with two decimals in 12.
const LABEL_WIDTH = 13;
const INT_WIDTH = 9;
const FLOAT_WIDTH = 12;

function label(name: string): string {
  return `  ${name.padEnd(LABEL_WIDTH)}`;
}

function int(name: string, v: number): string {
  const s = Number.isFinite(v) ? Math.round(v).toString() : String(v);
  return label(name) + s.padStart(INT_WIDTH);
}

function float(name: string, v: number): string {
  const s = Number.isFinite(v) ? v.toFixed(2) : String(v);
  return label(name) + s.padStart(FLOAT_WIDTH);
}

function pad2(n: number): string {
  return n.toString().padStart(2, '0');
}

/** Go's log.LstdFlags time: 2015/12/16 11:48:28. */
export function formatLogTime(d: Date, utc = false): string {
  const [y, mo, da, h, mi, s] = utc
    ? [
        d.getUTCFullYear(),
        d.getUTCMonth() + 1,
        d.getUTCDate(),
        d.getUTCHours(),
        d.getUTCMinutes(),
        d.getUTCSeconds(),
      ]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${y}/${pad2(mo)}/${pad2(da)} ${pad2(h)}:${pad2(mi)}:${pad2(s)}`;
}

/** The report lines of one metric, without the prefix and time stamp. */
export function formatMetricLines(entry: RegistryEntry): string[] {
  const { name, metric } = entry;
  switch (metric.kind) {
    case 'counter':
      return [`counter ${name}`, int('count:', metric.count())];
    case 'gauge': {
      const v = metric.value();
      return [`gauge ${name}`, Number.isInteger(v) ? int('value:', v) : float('value:', v)];
    }
    case 'meter': {
      const m = metric.snapshot();
      return [
        `meter ${name}`,
        int('count:', m.count),
        float('1-min rate:', m.rate1),
        float('5-min rate:', m.rate5),
        float('15-min rate:', m.rate15),
        float('mean rate:', m.rateMean),
      ];
    }
    case 'histogram': {
      const h = metric.snapshot();
      return [
        `histogram ${name}`,
        int('count:', h.count),
        int('min:', h.min),
        int('max:', h.max),
        float('mean:', h.mean),
        float('stddev:', h.stddev),
        float('median:', h.median),
        float('75%:', h.p75),
        float('95%:', h.p95),
        float('99%:', h.p99),
        float('99.9%:', h.p999),
      ];
    }
    case 'timer': {
      const t = metric.snapshot();
      return [
        `timer ${name}`,
        int('count:', t.count),
        int('min:', t.min),
        int('max:', t.max),
        float('mean:', t.mean),
        float('stddev:', t.stddev),
        float('median:', t.median),
        float('75%:', t.p75),
        float('95%:', t.p95),
        float('99%:', t.p99),
        float('99.9%:', t.p999),
        float('1-min rate:', t.rate1),
        float('5-min rate:', t.rate5),
        float('15-min rate:', t.rate15),
        float('mean rate:', t.rateMean),
      ];
    }
  }
}

/** The whole report, one block per metric in registration order, each line ending in '\n'. */
export function formatTextReport(registry: Registry, options: TextFormatOptions = {}): string {
  const prefix = options.prefix ?? '[ctrd]';
  const stamp = formatLogTime(options.date ?? new Date(), options.utc);
  const head = prefix ? `${prefix} ${stamp} ` : `${stamp} `;
  let out = '';
  for (const entry of registry) {
    for (const line of formatMetricLines(entry)) out += `${head}${line}\n`;
  }
  return out;
}
