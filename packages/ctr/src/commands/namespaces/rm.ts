import { Args } from '@oclif/core';
import { isNotFound } from '@ctrd/api-proto/client';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { describeError } from '../../errors.js';

export default class NamespacesRm extends CtrCommand<typeof NamespacesRm> {
  static override summary = 'remove one or more namespaces (they must be empty)';
  static override hiddenAliases = aliasesOf('namespaces', ['rm', 'remove']);
  static override strict = false;
  static override args = {
    name: Args.string({ required: true, description: 'namespace name' }),
  };
  static override usage = '<%= command.id %> NAME...';

  async run(): Promise<void> {
    let failed = false;
    for (const name of [this.args.name, ...this.rest]) {
      try {
        await this.clients.get(NamespacesService).delete({ name });
        this.out(name);
      } catch (err) {
        // As in containerd's ctr: a namespace that is already gone is a warning, not a failure.
        if (isNotFound(err)) {
          this.note(`warning: namespace "${name}" not found`);
          continue;
        }
        failed = true;
        this.note(
          `cannot remove namespace "${name}": ${describeError(err, { address: this.address }).message}`,
        );
      }
    }
    if (failed) this.exitWith(1);
  }
}
