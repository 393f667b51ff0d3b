import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag, quietFlag } from '../../flags.js';
import { formatLabels, sortedLabels } from '../../labels.js';

export interface NamespaceJson {
  name: string;
  labels: Record<string, string>;
}

export default class NamespacesLs extends CtrCommand<typeof NamespacesLs> {
  static override summary = 'list namespaces';
  static override hiddenAliases = aliasesOf('namespaces', ['ls', 'list']);
  static override flags = { quiet: quietFlag, json: jsonFlag };

  async run(): Promise<void> {
    const res = await this.clients.get(NamespacesService).list({});
    const namespaces = [...res.namespaces].sort((a, b) => a.name.localeCompare(b.name));
    if (this.flags.quiet) return this.out(namespaces.map((ns) => `${ns.name}\n`).join(''));
    if (this.flags.json) {
      return this.printJson(
        namespaces.map((ns): NamespaceJson => ({ name: ns.name, labels: sortedLabels(ns.labels) })),
      );
    }
    this.printTable(
      ['NAME', 'LABELS'],
      namespaces.map((ns) => [ns.name, formatLabels(ns.labels)]),
    );
  }
}
