import { readdirSync } from 'node:fs';
import type { Registry } from './registry.js';

export interface ProcessGaugeOptions {
  /** Prepended to each gauge name, e.g. "process-". Default ''. */
  prefix?: string;
}

function openFds(): number {
  try {
    // Includes the descriptor readdir itself opens; close enough for a trend gauge.
    return readdirSync('/proc/self/fd').length;
  } catch {
    return Number.NaN;
  }
}

function activeHandles(): number {
  // getActiveResourcesInfo is Node's supported view of what keeps the event loop alive.
  const info = (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo;
  return info ? info.call(process).length : Number.NaN;
}

/**
 * The daemon's process gauges, the seed's goroutines/fds in Node terms, computed when read:
 * `event-loop-handles`, `fds`, `heap-used-bytes`, `rss-bytes`.
 */
export function registerProcessGauges(registry: Registry, options: ProcessGaugeOptions = {}): void {
  const p = options.prefix ?? '';
  registry.gauge(`${p}event-loop-handles`, activeHandles, {
    help: 'active handles and requests on the event loop',
  });
  registry.gauge(`${p}fds`, openFds, { help: 'open file descriptors' });
  registry.gauge(`${p}heap-used-bytes`, () => process.memoryUsage().heapUsed, { help: 'V8 heap in use' });
  registry.gauge(`${p}rss-bytes`, () => process.memoryUsage.rss(), { help: 'resident set size' });
}
