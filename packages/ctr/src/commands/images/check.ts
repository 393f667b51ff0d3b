import { Args } from '@oclif/core';
import { type Image, ImagesService } from '@ctrd/api-proto/images';
import { defaultPlatform, type Descriptor } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag, quietFlag } from '../../flags.js';
import { blobInfo } from '../../images/content-io.js';
import { defaultSnapshotter, humanBytes, snapshotterFlag } from '../../images/format.js';
import { fromProto, resolveImage } from '../../images/resolve.js';
import { imageChainIds, isUnpacked } from '../../images/unpack.js';

export interface ImageCheckJson {
  name: string;
  mediaType: string;
  digest: string;
  complete: boolean;
  /** Blobs present / blobs needed for the host platform. */
  present: number;
  required: number;
  /** Bytes present / bytes needed. */
  size: number;
  totalSize: number;
  unpacked: boolean;
  error?: string;
}

export default class ImagesCheck extends CtrCommand<typeof ImagesCheck> {
  static override summary =
    'check that images have all their content and are unpacked: REF TYPE DIGEST STATUS SIZE UNPACKED';
  static override hiddenAliases = aliasesOf('images', ['check']);
  static override strict = false;
  static override args = { filter: Args.string({ description: 'filters such as name==x (ORed)' }) };
  static override usage = '<%= command.id %> [-q] [--json] [--snapshotter NAME] [FILTER...]';
  static override flags = { quiet: quietFlag, json: jsonFlag, snapshotter: snapshotterFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const images = (await this.clients.get(ImagesService).list({ filters })).images.sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    if (this.flags.quiet) return this.out(images.map((i) => `${i.name}\n`).join(''));
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const rows: ImageCheckJson[] = [];
    for (const img of images) rows.push(await this.check(img, snapshotter));
    if (this.flags.json) return this.printJson(rows);
    this.printTable(
      ['REF', 'TYPE', 'DIGEST', 'STATUS', 'SIZE', 'UNPACKED'],
      rows.map((r) => [
        r.name,
        r.mediaType,
        r.digest,
        `${r.complete ? 'complete' : 'incomplete'} (${r.present}/${r.required})`,
        `${humanBytes(r.size)}/${humanBytes(r.totalSize)}`,
        String(r.unpacked),
      ]),
    );
  }

  private async check(img: Image, snapshotter: string): Promise<ImageCheckJson> {
    const target = fromProto(img.target, `image "${img.name}"`);
    const row: ImageCheckJson = {
      name: img.name,
      mediaType: target.mediaType,
      digest: target.digest,
      complete: false,
      present: 0,
      required: 0,
      size: 0,
      totalSize: 0,
      unpacked: false,
    };
    const count = async (d: Descriptor) => {
      row.required++;
      row.totalSize += d.size;
      if (await blobInfo(this.clients, d.digest)) {
        row.present++;
        row.size += d.size;
      }
    };
    try {
      const resolved = await resolveImage(this.clients, img.name, target, defaultPlatform());
      if (resolved.manifestDesc.digest !== target.digest) await count(target);
      for (const d of [resolved.manifestDesc, resolved.manifest.config, ...resolved.manifest.layers])
        await count(d);
      row.unpacked = await isUnpacked(this.clients, imageChainIds(resolved, img.name).at(-1)!, snapshotter);
    } catch (err) {
      await count(target).catch(() => undefined);
      row.error = (err as Error).message;
    }
    row.complete = row.error === undefined && row.present === row.required;
    return row;
  }
}
