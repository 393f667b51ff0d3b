import { NotFound, namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { TasksService } from '@ctrd/api-proto/tasks';
import type { LocalContainers } from './containers.js';

// Until the shim manager lands, no task can exist. Stock `ctr c rm` still asks Tasks.Get and needs
// an honest NotFound, and `ctr t ls` needs an empty list; every other Tasks method stays
// Unimplemented (the server's fallback). The tasks work replaces this plugin.

export function tasksPlaceholderService(containers: LocalContainers): ServiceRegistration {
  return service(TasksService, {
    get: async (req, ctx) => {
      const ns = namespaceFromContext(ctx);
      // Like containerd: an unknown container is reported as such before the task.
      containers.get(ns, req.containerId);
      throw new NotFound(`task ${req.containerId} not found`);
    },
    list: async (_req, ctx) => {
      namespaceFromContext(ctx);
      return { tasks: [] };
    },
  });
}
