import { Args, Flags } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { parseSignal } from '../../signals.js';
import { getContainer } from '../../task-create.js';

/** The label images use for their STOPSIGNAL; containerd's ctr honours it. */
export const STOP_SIGNAL_LABEL = 'io.containerd.image.config.stop-signal';

export default class TasksKill extends CtrCommand<typeof TasksKill> {
  static override summary = 'signal a task (default: its stop signal, else SIGTERM)';
  static override hiddenAliases = aliasesOf('tasks', ['kill']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    signal: Flags.string({ char: 's', summary: 'signal name or number', helpValue: 'SIGNAL' }),
    'exec-id': Flags.string({
      summary: 'signal this exec process instead of the init process',
      helpValue: 'ID',
    }),
    all: Flags.boolean({ summary: 'signal every process in the container' }),
  };

  async run(): Promise<void> {
    const id = this.args.id;
    let signal = this.flags.signal;
    if (signal === undefined)
      signal = (await getContainer(this.clients, id)).labels[STOP_SIGNAL_LABEL] || 'SIGTERM';
    await this.clients.get(TasksService).kill({
      containerId: id,
      execId: this.flags['exec-id'] ?? '',
      signal: parseSignal(signal),
      all: this.flags.all,
    });
  }
}
