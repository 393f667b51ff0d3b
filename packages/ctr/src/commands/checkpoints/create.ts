import { Args, Flags } from '@oclif/core';
import { packAny } from '@ctrd/api-proto';
import { ImagesService } from '@ctrd/api-proto/images';
import { CheckpointOptionsSchema } from '@ctrd/api-proto/runc-options';
import { TasksService } from '@ctrd/api-proto/tasks';
import { create } from '@bufbuild/protobuf';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { CHECKPOINT_LABEL, checkpointImage, OPTION_LABELS } from '../../checkpoint-names.js';

/** The seed's `ctr checkpoints create [--tcp] [--unix-sockets] [--exit] [--shell] ID NAME`. */
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
  static override flags = {
    tcp: Flags.boolean({ summary: 'allow open TCP connections' }),
    'unix-sockets': Flags.boolean({ summary: 'allow external unix sockets' }),
    exit: Flags.boolean({ summary: 'stop the container after the checkpoint' }),
    shell: Flags.boolean({ summary: 'allow a shell job (a process attached to a terminal)' }),
  };

  async run(): Promise<void> {
    const { id, name } = this.args;
    const options = create(CheckpointOptionsSchema, {
      exit: this.flags.exit,
      openTcp: this.flags.tcp,
      externalUnixSockets: this.flags['unix-sockets'],
      terminal: this.flags.shell,
    });
    const res = await this.clients.get(TasksService).checkpoint({
      containerId: id,
      options: packAny(CheckpointOptionsSchema, options),
    });
    const target = res.descriptors[0];
    if (!target) throw new Error(`checkpoint of "${id}": the daemon returned no checkpoint data`);
    await this.clients.get(ImagesService).create({
      image: {
        name: checkpointImage(id, name),
        labels: {
          [CHECKPOINT_LABEL]: 'true',
          [OPTION_LABELS.tcp]: String(this.flags.tcp),
          [OPTION_LABELS.unixSockets]: String(this.flags['unix-sockets']),
          [OPTION_LABELS.shell]: String(this.flags.shell),
          [OPTION_LABELS.exit]: String(this.flags.exit),
        },
        target,
      },
    });
    this.out(name);
  }
}
