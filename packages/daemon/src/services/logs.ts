import { InvalidArgument, namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { LogsService } from '@ctrd/api-proto/logs';
import { type PluginRegistration, PluginType } from '../plugin.js';
import type { LocalTasks } from '../runtime/local-tasks.js';

// ctrd.services.logs.v1.Logs: a thin Connect half over LocalTasks, which relays the task's shim.

export function logsService(tasks: LocalTasks): ServiceRegistration {
  return service(LogsService, {
    async *read(req, ctx) {
      const ns = namespaceFromContext(ctx);
      if (req.containerId === '') throw new InvalidArgument('container id: must not be empty');
      yield* tasks.readLogs(ns, req, ctx.signal);
    },
  });
}

/** The Connect service (io.containerd.grpc.v1.logs), on the local tasks service. */
export function logsGrpcPlugin(): PluginRegistration {
  return {
    type: PluginType.Grpc,
    id: 'logs',
    requires: [PluginType.Service],
    init: (ctx) => ({ services: [logsService(ctx.get<LocalTasks>(PluginType.Service, 'tasks-service'))] }),
  };
}
