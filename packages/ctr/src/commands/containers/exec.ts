import { Flags } from '@oclif/core';
import { CtrCommand } from '../../base-command.js';
import { execProcess, generateExecId } from '../../exec-process.js';

/** containerd 0.x's `ctr containers exec --id ID [--attach] ... ARGS...`. */
export default class ContainersExec extends CtrCommand<typeof ContainersExec> {
  static override summary = 'run another process in a container (containerd 0.x style); prints its exec id';
  static override description =
    'Attached (--attach), ctr exits with the process status; detached, it prints the exec id.';
  static override strict = false;
  static override stopAtFirstArg = true;
  static override usage =
    '<%= command.id %> --id ID [--attach] [-t] [--cwd DIR] [-e K=V...] [-u UID] [-g GID] COMMAND [ARG...]';
  static override flags = {
    id: Flags.string({ summary: 'container id', required: true, helpValue: 'ID' }),
    'exec-id': Flags.string({ summary: 'id of the new process (generated if omitted)', helpValue: 'ID' }),
    // -a is --address, as everywhere; containerd 0.x used it for --attach here.
    attach: Flags.boolean({ summary: 'attach stdio and exit with the process status' }),
    tty: Flags.boolean({ char: 't', summary: 'allocate a terminal' }),
    cwd: Flags.string({ summary: 'working directory', helpValue: 'DIR' }),
    env: Flags.string({
      char: 'e',
      summary: 'environment variable KEY=VALUE (repeatable)',
      multiple: true,
      multipleNonGreedy: true,
      helpValue: 'K=V',
    }),
    uid: Flags.integer({ char: 'u', summary: 'user id', min: 0 }),
    gid: Flags.integer({ char: 'g', summary: 'group id', min: 0 }),
  };

  async run(): Promise<void> {
    if (this.rest.length === 0) this.usageError('give the command to run');
    const execId = this.flags['exec-id'] ?? generateExecId();
    if (this.flags.attach && !this.flags['exec-id']) this.note(`exec id ${execId}`);
    const { status } = await execProcess(this.clients, this.io, {
      containerId: this.flags.id,
      execId,
      args: this.rest,
      tty: this.flags.tty,
      detach: !this.flags.attach,
      cwd: this.flags.cwd,
      env: this.flags.env,
      uid: this.flags.uid,
      gid: this.flags.gid,
      handleSignals: this.interactive,
    });
    if (status === undefined) return this.out(execId);
    if (status !== 0) this.exitWith(status);
  }
}
