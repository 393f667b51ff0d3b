// Public entry of @ctrd/daemon: the daemon as a library, its plugin model and local services.

export type { BuiltinOptions } from './builtin-plugins.js';
export { builtinPlugins } from './builtin-plugins.js';
export type { Command } from './cli.js';
export { defaultConfigToml, parseCommandLine, USAGE, UsageError } from './cli.js';
export type { Config } from './config.js';
export {
  configToToml,
  DEFAULT_CONFIG_PATH,
  defaultConfig,
  loadConfigFile,
  parseConfigToml,
} from './config.js';
export type { Daemon, DaemonOptions } from './daemon.js';
export { startDaemon } from './daemon.js';
export { formatDuration, parseDuration } from './duration.js';
export type { PluginContext, PluginInstance, PluginRecord, PluginRegistration, PluginSet } from './plugin.js';
export { initPlugins, orderPlugins, PluginType } from './plugin.js';
export type { RootLock } from './root-lock.js';
export { lockRoot } from './root-lock.js';
export type { BundleRecord } from './runtime/bundle.js';
export { bundlePath, listBundles } from './runtime/bundle.js';
export type { LocalTasksOptions } from './runtime/local-tasks.js';
export { LocalTasks, RUNC_RUNTIMES } from './runtime/local-tasks.js';
export type {
  DeadTaskExit,
  ProcessLauncherOptions,
  ShimClient,
  ShimConnection,
  ShimLauncher,
} from './runtime/shim-launcher.js';
export { ProcessShimLauncher, resolveShimBinary } from './runtime/shim-launcher.js';
export type { Shim, ShimManagerOptions } from './runtime/shim-manager.js';
export { ownShimId, SHIM_LABEL, ShimManager, sharedShimId } from './runtime/shim-manager.js';
export type { TasksPluginOptions } from './services/tasks.js';
export { tasksGrpcPlugin, tasksService, tasksServicePlugin } from './services/tasks.js';
export { containersService, LocalContainers, validateContainer } from './services/containers.js';
export { eventHistoryService, eventsService } from './services/events.js';
export type { ExchangeOptions, ExchangeStats } from './services/exchange.js';
export { Exchange, validateTopic } from './services/exchange.js';
export { introspectionService, LocalIntrospection, serverUuid } from './services/introspection.js';
export {
  EXPIRE_LABEL,
  generateLeaseId,
  LocalLeases,
  leasesService,
  validateLeaseId,
} from './services/leases.js';
export { LocalNamespaces, namespacesService } from './services/namespaces.js';
export { REVISION, VERSION, versionService } from './services/version.js';
export { parseHostPort } from './telemetry/address.js';
export { LiveCounter } from './telemetry/live-counter.js';
export type { TaskStats, TaskStatsSource } from './telemetry/task-stats.js';
export { localTaskStats, taskStatsCollector } from './telemetry/task-stats.js';
export type { TelemetryOptions, TelemetrySources } from './telemetry/telemetry.js';
export { START_TIMER, Telemetry } from './telemetry/telemetry.js';
export type { MetaStoreOptions } from './store/meta-store.js';
export { MetaStore, migrate } from './store/meta-store.js';
export type { Migration } from './store/migrations.js';
export { migrations, NAMESPACE_BLOCKING_TABLES } from './store/migrations.js';
