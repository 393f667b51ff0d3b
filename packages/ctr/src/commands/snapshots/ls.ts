import { Args } from '@oclif/core';
import { Kind, type Info, SnapshotsService } from '@ctrd/api-proto/snapshots';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag, quietFlag } from '../../flags.js';
import { defaultSnapshotter, snapshotterFlag } from '../../images/format.js';
import { sortedLabels } from '../../labels.js';
import { isoTime } from '../../time.js';

export interface SnapshotJson {
  key: string;
  parent: string;
  kind: string;
  createdAt?: string;
  updatedAt?: string;
  labels: Record<string, string>;
}

export function kindName(kind: Kind): string {
  switch (kind) {
    case Kind.ACTIVE:
      return 'Active';
    case Kind.VIEW:
      return 'View';
    case Kind.COMMITTED:
      return 'Committed';
    default:
      return 'Unknown';
  }
}

export function snapshotJson(info: Info): SnapshotJson {
  const out: SnapshotJson = {
    key: info.name,
    parent: info.parent,
    kind: kindName(info.kind),
    labels: sortedLabels(info.labels),
  };
  const created = isoTime(info.createdAt);
  if (created) out.createdAt = created;
  const updated = isoTime(info.updatedAt);
  if (updated) out.updatedAt = updated;
  return out;
}

export async function listSnapshots(
  api: { list: (req: { snapshotter: string; filters: string[] }) => AsyncIterable<{ info: Info[] }> },
  snapshotter: string,
  filters: string[] = [],
): Promise<Info[]> {
  const out: Info[] = [];
  for await (const res of api.list({ snapshotter, filters })) out.push(...res.info);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export default class SnapshotsLs extends CtrCommand<typeof SnapshotsLs> {
  static override summary = 'list snapshots: KEY  PARENT  KIND';
  static override hiddenAliases = aliasesOf('snapshots', ['ls', 'list']);
  static override strict = false;
  static override args = {
    filter: Args.string({ description: 'filters such as kind==committed, parent==x (ORed)' }),
  };
  static override usage = '<%= command.id %> [--snapshotter NAME] [-q] [--json] [FILTER...]';
  static override flags = { snapshotter: snapshotterFlag, quiet: quietFlag, json: jsonFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const infos = await listSnapshots(this.clients.get(SnapshotsService), snapshotter, filters);
    if (this.flags.quiet) return this.out(infos.map((i) => `${i.name}\n`).join(''));
    if (this.flags.json) return this.printJson(infos.map(snapshotJson));
    this.printTable(
      ['KEY', 'PARENT', 'KIND'],
      infos.map((i) => [i.name, i.parent, kindName(i.kind)]),
    );
  }
}
