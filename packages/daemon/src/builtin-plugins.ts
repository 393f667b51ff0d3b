import { join } from 'node:path';
import type { ServiceRegistration } from '@ctrd/api-proto';
import { contentGrpcPlugins, contentPlugins, gcHook } from './content/plugins.js';
import { diffGrpcPlugin, diffPlugin } from './diff/plugins.js';
import { type PluginContext, type PluginRegistration, PluginType } from './plugin.js';
import { containersService, LocalContainers } from './services/containers.js';
import { eventHistoryService, eventsService } from './services/events.js';
import { Exchange } from './services/exchange.js';
import { healthService, LocalHealth } from './services/health.js';
import { introspectionService, LocalIntrospection, serverUuid } from './services/introspection.js';
import { LocalLeases, leasesService } from './services/leases.js';
import { logsGrpcPlugin } from './services/logs.js';
import { LocalNamespaces, namespacesService } from './services/namespaces.js';
import { snapshotPlugins, snapshotsGrpcPlugin } from './services/snapshots.js';
import { tasksGrpcPlugin, tasksServicePlugin } from './services/tasks.js';
import { versionService } from './services/version.js';
import { MetaStore } from './store/meta-store.js';

// The plugins this package ships, in containerd's layout: the metadata store and the exchange at
// the bottom, `local` services (io.containerd.service.v1) on them, thin Connect services
// (io.containerd.grpc.v1) on top. Later issues append their own registrations (tasks + shim
// manager replacing the tasks placeholder, content, images, snapshots, diff).

export interface BuiltinOptions {
  /** Where the metadata database lives (default: root/meta.db). */
  root: string;
  leaseSweepMs?: number | undefined;
}

const grpc = (
  id: string,
  requires: string[],
  make: (ctx: PluginContext) => ServiceRegistration[],
): PluginRegistration => ({
  type: PluginType.Grpc,
  id,
  requires,
  init: (ctx) => ({ services: make(ctx) }),
});

const svc = (ctx: PluginContext, id: string) => ctx.get<never>(PluginType.Service, id);

export function builtinPlugins(opts: BuiltinOptions): PluginRegistration[] {
  return [
    {
      type: PluginType.Metadata,
      id: 'sqlite',
      init: (ctx) => {
        const store = new MetaStore(join(opts.root, 'meta.db'), { logger: ctx.logger });
        return { instance: store, exports: { path: store.path }, close: () => store.close() };
      },
    },
    {
      type: PluginType.Event,
      id: 'exchange',
      init: (ctx) => {
        const ex = new Exchange({ logger: ctx.logger });
        return { instance: ex, close: () => ex.close() };
      },
    },
    {
      type: PluginType.Service,
      id: 'namespaces-service',
      requires: [PluginType.Metadata, PluginType.Event],
      init: (ctx) => ({
        instance: new LocalNamespaces(
          ctx.get(PluginType.Metadata, 'sqlite'),
          ctx.get(PluginType.Event, 'exchange'),
        ),
      }),
    },
    {
      type: PluginType.Service,
      id: 'leases-service',
      requires: [PluginType.Metadata],
      init: (ctx) => {
        const leases = new LocalLeases(ctx.get(PluginType.Metadata, 'sqlite'), ctx.logger, gcHook(ctx));
        const stop = leases.startSweeper(opts.leaseSweepMs ?? 60_000);
        leases.sweepExpired();
        return { instance: leases, close: stop };
      },
    },
    {
      type: PluginType.Service,
      id: 'containers-service',
      requires: [PluginType.Metadata, PluginType.Event],
      init: (ctx) => ({
        instance: new LocalContainers(
          ctx.get(PluginType.Metadata, 'sqlite'),
          ctx.get(PluginType.Event, 'exchange'),
          ctx.get(PluginType.Service, 'leases-service'),
          gcHook(ctx),
        ),
      }),
    },
    ...contentPlugins({ root: opts.root }),
    ...snapshotPlugins(opts.root),
    diffPlugin(opts.root),
    tasksServicePlugin(),
    grpc('version', [], () => [versionService()]),
    {
      // containerd's id; the daemon sets it SERVING once every plugin is up, NOT_SERVING on close.
      type: PluginType.Grpc,
      id: 'healthcheck',
      init: () => {
        const health = new LocalHealth();
        return { instance: health, services: [healthService(health)] };
      },
    },
    grpc('namespaces', [PluginType.Service], (ctx) => [namespacesService(svc(ctx, 'namespaces-service'))]),
    grpc('containers', [PluginType.Service], (ctx) => [containersService(svc(ctx, 'containers-service'))]),
    grpc('leases', [PluginType.Service], (ctx) => [leasesService(svc(ctx, 'leases-service'))]),
    grpc('events', [PluginType.Event], (ctx) => [
      eventsService(ctx.get(PluginType.Event, 'exchange')),
      eventHistoryService(ctx.get(PluginType.Event, 'exchange')),
    ]),
    tasksGrpcPlugin(),
    logsGrpcPlugin(),
    snapshotsGrpcPlugin(),
    ...contentGrpcPlugins(),
    diffGrpcPlugin(),
    {
      type: PluginType.Grpc,
      id: 'introspection',
      // Last, so it is loaded after everything it describes; it reads the records live anyway.
      requires: [PluginType.Grpc],
      init: (ctx) => {
        const records = ctx.plugins;
        const local = new LocalIntrospection(() => records, serverUuid(opts.root));
        return { instance: local, services: [introspectionService(local)] };
      },
    },
  ];
}
