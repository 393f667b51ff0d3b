import { Args, Flags } from '@oclif/core';
import { ImagesService } from '@ctrd/api-proto/images';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { formatLabels, parseLabelArgs, sortedLabels } from '../../labels.js';

export default class ImagesLabel extends CtrCommand<typeof ImagesLabel> {
  static override summary = 'set and clear labels of an image (KEY= clears); prints the labels after';
  static override hiddenAliases = aliasesOf('images', ['label']);
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'image name' }) };
  static override usage = '<%= command.id %> [--replace-all] NAME [KEY=VALUE...]';
  static override flags = {
    json: jsonFlag,
    'replace-all': Flags.boolean({ char: 'r', summary: 'replace every label with the ones given' }),
  };

  async run(): Promise<void> {
    const changes = parseLabelArgs(this.rest);
    const api = this.clients.get(ImagesService);
    const keys = Object.keys(changes);
    if (keys.length > 0 || this.flags['replace-all']) {
      const labels = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== ''));
      const paths = this.flags['replace-all'] ? ['labels'] : keys.map((k) => `labels.${k}`);
      await api.update({ image: { name: this.args.name, labels }, updateMask: { paths } });
    }
    const res = await api.get({ name: this.args.name });
    if (this.flags.json) return this.printJson(sortedLabels(res.image?.labels));
    this.out(formatLabels(res.image?.labels));
  }
}
