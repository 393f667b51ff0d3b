import { Args } from '@oclif/core';
import { LeasesService } from '@ctrd/api-proto/leases';
import { ContentLabel, normalizeReference } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { callOptions, randomLeaseId } from '../../images/with-lease.js';
import { fetchImage } from '../../registry/fetch.js';
import {
  checkPlatformFlags,
  makeRegistryClient,
  platformFlags,
  progressOn,
  registryFlags,
  wantedPlatforms,
  withInterrupt,
} from '../../registry/session.js';

const HOLD_MS = 24 * 60 * 60 * 1000;

export default class ContentFetch extends CtrCommand<typeof ContentFetch> {
  static override summary =
    'fetch all content of an image into the content store (no image record, no unpack)';
  static override description =
    'Like images pull without creating the image or unpacking it. Progress goes to stderr; the digest of the ' +
    'fetched target to stdout. The content is held by a lease for 24 hours; create an image that refers to it ' +
    '(or pull) to keep it longer.';
  static override hiddenAliases = aliasesOf('content', ['fetch']);
  static override args = {
    ref: Args.string({
      required: true,
      description: 'image reference, e.g. busybox or 127.0.0.1:5000/team/app:1',
    }),
  };
  static override flags = { ...registryFlags, ...platformFlags };

  async run(): Promise<void> {
    checkPlatformFlags(this.flags);
    const ref = normalizeReference(this.args.ref);
    const registry = makeRegistryClient(ref, this.flags, this.io.env);
    const leases = this.clients.get(LeasesService);
    // No image will refer to what is fetched, so the lease stays until it expires: without it the
    // daemon's collector would take the content as soon as ctr exits.
    const lease = randomLeaseId();
    const expires = new Date(Date.now() + HOLD_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await leases.create({ id: lease, labels: { [ContentLabel.gcExpire]: expires } }, callOptions());
    const result = await withInterrupt(this.interactive, async (signal) => {
      const progress = progressOn(this.io.stderr);
      try {
        return await fetchImage({
          clients: this.clients,
          registry,
          ref,
          lease,
          allPlatforms: this.flags['all-platforms'],
          platforms: wantedPlatforms(this.flags.platform),
          allMetadata: this.flags['all-metadata'],
          maxConcurrent: this.flags['max-concurrent-downloads'],
          progress,
          signal,
        });
      } catch (err) {
        // Partial layers stay as ingests (resumable); the lease is not needed for them.
        await leases.delete({ id: lease, sync: false }, callOptions()).catch(() => undefined);
        throw err;
      } finally {
        progress.stop();
      }
    });
    this.note(`content held by lease ${lease} until ${expires}`);
    this.out(result.target.digest);
  }
}
