import { Args } from '@oclif/core';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { describeError } from '../../errors.js';
import { defaultSnapshotter, snapshotterFlag } from '../../images/format.js';

export default class SnapshotsRm extends CtrCommand<typeof SnapshotsRm> {
  static override summary = 'remove snapshots (children first); prints each removed key';
  static override hiddenAliases = aliasesOf('snapshots', ['rm', 'remove', 'delete', 'del']);
  static override strict = false;
  static override args = { key: Args.string({ required: true, description: 'snapshot key' }) };
  static override usage = '<%= command.id %> [--snapshotter NAME] KEY...';
  static override flags = { snapshotter: snapshotterFlag };

  async run(): Promise<void> {
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const api = this.clients.get(SnapshotsService);
    let failed = false;
    for (const key of [this.args.key, ...this.rest]) {
      try {
        await api.remove({ snapshotter, key });
        this.out(key);
      } catch (err) {
        failed = true;
        this.note(`snapshot "${key}": ${describeError(err, { address: this.address }).message}`);
      }
    }
    if (failed) this.exitWith(1);
  }
}
