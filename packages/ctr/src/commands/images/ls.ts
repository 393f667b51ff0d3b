import { Args } from '@oclif/core';
import { type Image, ImagesService } from '@ctrd/api-proto/images';
import { defaultPlatform } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag, quietFlag } from '../../flags.js';
import { humanBytes, platformList } from '../../images/format.js';
import { fromProto, imagePlatforms, imageSize } from '../../images/resolve.js';
import { formatLabels, sortedLabels } from '../../labels.js';
import { isoTime } from '../../time.js';

export interface ImageJson {
  name: string;
  mediaType: string;
  digest: string;
  /** Bytes for the host platform; absent when content is missing. */
  size?: number;
  platforms: string[];
  labels: Record<string, string>;
  createdAt?: string;
  updatedAt?: string;
}

export default class ImagesLs extends CtrCommand<typeof ImagesLs> {
  static override summary = 'list images: REF  TYPE  DIGEST  SIZE  PLATFORMS  LABELS';
  static override hiddenAliases = aliasesOf('images', ['ls', 'list']);
  static override strict = false;
  static override args = {
    filter: Args.string({ description: 'filters such as name==x, labels.a==b (ORed)' }),
  };
  static override usage = '<%= command.id %> [-q] [--json] [FILTER...]';
  static override flags = { quiet: quietFlag, json: jsonFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const images = (await this.clients.get(ImagesService).list({ filters })).images.sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    if (this.flags.quiet) return this.out(images.map((i) => `${i.name}\n`).join(''));
    const host = defaultPlatform();
    const rows = await Promise.all(images.map((img) => this.describe(img, host)));
    if (this.flags.json) return this.printJson(rows);
    this.printTable(
      ['REF', 'TYPE', 'DIGEST', 'SIZE', 'PLATFORMS', 'LABELS'],
      rows.map((r) => [
        r.name,
        r.mediaType,
        r.digest,
        r.size === undefined ? '-' : humanBytes(r.size),
        r.platforms.join(',') || '-',
        formatLabels(r.labels) || '-',
      ]),
    );
  }

  private async describe(img: Image, host: ReturnType<typeof defaultPlatform>): Promise<ImageJson> {
    const target = img.target ? fromProto(img.target) : undefined;
    let size: number | undefined;
    let platforms: string[] = [];
    if (target) {
      size = await imageSize(this.clients, target, host).catch(() => undefined);
      platforms = await imagePlatforms(this.clients, target)
        .then((p) =>
          platformList(p)
            .split(',')
            .filter((s) => s !== ''),
        )
        .catch(() => []);
    }
    const out: ImageJson = {
      name: img.name,
      mediaType: target?.mediaType ?? '',
      digest: target?.digest ?? '',
      platforms,
      labels: sortedLabels(img.labels),
    };
    if (size !== undefined) out.size = size;
    const created = isoTime(img.createdAt);
    if (created) out.createdAt = created;
    const updated = isoTime(img.updatedAt);
    if (updated) out.updatedAt = updated;
    return out;
  }
}
