import { Args } from '@oclif/core';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { parseLabelArgs } from '../../labels.js';

export default class NamespacesCreate extends CtrCommand<typeof NamespacesCreate> {
  static override summary = 'create a new namespace';
  static override hiddenAliases = aliasesOf('namespaces', ['create', 'c']);
  static override strict = false;
  static override args = {
    name: Args.string({ required: true, description: 'namespace name' }),
  };
  static override usage = '<%= command.id %> NAME [KEY=VALUE...]';

  async run(): Promise<void> {
    const labels = Object.fromEntries(Object.entries(parseLabelArgs(this.rest)).filter(([, v]) => v !== ''));
    await this.clients.get(NamespacesService).create({ namespace: { name: this.args.name, labels } });
  }
}
