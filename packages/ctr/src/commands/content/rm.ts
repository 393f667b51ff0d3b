import { Args } from '@oclif/core';
import { isNotFound } from '@ctrd/api-proto/client';
import { ContentService } from '@ctrd/api-proto/content';
import { parseDigest } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { describeError } from '../../errors.js';

export default class ContentRm extends CtrCommand<typeof ContentRm> {
  static override summary = 'remove blobs from the content store; prints each removed digest';
  static override hiddenAliases = aliasesOf('content', ['rm', 'delete', 'del', 'remove']);
  static override strict = false;
  static override args = { digest: Args.string({ required: true, description: 'blob digest' }) };
  static override usage = '<%= command.id %> DIGEST...';

  async run(): Promise<void> {
    const api = this.clients.get(ContentService);
    let failed = false;
    for (const digest of [this.args.digest, ...this.rest]) {
      try {
        parseDigest(digest);
        await api.delete({ digest });
        this.out(digest);
      } catch (err) {
        failed = true;
        const message = describeError(err, { address: this.address }).message;
        this.note(isNotFound(err) ? `content ${digest}: not found` : message);
      }
    }
    if (failed) this.exitWith(1);
  }
}
