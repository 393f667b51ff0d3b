import { Args, Flags } from '@oclif/core';
import { isNotFound, NotFound } from '@ctrd/api-proto/client';
import { type Image, ImagesService } from '@ctrd/api-proto/images';
import { normalizeReference, parsePlatform } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { fromProto } from '../../images/resolve.js';
import { callOptions } from '../../images/with-lease.js';
import { pushImage } from '../../registry/push.js';
import { makeRegistryClient, progressOn, registryFlags, withInterrupt } from '../../registry/session.js';

export default class ImagesPush extends CtrCommand<typeof ImagesPush> {
  static override summary = 'push an image to a registry';
  static override description =
    'REMOTE is where it goes (its tag names the pushed manifest); LOCAL is the image to push, REMOTE when absent. ' +
    'Blobs the registry has are not sent again. Progress goes to stderr; the pushed digest to stdout.';
  static override hiddenAliases = aliasesOf('images', ['push']);
  static override args = {
    remote: Args.string({
      required: true,
      description: 'destination reference, e.g. 127.0.0.1:5000/team/app:1',
    }),
    local: Args.string({ description: 'local image name (default: REMOTE)' }),
  };
  static override flags = {
    ...registryFlags,
    platform: Flags.string({
      summary: 'push only the manifest of this platform',
      helpValue: 'OS/ARCH[/VARIANT]',
    }),
    'max-concurrent-uploads': Flags.integer({
      summary: 'blobs uploaded at the same time',
      default: 3,
      min: 1,
      max: 64,
    }),
  };

  async run(): Promise<void> {
    const remote = normalizeReference(this.args.remote);
    const image = await this.localImage(this.args.local ?? this.args.remote);
    const target = fromProto(image.target, `image "${image.name}"`);
    const registry = makeRegistryClient(remote, this.flags, this.io.env);
    const platform = this.flags.platform ? parsePlatform(this.flags.platform) : undefined;
    const pushed = await withInterrupt(this.interactive, async (signal) => {
      const progress = progressOn(this.io.stderr);
      try {
        return await pushImage({
          clients: this.clients,
          registry,
          ref: remote,
          target,
          platform,
          maxConcurrent: this.flags['max-concurrent-uploads'],
          progress,
          signal,
        });
      } finally {
        progress.stop();
      }
    });
    this.out(remote.digest ? remote.reference : `${remote.reference}@${pushed.digest}`);
  }

  /** The image as named, else under its normalized name (`busybox` → docker.io/library/busybox:latest). */
  private async localImage(name: string): Promise<Image> {
    const images = this.clients.get(ImagesService);
    try {
      const found = (await images.get({ name }, callOptions())).image;
      if (found) return found;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const normalized = normalizeReference(name).reference;
      if (normalized === name) throw err;
      const found = (await images.get({ name: normalized }, callOptions())).image;
      if (found) return found;
    }
    throw new NotFound(`image "${name}": not found`);
  }
}
