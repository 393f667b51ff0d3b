import { Args } from '@oclif/core';
import { anyIs, unpackAnyAs } from '@ctrd/api-proto/client';
import { ProcessDetailsSchema } from '@ctrd/api-proto/runc-options';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';

export default class TasksPs extends CtrCommand<typeof TasksPs> {
  static override summary = "list a task's processes: PID  INFO (the exec id of exec'd processes)";
  static override hiddenAliases = aliasesOf('tasks', ['ps']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { json: jsonFlag };

  async run(): Promise<void> {
    const res = await this.clients.get(TasksService).listPids({ containerId: this.args.id });
    const rows = res.processes.map((p) => ({
      pid: p.pid,
      execId: anyIs(p.info, ProcessDetailsSchema)
        ? unpackAnyAs(p.info, ProcessDetailsSchema).execId
        : undefined,
    }));
    if (this.flags.json) return this.printJson(rows.map((r) => (r.execId ? r : { pid: r.pid })));
    this.printTable(
      ['PID', 'INFO'],
      rows.map((r) => [String(r.pid), r.execId ? `exec ${r.execId}` : '-']),
    );
  }
}
