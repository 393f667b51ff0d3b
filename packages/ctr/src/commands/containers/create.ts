import { Args } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { containerFlags } from '../../container-flags.js';
import { createContainer, generateId } from '../../container-create.js';
import { containerJson } from '../../container-json.js';
import { jsonFlag } from '../../flags.js';

export default class ContainersCreate extends CtrCommand<typeof ContainersCreate> {
  static override summary = 'create a container (no task: start it with `ctr tasks start`)';
  static override description =
    'Flags end at the first argument, as in containerd ctr. From an image, the command defaults to its ' +
    'Entrypoint and Cmd. With --rootfs, write `--` instead of an ID to have one generated (it is printed).';
  static override hiddenAliases = aliasesOf('containers', ['create']);
  static override strict = false;
  static override stopAtFirstArg = true;
  static override args = {
    image: Args.string({
      description:
        'image to create it from, e.g. docker.io/library/busybox:latest (with --rootfs: the container id)',
    }),
    id: Args.string({ description: 'container id (with --rootfs: the command)' }),
    command: Args.string({
      description: "command to run and its arguments (default: the image's entrypoint and command)",
    }),
  };
  static override usage = [
    '<%= command.id %> [FLAGS] IMAGE ID [COMMAND [ARG...]]',
    '<%= command.id %> --rootfs DIR [FLAGS] ID COMMAND [ARG...]',
    '<%= command.id %> --rootfs DIR [FLAGS] -- COMMAND [ARG...]',
  ];
  static override examples = [
    '<%= config.bin %> containers create --rootfs /srv/rootfs web sh -c "httpd -f"',
  ];
  static override flags = { ...containerFlags, json: jsonFlag };

  async run(): Promise<void> {
    const positionals = this.positionals;
    if (this.flags.rootfs === undefined && !this.dashDashFirst) {
      const image = positionals[0];
      const id = positionals[1];
      if (!image) return this.usageError('give an image and a container id, or --rootfs DIR');
      if (!id) return this.usageError(`give a container id after the image ${image}`);
      const container = await createContainer(
        this.clients,
        { ...this.flags, id, image, args: positionals.slice(2), progress: (line) => this.note(line) },
        this.io.env,
      );
      if (this.flags.json) this.printJson(containerJson(container));
      return;
    }
    const generated = this.dashDashFirst;
    const id = generated ? generateId() : positionals[0];
    const args = generated ? positionals : positionals.slice(1);
    if (!id) return this.usageError('give a container id, or `--` before the command to generate one');
    if (args.length === 0) {
      this.usageError(
        'give the command to run after the container id (a root filesystem has no default command)',
      );
    }
    const container = await createContainer(this.clients, { ...this.flags, id, args }, this.io.env);
    if (this.flags.json) return this.printJson(containerJson(container));
    if (generated) this.out(id);
  }
}
