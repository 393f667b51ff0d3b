import { Args } from '@oclif/core';
import { ImagesService } from '@ctrd/api-proto/images';
import { topicAliases } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { CHECKPOINT_LABEL, CHECKPOINT_PREFIX, OPTION_LABELS } from '../../checkpoint-names.js';
import { jsonFlag, quietFlag } from '../../flags.js';

export interface CheckpointJson {
  name: string;
  image: string;
  tcp: boolean;
  unixSockets: boolean;
  shell: boolean;
}

/** containerd 0.x's `ctr checkpoints ID`: NAME  TCP  UNIX SOCKETS  SHELL. */
export default class Checkpoints extends CtrCommand<typeof Checkpoints> {
  static override summary = "list a container's checkpoints: NAME  TCP  UNIX SOCKETS  SHELL";
  static override hiddenAliases = topicAliases('checkpoints');
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { quiet: quietFlag, json: jsonFlag };

  async run(): Promise<void> {
    const prefix = `${CHECKPOINT_PREFIX}${this.args.id}:`;
    const res = await this.clients
      .get(ImagesService)
      .list({ filters: [`labels."${CHECKPOINT_LABEL}"==true`] });
    const found = res.images
      .filter((i) => i.name.startsWith(prefix))
      .map(
        (i): CheckpointJson => ({
          name: i.name.slice(prefix.length),
          image: i.name,
          tcp: i.labels[OPTION_LABELS.tcp] === 'true',
          unixSockets: i.labels[OPTION_LABELS.unixSockets] === 'true',
          shell: i.labels[OPTION_LABELS.shell] === 'true',
        }),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
    if (this.flags.quiet) return this.out(found.map((c) => `${c.name}\n`).join(''));
    if (this.flags.json) return this.printJson(found);
    this.printTable(
      ['NAME', 'TCP', 'UNIX SOCKETS', 'SHELL'],
      found.map((c) => [c.name, String(c.tcp), String(c.unixSockets), String(c.shell)]),
    );
  }
}
