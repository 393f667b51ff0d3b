import { Args, Flags } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { removeContainer } from '../../container-remove.js';
import { describeError } from '../../errors.js';

export default class ContainersRm extends CtrCommand<typeof ContainersRm> {
  static override summary = 'delete one or more containers (and their stopped tasks)';
  static override hiddenAliases = aliasesOf('containers', ['rm', 'delete', 'del', 'remove']);
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override usage = '<%= command.id %> [--force] [--keep-snapshot] ID...';
  static override flags = {
    force: Flags.boolean({ char: 'f', summary: 'kill a running task first' }),
    'keep-snapshot': Flags.boolean({ summary: "keep the container's snapshot" }),
  };

  async run(): Promise<void> {
    let failed = false;
    for (const id of [this.args.id, ...this.rest]) {
      try {
        await removeContainer(this.clients, id, {
          force: this.flags.force,
          keepSnapshot: this.flags['keep-snapshot'],
        });
      } catch (err) {
        failed = true;
        this.note(describeError(err, { address: this.address }).message);
      }
    }
    if (failed) this.exitWith(1);
  }
}
