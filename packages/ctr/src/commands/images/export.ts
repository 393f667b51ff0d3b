import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Args, Flags } from '@oclif/core';
import { defaultPlatform } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { ImageExporter } from '../../images/exporter.js';
import { parsePlatformFlags } from '../../images/format.js';

export default class ImagesExport extends CtrCommand<typeof ImagesExport> {
  static override summary = 'export images as an OCI layout tar (FILE, or - for stdout)';
  static override description =
    'Each image becomes an index.json entry annotated with its name (io.containerd.image.name) and tag ' +
    '(org.opencontainers.image.ref.name); a docker manifest.json is added for `docker load`. Only this ' +
    "host's platform is included unless --platform or --all-platforms.";
  static override hiddenAliases = aliasesOf('images', ['export']);
  static override strict = false;
  static override args = {
    file: Args.string({ required: true, description: 'archive path, or - for stdout' }),
    image: Args.string({ required: true, description: 'image name' }),
  };
  static override usage = '<%= command.id %> [--platform P]... [--all-platforms] FILE|- IMAGE...';
  static override flags = {
    platform: Flags.string({
      summary: 'include this platform (repeatable)',
      multiple: true,
      multipleNonGreedy: true,
      helpValue: 'OS/ARCH[/VARIANT]',
    }),
    'all-platforms': Flags.boolean({ summary: 'include every platform' }),
    'skip-manifest-json': Flags.boolean({ summary: 'leave out the docker manifest.json' }),
    'skip-non-distributable': Flags.boolean({ summary: 'leave out non-distributable (foreign) layers' }),
  };

  async run(): Promise<void> {
    const platforms = parsePlatformFlags(this.flags.platform);
    const exporter = new ImageExporter(this.clients, {
      platforms: platforms.length > 0 ? platforms : [defaultPlatform()],
      allPlatforms: this.flags['all-platforms'],
      includeNonDistributable: !this.flags['skip-non-distributable'],
      skipManifestJson: this.flags['skip-manifest-json'],
    });
    const images = await exporter.prepare([this.args.image, ...this.rest]);
    const file = this.args.file;
    const out: NodeJS.WritableStream =
      file === '-' ? this.io.stdout : createWriteStream(file, { mode: 0o644 });
    try {
      await pipeline(Readable.from(exporter.write(images)), out, { end: file !== '-' });
    } catch (err) {
      if (file !== '-') await rm(file, { force: true });
      throw err;
    }
  }
}
