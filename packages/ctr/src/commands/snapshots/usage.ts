import { Args, Flags } from '@oclif/core';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { defaultSnapshotter, humanBytes, snapshotterFlag } from '../../images/format.js';
import { listSnapshots } from './ls.js';

export interface UsageJson {
  key: string;
  size: number;
  inodes: number;
}

export default class SnapshotsUsage extends CtrCommand<typeof SnapshotsUsage> {
  static override summary = 'disk usage of snapshots (all, or the keys given): KEY  SIZE  INODES';
  static override hiddenAliases = aliasesOf('snapshots', ['usage']);
  static override strict = false;
  static override args = { key: Args.string({ description: 'snapshot key' }) };
  static override usage = '<%= command.id %> [--snapshotter NAME] [-b] [--json] [KEY...]';
  static override flags = {
    snapshotter: snapshotterFlag,
    bytes: Flags.boolean({ char: 'b', summary: 'print sizes in bytes' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const api = this.clients.get(SnapshotsService);
    let keys = [this.args.key, ...this.rest].filter((k): k is string => k !== undefined);
    if (keys.length === 0) keys = (await listSnapshots(api, snapshotter)).map((i) => i.name);
    const rows: UsageJson[] = [];
    for (const key of keys) {
      const u = await api.usage({ snapshotter, key });
      rows.push({ key, size: Number(u.size), inodes: Number(u.inodes) });
    }
    if (this.flags.json) return this.printJson(rows);
    this.printTable(
      ['KEY', 'SIZE', 'INODES'],
      rows.map((r) => [r.key, this.flags.bytes ? String(r.size) : humanBytes(r.size), String(r.inodes)]),
    );
  }
}
