import { Args, Flags } from '@oclif/core';
import { ContainersService } from '@ctrd/api-proto/containers';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonAnywayFlag } from '../../flags.js';
import { containerJson } from '../../container-json.js';

export default class ContainersInfo extends CtrCommand<typeof ContainersInfo> {
  static override summary = 'print a container as JSON, its OCI spec decoded';
  static override hiddenAliases = aliasesOf('containers', ['info']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    spec: Flags.boolean({ summary: 'print only the OCI spec' }),
    json: jsonAnywayFlag,
  };

  async run(): Promise<void> {
    const res = await this.clients.get(ContainersService).get({ id: this.args.id });
    if (!res.container) throw new Error(`container "${this.args.id}": the daemon returned no container`);
    const info = containerJson(res.container, true);
    this.printJson(this.flags.spec ? info.spec : info);
  }
}
