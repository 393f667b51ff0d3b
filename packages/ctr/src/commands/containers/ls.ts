import { Args } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { listContainers } from '../../containers-api.js';
import { allNamespacesFlag, jsonFlag, quietFlag } from '../../flags.js';
import { listInScope } from '../../scope.js';

export default class ContainersLs extends CtrCommand<typeof ContainersLs> {
  static override summary = 'list containers: CONTAINER  IMAGE  RUNTIME';
  static override hiddenAliases = aliasesOf('containers', ['ls', 'list']);
  static override strict = false;
  static override args = {
    filter: Args.string({ description: 'filters such as labels.app==web or runtime.name~=runc (ORed)' }),
  };
  static override usage = '<%= command.id %> [FILTER...]';
  static override flags = { quiet: quietFlag, json: jsonFlag, 'all-namespaces': allNamespacesFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const all = this.flags['all-namespaces'];
    const found = await listInScope({
      clients: this.clients,
      noun: 'containers',
      all,
      quiet: this.flags.quiet || this.flags.json,
      list: (clients) => listContainers(clients, filters),
      note: (text) => this.note(text),
    });
    found.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.item.id.localeCompare(b.item.id));
    if (this.flags.quiet) return this.out(found.map((f) => `${f.item.id}\n`).join(''));
    if (this.flags.json) {
      // Loaded only here: it brings every schema an Any may hold (runtime options and more).
      const { containerJson } = await import('../../container-json.js');
      return this.printJson(found.map((f) => ({ namespace: f.namespace, ...containerJson(f.item) })));
    }
    const rows = found.map((f) => [
      ...(all ? [f.namespace] : []),
      f.item.id,
      f.item.image || '-',
      f.item.runtime?.name ?? '-',
    ]);
    this.printTable([...(all ? ['NAMESPACE'] : []), 'CONTAINER', 'IMAGE', 'RUNTIME'], rows);
  }
}
