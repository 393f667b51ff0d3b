import { create } from '@bufbuild/protobuf';
import { packAny } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import { CheckpointOptionsSchema } from '@ctrd/api-proto/runc-options';
import { TasksService } from '@ctrd/api-proto/tasks';
import { Flags } from '@oclif/core';
import { CHECKPOINT_LABEL, checkpointImage, OPTION_LABELS } from './checkpoint-names.js';
import type { Clients } from './clients.js';

export const checkpointFlags = {
  tcp: Flags.boolean({ summary: 'allow open TCP connections' }),
  'unix-sockets': Flags.boolean({ summary: 'allow external unix sockets' }),
  exit: Flags.boolean({ summary: 'stop the container after the checkpoint' }),
  shell: Flags.boolean({ summary: 'allow a shell job (a process attached to a terminal)' }),
};

export interface CheckpointInput {
  id: string;
  name: string;
  tcp: boolean;
  unixSockets: boolean;
  exit: boolean;
  shell: boolean;
}

/**
 * Tasks.Checkpoint with runc's options, then an image record containerd.io/checkpoint/<id>:<name>
 * pointing at the checkpoint, labelled with the options containerd 0.x listed.
 */
export async function checkpointTask(clients: Clients, input: CheckpointInput): Promise<void> {
  const options = create(CheckpointOptionsSchema, {
    exit: input.exit,
    openTcp: input.tcp,
    externalUnixSockets: input.unixSockets,
    terminal: input.shell,
  });
  const res = await clients.get(TasksService).checkpoint({
    containerId: input.id,
    options: packAny(CheckpointOptionsSchema, options),
  });
  const target = res.descriptors[0];
  if (!target) throw new Error(`checkpoint of "${input.id}": the daemon returned no checkpoint data`);
  await clients.get(ImagesService).create({
    image: {
      name: checkpointImage(input.id, input.name),
      labels: {
        [CHECKPOINT_LABEL]: 'true',
        [OPTION_LABELS.tcp]: String(input.tcp),
        [OPTION_LABELS.unixSockets]: String(input.unixSockets),
        [OPTION_LABELS.shell]: String(input.shell),
        [OPTION_LABELS.exit]: String(input.exit),
      },
      target,
    },
  });
}
