import { Args } from '@oclif/core';
import { LeasesService } from '@ctrd/api-proto/leases';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { allNamespacesFlag, jsonFlag, quietFlag } from '../../flags.js';
import { formatLabels, sortedLabels } from '../../labels.js';
import { listInScope } from '../../scope.js';
import { isoTime } from '../../time.js';

export interface LeaseJson {
  namespace: string;
  id: string;
  createdAt?: string;
  labels: Record<string, string>;
}

export default class LeasesLs extends CtrCommand<typeof LeasesLs> {
  static override summary = 'list leases: ID  CREATED AT  LABELS';
  static override hiddenAliases = aliasesOf('leases', ['ls', 'list']);
  static override strict = false;
  static override args = {
    filter: Args.string({ description: 'filters such as id==x or labels.a==b (ORed)' }),
  };
  static override usage = '<%= command.id %> [FILTER...]';
  static override flags = { quiet: quietFlag, json: jsonFlag, 'all-namespaces': allNamespacesFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const all = this.flags['all-namespaces'];
    const found = await listInScope({
      clients: this.clients,
      noun: 'leases',
      all,
      quiet: this.flags.quiet || this.flags.json,
      list: async (clients) => (await clients.get(LeasesService).list({ filters })).leases,
      note: (text) => this.note(text),
    });
    if (this.flags.quiet) return this.out(found.map((f) => `${f.item.id}\n`).join(''));
    if (this.flags.json) {
      return this.printJson(
        found.map(
          (f): LeaseJson => ({
            namespace: f.namespace,
            id: f.item.id,
            ...(isoTime(f.item.createdAt) ? { createdAt: isoTime(f.item.createdAt) } : {}),
            labels: sortedLabels(f.item.labels),
          }),
        ),
      );
    }
    this.printTable(
      [...(all ? ['NAMESPACE'] : []), 'ID', 'CREATED AT', 'LABELS'],
      found.map((f) => [
        ...(all ? [f.namespace] : []),
        f.item.id,
        isoTime(f.item.createdAt) ?? '-',
        formatLabels(f.item.labels) || '-',
      ]),
    );
  }
}
