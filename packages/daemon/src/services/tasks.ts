import { join } from 'node:path';
import { namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { TasksService } from '@ctrd/api-proto/tasks';
import type { Timer } from '@ctrd/metrics';
import { type PluginRegistration, PluginType } from '../plugin.js';
import { LocalTasks } from '../runtime/local-tasks.js';
import { ProcessShimLauncher } from '../runtime/shim-launcher.js';
import type { LocalContainers } from './containers.js';
import type { Exchange } from './exchange.js';

// containerd.services.tasks.v1.Tasks: a thin Connect half over LocalTasks, plus the plugins that
// build it (the local service recovers the shims left by a previous daemon before anything is served).

/** `startTime`: records each container (init) Start, from the call to running, in ns. */
export function tasksService(tasks: LocalTasks, startTime?: Timer): ServiceRegistration {
  return service(TasksService, {
    create: async (req, ctx) => {
      const { pid } = await tasks.create(namespaceFromContext(ctx), req, ctx.signal);
      return { containerId: req.containerId, pid };
    },
    start: async (req, ctx) => {
      const t0 = process.hrtime.bigint();
      const pid = await tasks.start(namespaceFromContext(ctx), req.containerId, req.execId, ctx.signal);
      if (req.execId === '') startTime?.update(Number(process.hrtime.bigint() - t0));
      return { pid };
    },
    delete: (req, ctx) => tasks.delete(namespaceFromContext(ctx), req.containerId, ctx.signal),
    deleteProcess: (req, ctx) =>
      tasks.deleteProcess(namespaceFromContext(ctx), req.containerId, req.execId, ctx.signal),
    get: async (req, ctx) => ({
      process: await tasks.get(namespaceFromContext(ctx), req.containerId, req.execId, ctx.signal),
    }),
    // containerd ignores List's filter too.
    list: async (_req, ctx) => ({ tasks: await tasks.list(namespaceFromContext(ctx), ctx.signal) }),
    kill: async (req, ctx) => {
      await tasks.kill(namespaceFromContext(ctx), req, ctx.signal);
      return {};
    },
    exec: async (req, ctx) => {
      await tasks.exec(namespaceFromContext(ctx), req, ctx.signal);
      return {};
    },
    resizePty: async (req, ctx) => {
      await tasks.resizePty(namespaceFromContext(ctx), req, ctx.signal);
      return {};
    },
    closeIO: async (req, ctx) => {
      await tasks.closeIO(namespaceFromContext(ctx), req, ctx.signal);
      return {};
    },
    pause: async (req, ctx) => {
      await tasks.pause(namespaceFromContext(ctx), req.containerId, ctx.signal);
      return {};
    },
    resume: async (req, ctx) => {
      await tasks.resume(namespaceFromContext(ctx), req.containerId, ctx.signal);
      return {};
    },
    listPids: async (req, ctx) => ({
      processes: await tasks.listPids(namespaceFromContext(ctx), req.containerId, ctx.signal),
    }),
    checkpoint: (req, ctx) => tasks.checkpoint(namespaceFromContext(ctx), req, ctx.signal),
    update: async (req, ctx) => {
      await tasks.update(namespaceFromContext(ctx), req, ctx.signal);
      return {};
    },
    metrics: async (req, ctx) => {
      namespaceFromContext(ctx);
      return { metrics: await tasks.metrics(req.filters, ctx.signal) };
    },
    wait: (req, ctx) => tasks.wait(namespaceFromContext(ctx), req.containerId, req.execId, ctx.signal),
  });
}

export interface TasksPluginOptions {
  /** Replaces the ctrd-shim launcher (tests). */
  launcher?: ConstructorParameters<typeof LocalTasks>[0]['launcher'] | undefined;
  watchMs?: number | undefined;
}

/** The local tasks service (io.containerd.service.v1.tasks-service): shim manager and recovery. */
export function tasksServicePlugin(opts: TasksPluginOptions = {}): PluginRegistration {
  return {
    type: PluginType.Service,
    id: 'tasks-service',
    requires: [PluginType.Metadata, PluginType.Event, PluginType.Service],
    init: async (ctx) => {
      const c = ctx.config;
      const launcher =
        opts.launcher ??
        new ProcessShimLauncher({
          shimBinary: c.shimBinary || undefined,
          stateDir: c.stateDir,
          daemonAddress: c.listen,
          runcBinary: c.runcBinary || undefined,
          runcRoot: c.runcRoot || join(c.stateDir, 'runc'),
          oomNotify: c.oomNotify,
          debug: c.debug,
        });
      const tasks = new LocalTasks({
        stateDir: c.stateDir,
        containers: ctx.get<LocalContainers>(PluginType.Service, 'containers-service'),
        events: ctx.get<Exchange>(PluginType.Event, 'exchange'),
        launcher,
        shimCap: c.shimTasksCap,
        shimLingerMs: c.shimLinger,
        concurrency: c.concurrency,
        logger: ctx.logger,
        watchMs: opts.watchMs,
      });
      try {
        await tasks.recover();
      } catch (e) {
        await tasks.close();
        throw e;
      }
      return { instance: tasks, close: () => tasks.close() };
    },
  };
}

/** The Connect service (io.containerd.grpc.v1.tasks). */
export function tasksGrpcPlugin(): PluginRegistration {
  return {
    type: PluginType.Grpc,
    id: 'tasks',
    requires: [PluginType.Service],
    init: (ctx) => ({
      services: [
        tasksService(
          ctx.get<LocalTasks>(PluginType.Service, 'tasks-service'),
          ctx.metrics?.timer('container-start-time'),
        ),
      ],
    }),
  };
}
