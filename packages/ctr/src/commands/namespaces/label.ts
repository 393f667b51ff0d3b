import { Args } from '@oclif/core';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { formatLabels, parseLabelArgs, sortedLabels } from '../../labels.js';

export default class NamespacesLabel extends CtrCommand<typeof NamespacesLabel> {
  static override summary = 'set and clear labels of a namespace (KEY= clears); prints the labels after';
  static override hiddenAliases = aliasesOf('namespaces', ['label']);
  static override strict = false;
  static override args = {
    name: Args.string({ required: true, description: 'namespace name' }),
  };
  static override flags = { json: jsonFlag };
  static override usage = '<%= command.id %> NAME [KEY=VALUE...]';

  async run(): Promise<void> {
    const changes = parseLabelArgs(this.rest);
    const api = this.clients.get(NamespacesService);
    const keys = Object.keys(changes);
    if (keys.length > 0) {
      // One mask path per key, so labels not named here are left as they are.
      await api.update({
        namespace: { name: this.args.name, labels: changes },
        updateMask: { paths: keys.map((k) => `labels.${k}`) },
      });
    }
    const res = await api.get({ name: this.args.name });
    if (this.flags.json) return this.printJson(sortedLabels(res.namespace?.labels));
    this.out(formatLabels(res.namespace?.labels));
  }
}
