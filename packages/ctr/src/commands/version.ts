import { IntrospectionService } from '@ctrd/api-proto/introspection';
import { VersionService } from '@ctrd/api-proto/version';
import { CtrCommand } from '../base-command.js';
import { jsonFlag } from '../flags.js';

export interface VersionJson {
  client: { version: string; node: string };
  server: { version: string; revision: string; uuid?: string };
}

export default class Version extends CtrCommand<typeof Version> {
  static override summary = 'print the client and server versions';
  static override flags = { json: jsonFlag };

  async run(): Promise<void> {
    const server = await this.clients.get(VersionService).version({});
    let uuid: string | undefined;
    try {
      uuid = (await this.clients.get(IntrospectionService).server({})).uuid;
    } catch {
      // Introspection is optional (ctrd may not serve it); the version is what was asked for.
    }
    const result: VersionJson = {
      client: { version: this.config.version, node: process.version },
      server: { version: server.version, revision: server.revision, ...(uuid ? { uuid } : {}) },
    };
    if (this.flags.json) return this.printJson(result);
    const lines = [
      'Client:',
      `  Version:  ${result.client.version}`,
      `  Node:     ${result.client.node}`,
      '',
      'Server:',
      `  Version:  ${result.server.version}`,
      `  Revision: ${result.server.revision || '-'}`,
    ];
    if (uuid) lines.push(`  UUID:     ${uuid}`);
    this.out(lines.join('\n'));
  }
}
