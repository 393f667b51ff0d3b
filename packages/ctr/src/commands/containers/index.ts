import { isNotImplemented } from '@ctrd/api-proto/client';
import type { Process } from '@ctrd/api-proto/task-types';
import { TasksService } from '@ctrd/api-proto/tasks';
import { topicAliases } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import type { Clients } from '../../clients.js';
import { listContainers } from '../../containers-api.js';
import { allNamespacesFlag, jsonFlag, quietFlag } from '../../flags.js';
import { listInScope } from '../../scope.js';
import { specOf } from '../../task-create.js';
import { BUNDLE_LABEL } from '../../labels.js';
import { statusName } from '../../tasks-api.js';

export interface ContainerRowJson {
  namespace: string;
  id: string;
  path: string;
  status: string;
  pid1?: number;
}

async function tasksOf(clients: Clients): Promise<Map<string, Process>> {
  try {
    const res = await clients.get(TasksService).list({});
    return new Map(res.tasks.map((t) => [t.id, t]));
  } catch (err) {
    if (isNotImplemented(err)) return new Map();
    throw err;
  }
}

/** containerd 0.x's `ctr containers`: every container with its task, as ID  PATH  STATUS  PID1. */
export default class Containers extends CtrCommand<typeof Containers> {
  static override summary = 'list containers with their tasks: ID  PATH  STATUS  PID1';
  static override description =
    'PATH is the bundle the container was started from (`ctr containers start ID BUNDLE`); for containers ' +
    'made by run or create, which have no bundle of their own, the root filesystem or the image. STATUS is ' +
    'the task status, or "created" when the container has no task.';
  static override hiddenAliases = topicAliases('containers');
  static override flags = { quiet: quietFlag, json: jsonFlag, 'all-namespaces': allNamespacesFlag };

  async run(): Promise<void> {
    const all = this.flags['all-namespaces'];
    const found = await listInScope({
      clients: this.clients,
      noun: 'containers',
      all,
      quiet: this.flags.quiet || this.flags.json,
      list: async (clients) => {
        const [containers, tasks] = await Promise.all([listContainers(clients), tasksOf(clients)]);
        return containers.map((c): Omit<ContainerRowJson, 'namespace'> => {
          const task = tasks.get(c.id);
          const root = specOf(c)?.root?.path;
          const path = c.labels[BUNDLE_LABEL] || (root?.startsWith('/') ? root : c.image || root || '-');
          return {
            id: c.id,
            path,
            status: task ? statusName(task.status) : 'created',
            ...(task && task.pid > 0 ? { pid1: task.pid } : {}),
          };
        });
      },
      note: (text) => this.note(text),
    });
    found.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.item.id.localeCompare(b.item.id));
    if (this.flags.quiet) return this.out(found.map((f) => `${f.item.id}\n`).join(''));
    if (this.flags.json)
      return this.printJson(found.map((f): ContainerRowJson => ({ namespace: f.namespace, ...f.item })));
    this.printTable(
      [...(all ? ['NAMESPACE'] : []), 'ID', 'PATH', 'STATUS', 'PID1'],
      found.map(({ namespace, item }) => [
        ...(all ? [namespace] : []),
        item.id,
        item.path,
        item.status,
        item.pid1 === undefined ? '-' : String(item.pid1),
      ]),
    );
  }
}
