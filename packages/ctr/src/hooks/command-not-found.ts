import { Errors, type Hook } from '@oclif/core';
import { closestCommand, commandNames } from '../suggest.js';

/**
 * Unknown commands are usage errors: one `ctr:` line on stderr and exit 2, like every other usage
 * error, with the nearest command when the words look like a typo of one.
 */
const hook: Hook<'command_not_found'> = async (options) => {
  const words = options.id.split(':');
  const bin = options.config.bin;
  const nearest = closestCommand(
    [...words, ...(options.argv ?? [])],
    commandNames(options.config.commands, options.config.topics),
  );
  const hint = nearest ? `did you mean "${nearest}"? ` : '';
  process.stderr.write(`ctr: unknown command "${words.join(' ')}": ${hint}see '${bin} --help'\n`);
  throw new Errors.ExitError(2);
};

export default hook;
