import { Args } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { ProcessSession } from '../../attach.js';
import { CtrCommand } from '../../base-command.js';
import { sessionFlags } from '../../session-flags.js';
import { createTask, getContainer, specOf } from '../../task-create.js';

export default class TasksStart extends CtrCommand<typeof TasksStart> {
  static override summary = "start a container's task; without -d, attach and exit with its status";
  static override hiddenAliases = aliasesOf('tasks', ['start']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { ...sessionFlags };

  async run(): Promise<void> {
    const id = this.args.id;
    const container = await getContainer(this.clients, id);
    const session = new ProcessSession(this.clients, this.io, {
      containerId: id,
      execId: '',
      terminal: specOf(container)?.process?.terminal === true,
      detach: this.flags.detach,
      nullIo: this.flags['null-io'],
      fifoDir: this.flags['fifo-dir'],
      handleSignals: this.interactive,
    });
    await session.create((stdio) => createTask(this.clients, container, stdio).then(() => undefined));
    let status: number | undefined;
    try {
      status = await session.run();
    } catch (err) {
      // A task that failed to start would block the next start; containerd's ctr deletes it too.
      await this.clients
        .get(TasksService)
        .delete({ containerId: id })
        .catch(() => undefined);
      throw err;
    }
    if (status === undefined) return;
    await this.clients.get(TasksService).delete({ containerId: id });
    if (status !== 0) this.exitWith(status);
  }
}
