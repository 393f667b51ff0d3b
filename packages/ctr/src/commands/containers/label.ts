import { Args } from '@oclif/core';
import { ContainersService } from '@ctrd/api-proto/containers';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { formatLabels, parseLabelArgs, sortedLabels } from '../../labels.js';

export default class ContainersLabel extends CtrCommand<typeof ContainersLabel> {
  static override summary = 'set and clear labels of a container (KEY= clears); prints the labels after';
  static override hiddenAliases = aliasesOf('containers', ['label']);
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { json: jsonFlag };
  static override usage = '<%= command.id %> ID [KEY=VALUE...]';

  async run(): Promise<void> {
    const changes = parseLabelArgs(this.rest);
    const api = this.clients.get(ContainersService);
    const keys = Object.keys(changes);
    let labels: Record<string, string> | undefined;
    if (keys.length > 0) {
      const res = await api.update({
        container: { id: this.args.id, labels: changes },
        updateMask: { paths: keys.map((k) => `labels.${k}`) },
      });
      labels = res.container?.labels;
    } else {
      labels = (await api.get({ id: this.args.id })).container?.labels;
    }
    if (this.flags.json) return this.printJson(sortedLabels(labels));
    this.out(formatLabels(labels));
  }
}
