import { Args, Flags } from '@oclif/core';
import { isAlreadyExists } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { callOptions, withLease } from '../../images/with-lease.js';

export default class ImagesTag extends CtrCommand<typeof ImagesTag> {
  static override summary = 'give an image more names; prints each new name';
  static override hiddenAliases = aliasesOf('images', ['tag']);
  static override strict = false;
  static override args = {
    source: Args.string({ required: true, description: 'existing image name' }),
    target: Args.string({ required: true, description: 'new name' }),
  };
  static override usage = '<%= command.id %> [--force] SOURCE TARGET...';
  static override flags = {
    force: Flags.boolean({ summary: 'replace a target name that already exists' }),
  };

  async run(): Promise<void> {
    const api = this.clients.get(ImagesService);
    const targets = [this.args.target, ...this.rest];
    await withLease(this.clients, async (lease) => {
      const opts = callOptions(lease);
      const source = (await api.get({ name: this.args.source }, opts)).image;
      if (!source) throw new Error(`image "${this.args.source}": the daemon returned no image`);
      for (const name of targets) {
        const image = { name, target: source.target, labels: { ...source.labels } };
        try {
          await api.create({ image }, opts);
        } catch (err) {
          if (!isAlreadyExists(err) || !this.flags.force) {
            if (isAlreadyExists(err))
              throw new Error(`image "${name}": already exists: use --force to replace it`);
            throw err;
          }
          await api.delete({ name, sync: false }, opts);
          await api.create({ image }, opts);
        }
        this.out(name);
      }
    });
  }
}
