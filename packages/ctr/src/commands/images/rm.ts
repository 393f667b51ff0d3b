import { Args, Flags } from '@oclif/core';
import { isNotFound } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { describeError } from '../../errors.js';

export default class ImagesRm extends CtrCommand<typeof ImagesRm> {
  static override summary = 'remove images by name; prints each removed name (a missing one is a warning)';
  static override description =
    'The content and snapshots only the image used are garbage collected afterwards; --sync waits for that.';
  static override hiddenAliases = aliasesOf('images', ['rm', 'remove', 'delete', 'del']);
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'image name' }) };
  static override usage = '<%= command.id %> [--sync] NAME...';
  static override flags = {
    sync: Flags.boolean({ summary: 'wait for garbage collection of what the images held' }),
  };

  async run(): Promise<void> {
    const api = this.clients.get(ImagesService);
    let failed = false;
    for (const name of [this.args.name, ...this.rest]) {
      try {
        await api.delete({ name, sync: this.flags.sync });
        this.out(name);
      } catch (err) {
        if (isNotFound(err)) {
          this.note(`image "${name}": not found`);
          continue;
        }
        failed = true;
        this.note(`image "${name}": ${describeError(err, { address: this.address }).message}`);
      }
    }
    if (failed) this.exitWith(1);
  }
}
