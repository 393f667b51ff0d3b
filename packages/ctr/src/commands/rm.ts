import { Args, Flags } from '@oclif/core';
import { CtrCommand } from '../base-command.js';
import { describeError } from '../errors.js';
import { removeContainer } from '../container-remove.js';

export default class Rm extends CtrCommand<typeof Rm> {
  static override summary = 'remove containers with their tasks and snapshots; prints each removed id';
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override usage = '<%= command.id %> [-f] ID...';
  static override flags = { force: Flags.boolean({ char: 'f', summary: 'kill running tasks first' }) };

  async run(): Promise<void> {
    let failed = false;
    for (const id of [this.args.id, ...this.rest]) {
      try {
        await removeContainer(this.clients, id, { force: this.flags.force, keepSnapshot: false });
        this.out(id);
      } catch (err) {
        failed = true;
        this.note(describeError(err, { address: this.address }).message);
      }
    }
    if (failed) this.exitWith(1);
  }
}
