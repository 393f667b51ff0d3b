import { Args, Flags } from '@oclif/core';
import { ContainersService } from '@ctrd/api-proto/containers';
import { TasksService } from '@ctrd/api-proto/tasks';
import { ProcessSession } from '../attach.js';
import { CtrCommand } from '../base-command.js';
import { containerFlags } from '../container-flags.js';
import { createContainer, generateId } from '../container-create.js';
import { removeContainer } from '../container-remove.js';
import { sessionFlags } from '../session-flags.js';
import { createTask } from '../task-create.js';

export default class Run extends CtrCommand<typeof Run> {
  static override summary = 'create a container and run its task; exits with the container’s status';
  static override description =
    'Flags end at the first argument, as in containerd ctr. From an image, the command defaults to the ' +
    "image's Entrypoint and Cmd (a command given replaces Cmd), and the image is unpacked first if needed. " +
    'With --rootfs, write `--` instead of an ID to have one generated (printed on stderr, or stdout with -d).';
  static override strict = false;
  static override stopAtFirstArg = true;
  static override args = {
    image: Args.string({
      description: 'image to run, e.g. docker.io/library/busybox:latest (with --rootfs: the container id)',
    }),
    id: Args.string({ description: 'container id (with --rootfs: the command)' }),
    command: Args.string({
      description: "command and its arguments (default: the image's entrypoint and command)",
    }),
  };
  static override usage = [
    '<%= command.id %> [FLAGS] IMAGE ID [COMMAND [ARG...]]',
    '<%= command.id %> --rootfs DIR [FLAGS] ID COMMAND [ARG...]',
    '<%= command.id %> --rootfs DIR [FLAGS] -- COMMAND [ARG...]',
  ];
  static override examples = [
    '<%= config.bin %> run --rm docker.io/library/busybox:latest hello echo hi',
    '<%= config.bin %> run --rm --rootfs /srv/busybox hello echo hi',
    '<%= config.bin %> run -d --rootfs /srv/busybox --memory-limit 67108864 web httpd -f',
  ];
  static override flags = {
    ...containerFlags,
    ...sessionFlags,
    rm: Flags.boolean({ summary: 'delete the container when the task has exited' }),
  };

  async run(): Promise<void> {
    const fromImage = this.flags.rootfs === undefined && !this.dashDashFirst;
    const generated = this.dashDashFirst;
    let id: string | undefined;
    let args: string[];
    let image: string | undefined;
    const positionals = this.positionals;
    if (fromImage) {
      image = positionals[0];
      id = positionals[1];
      args = positionals.slice(2);
      if (!image) this.usageError('give an image and a container id, or --rootfs DIR');
      if (!id) this.usageError(`give a container id after the image ${image}`);
    } else {
      id = generated ? generateId() : positionals[0];
      args = generated ? positionals : positionals.slice(1);
      if (!id) this.usageError('give a container id, or `--` before the command to generate one');
      if (args.length === 0) this.usageError('give the command to run after the container id');
    }
    if (this.flags.rm && this.flags.detach) this.usageError('--rm and --detach cannot be used together');
    const container = await createContainer(
      this.clients,
      { ...this.flags, id, args, image, progress: (line) => this.note(line) },
      this.io.env,
    );
    if (generated) {
      if (this.flags.detach) this.out(id);
      else this.note(`container id ${id}`);
    }
    let status: number | undefined;
    try {
      const session = new ProcessSession(this.clients, this.io, {
        containerId: id,
        execId: '',
        terminal: this.flags.tty,
        detach: this.flags.detach,
        nullIo: this.flags['null-io'],
        fifoDir: this.flags['fifo-dir'],
        handleSignals: this.interactive,
      });
      await session.create((stdio) => createTask(this.clients, container, stdio).then(() => undefined));
      status = await session.run();
      if (status !== undefined) await this.clients.get(TasksService).delete({ containerId: id });
    } catch (err) {
      await this.cleanUpAfterFailure(id);
      throw err;
    }
    if (this.flags.rm) await removeContainer(this.clients, id, { force: false, keepSnapshot: false });
    if (status !== undefined && status !== 0) this.exitWith(status);
  }

  /**
   * After a failed start: a task that never ran is deleted so the container can be started again,
   * and with --rm the container goes too. The first error is the one reported, not these.
   */
  private async cleanUpAfterFailure(id: string): Promise<void> {
    await this.clients
      .get(TasksService)
      .delete({ containerId: id })
      .catch(() => undefined);
    if (!this.flags.rm) return;
    await removeContainer(this.clients, id, { force: true, keepSnapshot: false }).catch(() =>
      this.clients
        .get(ContainersService)
        .delete({ id })
        .catch(() => undefined),
    );
  }
}
