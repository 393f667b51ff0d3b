import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { allNamespacesFlag, jsonFlag, quietFlag } from '../../flags.js';
import { listInScope } from '../../scope.js';
import { statusName } from '../../tasks-api.js';
import { isoTime } from '../../time.js';

export interface TaskJson {
  namespace: string;
  id: string;
  pid: number;
  status: string;
  exitStatus?: number;
  exitedAt?: string;
}

export default class TasksLs extends CtrCommand<typeof TasksLs> {
  static override summary = 'list tasks: TASK  PID  STATUS';
  static override hiddenAliases = aliasesOf('tasks', ['ls', 'list']);
  static override flags = { quiet: quietFlag, json: jsonFlag, 'all-namespaces': allNamespacesFlag };

  async run(): Promise<void> {
    const all = this.flags['all-namespaces'];
    const found = await listInScope({
      clients: this.clients,
      noun: 'tasks',
      all,
      quiet: this.flags.quiet || this.flags.json,
      list: async (clients) => (await clients.get(TasksService).list({})).tasks,
      note: (text) => this.note(text),
    });
    found.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.item.id.localeCompare(b.item.id));
    if (this.flags.quiet) return this.out(found.map((f) => `${f.item.id}\n`).join(''));
    if (this.flags.json) {
      return this.printJson(
        found.map(({ namespace, item }): TaskJson => {
          const stopped = statusName(item.status) === 'stopped';
          const exitedAt = isoTime(item.exitedAt);
          return {
            namespace,
            id: item.id,
            pid: item.pid,
            status: statusName(item.status),
            ...(stopped ? { exitStatus: item.exitStatus } : {}),
            ...(exitedAt ? { exitedAt } : {}),
          };
        }),
      );
    }
    this.printTable(
      [...(all ? ['NAMESPACE'] : []), 'TASK', 'PID', 'STATUS'],
      found.map(({ namespace, item }) => [
        ...(all ? [namespace] : []),
        item.id,
        String(item.pid),
        statusName(item.status).toUpperCase(),
      ]),
    );
  }
}
