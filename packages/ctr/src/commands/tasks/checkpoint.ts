import { Args } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { checkpointFlags, checkpointTask } from '../../checkpoint-task.js';

/** containerd 1.x's `ctr tasks checkpoint`; the name defaults to the time, as containerd's does. */
export default class TasksCheckpoint extends CtrCommand<typeof TasksCheckpoint> {
  static override summary =
    'checkpoint a task with CRIU (same as `checkpoints create`; NAME defaults to the time)';
  static override hiddenAliases = aliasesOf('tasks', ['checkpoint']);
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    name: Args.string({ description: 'checkpoint name (default: the current time, e.g. 20261123T080000Z)' }),
  };
  static override flags = checkpointFlags;

  async run(): Promise<void> {
    const id = this.args.id;
    const name =
      this.args.name ??
      new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z');
    await checkpointTask(this.clients, {
      id,
      name,
      tcp: this.flags.tcp,
      unixSockets: this.flags['unix-sockets'],
      exit: this.flags.exit,
      shell: this.flags.shell,
    });
    this.out(name);
  }
}
