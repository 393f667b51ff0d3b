import { Args } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';

export default class TasksResume extends CtrCommand<typeof TasksResume> {
  static override summary = 'thaw a paused task';
  static override hiddenAliases = aliasesOf('tasks', ['resume']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    await this.clients.get(TasksService).resume({ containerId: this.args.id });
  }
}
