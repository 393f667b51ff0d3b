import { Args } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';

export default class TasksPause extends CtrCommand<typeof TasksPause> {
  static override summary = 'freeze every process of a task';
  static override hiddenAliases = aliasesOf('tasks', ['pause']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    await this.clients.get(TasksService).pause({ containerId: this.args.id });
  }
}
