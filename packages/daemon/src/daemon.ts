import { chown } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, InvalidArgument, type Logger, type Server, silentLogger } from '@ctrd/api-proto';
import type { Interceptor } from '@connectrpc/connect';
import { builtinPlugins } from './builtin-plugins.js';
import { callLogger } from './call-logger.js';
import { jsonAnyInterceptor, jsonRegistry } from './json-any.js';
import { durableInterceptor } from './store/durable-interceptor.js';
import type { MetaStore } from './store/meta-store.js';
import type { Config } from './config.js';
import { listenPath, prepareDirs } from './dirs.js';
import { initPlugins, type PluginRegistration, type PluginSet, PluginType } from './plugin.js';
import { lockRoot } from './root-lock.js';
import type { LocalTasks } from './runtime/local-tasks.js';
import type { LocalContainers } from './services/containers.js';
import type { Exchange } from './services/exchange.js';
import { type LocalHealth, ServingStatus } from './services/health.js';
import { localTaskStats } from './telemetry/task-stats.js';
import { Telemetry } from './telemetry/telemetry.js';

// The daemon as a library: lock the root, load plugins, serve them on the socket. Stopping it
// closes the socket and the store; containers are never touched (they belong to their shims).

export interface DaemonOptions {
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Registrations added after the built-in ones (tasks, content, images, ...). */
  plugins?: readonly PluginRegistration[] | undefined;
  leaseSweepMs?: number | undefined;
  /** Where the periodic metrics report goes (the ctrd binary passes stderr); none: no report. */
  metricsOut?: { write(chunk: string): unknown } | undefined;
}

export interface Daemon {
  readonly server: Server;
  readonly plugins: PluginSet;
  readonly telemetry: Telemetry;
  /**
   * Stops accepting calls and cancels those in flight, as containerd does on SIGTERM: their callers
   * get Unavailable at once, their handlers get up to graceMs to return. Then closes plugins and
   * the lock.
   */
  close(opts?: { graceMs?: number }): Promise<void>;
}

export async function startDaemon(config: Config, opts: DaemonOptions = {}): Promise<Daemon> {
  const log = opts.logger ?? silentLogger;
  const socket = listenPath(config.listen);
  const gid = config.socketGroup === '' ? undefined : resolveGroup(config.socketGroup);
  await prepareDirs(config.root, config.stateDir, socket);
  const lock = lockRoot(config.root);
  let plugins: PluginSet | undefined;
  const telemetry = new Telemetry({
    intervalMs: config.metricsInterval,
    out: opts.metricsOut,
    graphiteAddress: config.graphiteAddress,
    metricsAddress: config.metricsAddress,
    logger: log,
  });
  try {
    plugins = await initPlugins(
      [...builtinPlugins({ root: config.root, leaseSweepMs: opts.leaseSweepMs }), ...(opts.plugins ?? [])],
      { config, logger: log, rootDir: config.root, stateDir: config.stateDir, metrics: telemetry.registry },
      opts.signal,
    );
    // Before the socket, so a taken metrics address fails the start with nothing to undo.
    bindTelemetry(telemetry, plugins);
    await telemetry.start(opts.signal);
    const set0 = plugins;
    // Every plugin is up (or recorded as failed, as containerd goes on without it): the server and
    // each service on it are SERVING from the first call.
    const health = optional<LocalHealth>(set0, PluginType.Grpc, 'healthcheck');
    for (const s of set0.services) health?.set(s.service.typeName, ServingStatus.SERVING);
    health?.set('', ServingStatus.SERVING);
    // Calls that change the metadata store answer once the change is on disk (a store that failed
    // to load leaves nothing to wait for).
    const durable: Interceptor[] = [];
    try {
      durable.push(durableInterceptor(set0.get<MetaStore>(PluginType.Metadata, 'sqlite')));
    } catch {}
    const server = await createServer({
      socketPath: socket,
      mode: 0o660,
      logger: log,
      // Registered through routes so Connect JSON can print the Anys our messages carry.
      routes: (router) => {
        for (const s of set0.services)
          router.service(s.service, s.impl, { jsonOptions: { registry: jsonRegistry } });
      },
      interceptors: [...(config.debug ? [callLogger(log)] : []), jsonAnyInterceptor, ...durable],
      signal: opts.signal,
    });
    if (gid !== undefined) await chown(socket, -1, gid);
    log.info({ socket, root: config.root, state: config.stateDir }, 'ctrd serving');
    const set = plugins;
    let closing: Promise<void> | undefined;
    return {
      server,
      plugins: set,
      telemetry,
      close(closeOpts) {
        closing ??= (async () => {
          // Watchers hear NOT_SERVING before their streams end with the rest.
          health?.shutdown();
          // grpc-go's Stop, not GracefulStop: a pending Tasks.Wait or an event subscription would
          // otherwise hold the restart for the whole grace. Callers see Unavailable and retry
          // (dockerd waits for SERVING, then subscribes again).
          const serverClosed = server.close({ graceMs: closeOpts?.graceMs ?? 10_000, now: true });
          await telemetry.stop();
          await serverClosed;
          await set.close();
          lock.release();
          log.info({}, 'ctrd stopped');
        })();
        return closing;
      },
    };
  } catch (e) {
    await telemetry.stop();
    await plugins?.close();
    lock.release();
    throw e;
  }
}

function resolveGroup(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === group);
  const gid = line?.split(':')[2];
  if (gid === undefined) throw new InvalidArgument(`socket_group "${group}": no such group in /etc/group`);
  return Number(gid);
}

function optional<T>(plugins: PluginSet, type: string, id: string): T | undefined {
  try {
    return plugins.get<T>(type, id);
  } catch {
    return undefined;
  }
}

// The counters read the store and the exchange; the collector lists tasks' cgroup stats. A plugin
// that failed to load leaves its figures at zero rather than failing the daemon.
function bindTelemetry(telemetry: Telemetry, plugins: PluginSet): void {
  const find = <T>(type: string, id: string): T | undefined => optional<T>(plugins, type, id);
  const exchange = find<Exchange>(PluginType.Event, 'exchange');
  const containers = find<LocalContainers>(PluginType.Service, 'containers-service');
  const tasks = find<LocalTasks>(PluginType.Service, 'tasks-service');
  telemetry.bind({
    containers: containers ? () => containers.count() : undefined,
    events: exchange ? () => exchange.stats() : undefined,
    tasks: tasks ? localTaskStats(tasks) : undefined,
  });
}
