import { type Command, CommandHelp, Help } from '@oclif/core';

// oclif's help, with one change: a command that takes any number of arguments marks only its
// last one as repeatable (`[COMMAND...]`), where oclif marks every one (`[IMAGE...] [ID...]`).
// package.json "oclif.helpClass" points at the bundled file; it is loaded only to show help.

class CtrCommandHelp extends CommandHelp {
  protected override args(args: Command.Arg.Any[]): [string, string | undefined][] | undefined {
    const rows = super.args(args);
    if (!rows || this.command.strict !== false) return rows;
    return rows.map(([name, description], i) => [
      i === rows.length - 1 ? name : name.replace(/\.\.\.(\]?)/, '$1'),
      description,
    ]);
  }
}

export default class CtrHelp extends Help {
  protected override CommandHelpClass = CtrCommandHelp;
}
