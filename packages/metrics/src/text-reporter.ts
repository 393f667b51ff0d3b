import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import type { Registry } from './registry.js';
import { formatTextReport } from './text-format.js';

/** Anything with write(string): a stream.Writable, process.stderr, or a test buffer. */
export interface TextSink {
  write(chunk: string): unknown;
}

export interface TextReporterOptions {
  registry: Registry;
  /** Where reports go (the daemon passes process.stderr). */
  out: TextSink;
  /** Milliseconds between reports; 0 disables periodic reports. */
  intervalMs: number;
  prefix?: string;
  utc?: boolean;
  logger?: Logger;
}

export interface TextReporter {
  /** Write one report now. */
  report(): void;
  /** Stop periodic reports; idempotent. */
  stop(): void;
}

/** Write a report every intervalMs. The timer is unref()'d so it never keeps a process alive. */
export function startTextReporter(options: TextReporterOptions): TextReporter {
  const logger = options.logger ?? silentLogger;
  const report = (): void => {
    try {
      const text = formatTextReport(options.registry, { prefix: options.prefix, utc: options.utc });
      if (text) options.out.write(text);
    } catch (err) {
      logger.warn({ err }, 'metrics: text report failed');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  if (options.intervalMs > 0) {
    timer = setInterval(report, options.intervalMs);
    timer.unref();
  }
  return {
    report,
    stop: () => {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
