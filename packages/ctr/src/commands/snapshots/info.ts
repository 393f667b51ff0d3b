import { Args } from '@oclif/core';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonAnywayFlag } from '../../flags.js';
import { defaultSnapshotter, snapshotterFlag } from '../../images/format.js';
import { snapshotJson } from './ls.js';

export default class SnapshotsInfo extends CtrCommand<typeof SnapshotsInfo> {
  static override summary = 'print one snapshot as JSON: key, parent, kind, labels, times';
  static override hiddenAliases = aliasesOf('snapshots', ['info']);
  static override args = { key: Args.string({ required: true, description: 'snapshot key' }) };
  static override flags = { snapshotter: snapshotterFlag, json: jsonAnywayFlag };

  async run(): Promise<void> {
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const res = await this.clients.get(SnapshotsService).stat({ snapshotter, key: this.args.key });
    if (!res.info) throw new Error(`snapshot "${this.args.key}": the daemon returned no info`);
    this.printJson(snapshotJson(res.info));
  }
}
