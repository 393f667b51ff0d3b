import { createReadStream } from 'node:fs';
import { Args, Flags } from '@oclif/core';
import { ImagesService } from '@ctrd/api-proto/images';
import { defaultPlatform } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { defaultSnapshotter, parsePlatformFlags, snapshotterFlag } from '../../images/format.js';
import { ArchiveImporter } from '../../images/importer.js';
import { unpackImage } from '../../images/unpack.js';
import { callOptions, withLease } from '../../images/with-lease.js';

export default class ImagesImport extends CtrCommand<typeof ImagesImport> {
  static override summary =
    'import images from an OCI layout or `docker save` tar (FILE, or - for stdin); prints their names';
  static override description =
    'Names come from the io.containerd.image.name annotation, else org.opencontainers.image.ref.name ' +
    '(a bare tag is prefixed with --base-name, default import-YYYY-MM-DD), or from docker RepoTags. ' +
    'The images are unpacked into the snapshotter unless --no-unpack. A bad archive creates no image.';
  static override hiddenAliases = aliasesOf('images', ['import']);
  static override args = {
    file: Args.string({ required: true, description: 'archive path, or - for stdin' }),
  };
  static override usage = '<%= command.id %> [FLAGS] FILE|-';
  static override examples = [
    '<%= config.bin %> images import busybox.tar',
    'docker save busybox | <%= config.bin %> images import -',
  ];
  static override flags = {
    'base-name': Flags.string({
      summary: 'repository for bare tags; full names outside it are skipped',
      helpValue: 'NAME',
    }),
    'index-name': Flags.string({
      summary: 'also create an image of this name for the whole index.json',
      helpValue: 'NAME',
    }),
    'all-platforms': Flags.boolean({
      summary: 'require and check content for every platform, not only this host',
    }),
    'no-unpack': Flags.boolean({ summary: 'do not unpack the images into the snapshotter' }),
    snapshotter: snapshotterFlag,
    platform: Flags.string({
      summary: 'platform to check and unpack (default: this host)',
      helpValue: 'OS/ARCH[/VARIANT]',
    }),
  };

  async run(): Promise<void> {
    const platform =
      parsePlatformFlags(this.flags.platform ? [this.flags.platform] : [])[0] ?? defaultPlatform();
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const file = this.args.file;
    const source: AsyncIterable<Uint8Array> =
      file === '-' ? (this.io.stdin as AsyncIterable<Uint8Array>) : createReadStream(file);
    const progress = (line: string) => this.note(line);
    await withLease(this.clients, async (lease) => {
      const importer = new ArchiveImporter(this.clients, {
        lease,
        baseName: this.flags['base-name'],
        indexName: this.flags['index-name'],
        allPlatforms: this.flags['all-platforms'],
        platform,
        progress,
      });
      const images = await importer.import(source);
      if (!this.flags['no-unpack']) {
        const done = new Set<string>();
        try {
          for (const img of images) {
            if (done.has(img.target.digest)) continue;
            await unpackImage(this.clients, img, { snapshotter, platform, lease, progress });
            done.add(img.target.digest);
          }
        } catch (err) {
          // A layer that cannot be unpacked makes the import fail as a whole: drop the names it made.
          const api = this.clients.get(ImagesService);
          for (const img of images.filter((i) => i.created)) {
            await api.delete({ name: img.name, sync: false }, callOptions(lease)).catch(() => undefined);
          }
          throw err;
        }
      }
      for (const img of images) this.out(img.name);
    });
  }
}
