import { Args } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { checkpointFlags, checkpointTask } from '../../checkpoint-task.js';

/** containerd 0.x's `ctr checkpoints create [--tcp] [--unix-sockets] [--exit] [--shell] ID NAME`. */
export default class CheckpointsCreate extends CtrCommand<typeof CheckpointsCreate> {
  static override summary = 'checkpoint a task with CRIU and record it as NAME';
  static override description =
    'Tasks.Checkpoint with runc options, then an image containerd.io/checkpoint/<ID>:<NAME> pointing at the ' +
    'checkpoint. CRIU must work on this host.';
  static override hiddenAliases = aliasesOf('checkpoints', ['create']);
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    name: Args.string({ required: true, description: 'checkpoint name' }),
  };
  static override flags = checkpointFlags;

  async run(): Promise<void> {
    const { id, name } = this.args;
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
