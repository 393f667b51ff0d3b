import { Args, Flags } from '@oclif/core';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { execProcess, generateExecId } from '../../exec-process.js';
import { sessionFlags } from '../../session-flags.js';

export default class TasksExec extends CtrCommand<typeof TasksExec> {
  static override summary = "run another process in a task's container; exits with its status";
  static override description =
    'Flags end at the container id. Without --exec-id one is generated and printed (stderr, or stdout with -d).';
  static override hiddenAliases = aliasesOf('tasks', ['exec']);
  static override strict = false;
  static override stopAtFirstArg = true;
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    command: Args.string({ description: 'command to run and its arguments' }),
  };
  static override usage = '<%= command.id %> [--exec-id ID] [-t] [-d] [FLAGS] ID COMMAND [ARG...]';
  static override flags = {
    ...sessionFlags,
    'exec-id': Flags.string({ summary: 'id of the new process (generated if omitted)', helpValue: 'ID' }),
    tty: Flags.boolean({ char: 't', summary: 'allocate a terminal' }),
    cwd: Flags.string({ summary: 'working directory', helpValue: 'DIR' }),
    env: Flags.string({
      char: 'e',
      summary: 'environment variable KEY=VALUE (repeatable)',
      multiple: true,
      multipleNonGreedy: true,
      helpValue: 'KEY=VALUE',
    }),
    user: Flags.string({ char: 'u', summary: 'uid[:gid] or name[:group]', helpValue: 'USER' }),
  };

  async run(): Promise<void> {
    const args = this.positionals.slice(1);
    if (args.length === 0) this.usageError('give the command to run after the container id');
    let execId = this.flags['exec-id'];
    if (!execId) {
      execId = generateExecId();
      if (this.flags.detach) this.out(execId);
      else this.note(`exec id ${execId}`);
    }
    const { status } = await execProcess(this.clients, this.io, {
      containerId: this.args.id,
      execId,
      args,
      tty: this.flags.tty,
      detach: this.flags.detach,
      cwd: this.flags.cwd,
      env: this.flags.env,
      user: this.flags.user,
      nullIo: this.flags['null-io'],
      fifoDir: this.flags['fifo-dir'],
      handleSignals: this.interactive,
    });
    if (status !== undefined && status !== 0) this.exitWith(status);
  }
}
