import { Args } from '@oclif/core';
import { fromTimestamp } from '@ctrd/api-proto/client';
import { ContentService, type Info } from '@ctrd/api-proto/content';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag, quietFlag } from '../../flags.js';
import { humanAge, humanBytes } from '../../images/format.js';
import { formatLabels, sortedLabels } from '../../labels.js';
import { isoTime } from '../../time.js';

export interface ContentJson {
  digest: string;
  size: number;
  createdAt?: string;
  updatedAt?: string;
  labels: Record<string, string>;
}

export default class ContentLs extends CtrCommand<typeof ContentLs> {
  static override summary = 'list blobs in the content store: DIGEST  SIZE  AGE  LABELS';
  static override hiddenAliases = aliasesOf('content', ['ls', 'list']);
  static override strict = false;
  static override args = {
    filter: Args.string({ description: 'filters such as digest==x, labels.a==b (ORed)' }),
  };
  static override usage = '<%= command.id %> [-q] [--json] [FILTER...]';
  static override flags = { quiet: quietFlag, json: jsonFlag };

  async run(): Promise<void> {
    const filters = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined);
    const infos: Info[] = [];
    for await (const res of this.clients.get(ContentService).list({ filters })) infos.push(...res.info);
    infos.sort((a, b) => a.digest.localeCompare(b.digest));
    if (this.flags.quiet) return this.out(infos.map((i) => `${i.digest}\n`).join(''));
    if (this.flags.json) {
      return this.printJson(
        infos.map((i): ContentJson => {
          const out: ContentJson = { digest: i.digest, size: Number(i.size), labels: sortedLabels(i.labels) };
          const created = isoTime(i.createdAt);
          if (created) out.createdAt = created;
          const updated = isoTime(i.updatedAt);
          if (updated) out.updatedAt = updated;
          return out;
        }),
      );
    }
    const now = new Date();
    this.printTable(
      ['DIGEST', 'SIZE', 'AGE', 'LABELS'],
      infos.map((i) => {
        const created = fromTimestamp(i.createdAt);
        return [
          i.digest,
          humanBytes(Number(i.size)),
          created ? humanAge(created, now) : '-',
          formatLabels(i.labels) || '-',
        ];
      }),
    );
  }
}
