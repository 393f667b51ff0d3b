import { Errors, type Hook } from '@oclif/core';

/** Unknown commands are usage errors: one `ctr:` line on stderr and exit 2, like every other usage error. */
const hook: Hook<'command_not_found'> = async (options) => {
  const words = options.id.split(':').join(' ');
  process.stderr.write(`ctr: unknown command "${words}": see '${options.config.bin} --help'\n`);
  throw new Errors.ExitError(2);
};

export default hook;
