import { Args, Flags } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { describeError } from '../../errors.js';
import { findTask, forceDeleteTask, isLive, statusName } from '../../tasks-api.js';

export default class TasksRm extends CtrCommand<typeof TasksRm> {
  static override summary = 'delete stopped tasks (or an exec process); -f kills a live one first';
  static override hiddenAliases = aliasesOf('tasks', ['rm', 'delete', 'del', 'remove']);
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override usage = '<%= command.id %> [-f] [--exec-id ID] ID...';
  static override flags = {
    force: Flags.boolean({ char: 'f', summary: 'kill the task first if it is running' }),
    'exec-id': Flags.string({ summary: 'delete this exec process, not the task', helpValue: 'ID' }),
  };

  async run(): Promise<void> {
    const tasks = this.clients.get(TasksService);
    let failed = false;
    for (const id of [this.args.id, ...this.rest]) {
      try {
        const execId = this.flags['exec-id'];
        if (execId) {
          await tasks.deleteProcess({ containerId: id, execId });
          continue;
        }
        const task = await findTask(this.clients, id);
        if (!task) throw new Error(`container "${id}" has no task`);
        if (isLive(task.status) && !this.flags.force) {
          throw new Error(
            `task "${id}" is ${statusName(task.status)}: stop it first (ctr tasks kill ${id}) or use --force`,
          );
        }
        if (this.flags.force) await forceDeleteTask(this.clients, id);
        else await tasks.delete({ containerId: id });
      } catch (err) {
        failed = true;
        this.note(describeError(err, { address: this.address }).message);
      }
    }
    if (failed) this.exitWith(1);
  }
}
