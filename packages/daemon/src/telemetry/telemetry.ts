import { type Logger, silentLogger } from '@ctrd/api-proto';
import {
  GraphiteReporter,
  type PrometheusServer,
  Registry,
  registerProcessGauges,
  servePrometheus,
  startTextReporter,
  type TextReporter,
  type TextSink,
  type Timer,
} from '@ctrd/metrics';
import { parseHostPort } from './address.js';
import { LiveCounter } from './live-counter.js';
import { LoopDelay } from './loop-delay.js';
import { type TaskStatsSource, taskStatsCollector } from './task-stats.js';

// The daemon's telemetry: one registry in the seed's report order (the start timer, the counters,
// then the process gauges), and the three ways out of it: the text report, graphite and Prometheus.
// Counters read their sources when reported, so the services carry no metric code; only Tasks.Start
// records into the timer.

export const START_TIMER = 'container-start-time';

export interface TelemetryOptions {
  /** Milliseconds between text reports and graphite flushes; 0 disables both periodic outputs. */
  intervalMs: number;
  /** Where the text report goes (the ctrd binary passes stderr); none: no text report. */
  out?: TextSink | undefined;
  /** graphite host:port; '' for none. */
  graphiteAddress?: string | undefined;
  /** Prometheus host:port (served at /metrics); '' for none. */
  metricsAddress?: string | undefined;
  /** The report's line tag. Default '[ctrd]'. */
  prefix?: string | undefined;
  logger?: Logger | undefined;
  registry?: Registry | undefined;
}

/** What the counters and the container collector read, bound once the plugins are up. */
export interface TelemetrySources {
  containers?: (() => number) | undefined;
  events?: (() => { published: number; subscribers: number }) | undefined;
  tasks?: TaskStatsSource | undefined;
}

export class Telemetry {
  readonly registry: Registry;
  /** Tasks.Start of a container's init, from the call to running, in ns. */
  readonly startTime: Timer;
  private readonly opts: TelemetryOptions;
  private readonly log: Logger;
  private sources: TelemetrySources = {};
  private readonly loopDelay = new LoopDelay();
  private text: TextReporter | undefined;
  private graphite: GraphiteReporter | undefined;
  private prometheus: PrometheusServer | undefined;
  private stopping: Promise<void> | undefined;

  constructor(opts: TelemetryOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    const r = opts.registry ?? new Registry();
    this.registry = r;
    this.startTime = r.timer(START_TIMER, { help: 'time from Tasks.Start to a running container' });
    r.register('containers', new LiveCounter(() => this.sources.containers?.() ?? 0), {
      help: 'containers in the store, all namespaces',
    });
    r.register('events', new LiveCounter(() => this.sources.events?.().published ?? 0), {
      help: 'events published or forwarded',
    });
    r.register('events-subscribers', new LiveCounter(() => this.sources.events?.().subscribers ?? 0), {
      help: 'current event subscriptions',
    });
    registerProcessGauges(r);
    this.loopDelay.start();
    r.gauge('event-loop-delay-mean-ns', () => this.loopDelay.figures().meanNs, {
      help: 'mean event-loop delay over the last minute, ns',
    });
    r.gauge('event-loop-delay-p99-ns', () => this.loopDelay.figures().p99Ns, {
      help: '99th percentile event-loop delay over the last minute, ns',
    });
  }

  bind(sources: TelemetrySources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Starts the outputs the options ask for; fails (and leaves nothing running) on a bad address. */
  async start(signal?: AbortSignal): Promise<void> {
    const { intervalMs, out, prefix } = this.opts;
    try {
      if (out) {
        this.text = startTextReporter({
          registry: this.registry,
          out,
          intervalMs,
          prefix: prefix ?? '[ctrd]',
          logger: this.log,
        });
      }
      if (this.opts.graphiteAddress && intervalMs <= 0) {
        this.log.warn(
          { graphiteAddress: this.opts.graphiteAddress },
          'graphite: nothing will be sent while metrics_interval is 0: set an interval',
        );
      }
      if (this.opts.graphiteAddress) {
        this.graphite = new GraphiteReporter({
          registry: this.registry,
          address: this.opts.graphiteAddress,
          prefix: 'ctrd',
          intervalMs,
          logger: this.log,
        });
      }
      if (this.opts.metricsAddress) {
        const { host, port } = parseHostPort(this.opts.metricsAddress, 'metrics_address');
        this.prometheus = await servePrometheus({
          registry: this.registry,
          host,
          port,
          namespace: 'ctrd',
          collectors: [taskStatsCollector(() => this.sources.tasks, this.log)],
          logger: this.log,
          signal,
        });
        this.log.info({ url: this.prometheus.url }, 'metrics served');
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Writes one text report now (when there is an `out`), whatever the interval. */
  report(): void {
    this.text?.report();
  }

  /** The Prometheus URL when served (port 0 resolved). */
  get metricsUrl(): string | undefined {
    return this.prometheus?.url;
  }

  /** Stops every timer, socket and listener; idempotent. */
  stop(signal?: AbortSignal): Promise<void> {
    this.stopping ??= (async () => {
      this.text?.stop();
      this.loopDelay.stop();
      const graphite = this.graphite;
      const prometheus = this.prometheus;
      await Promise.all([graphite?.stop(signal), prometheus?.close()]);
    })();
    return this.stopping;
  }
}
