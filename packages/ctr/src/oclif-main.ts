import { Config, flush, handle, run } from '@oclif/core';
import { hoistGlobalFlags } from './argv.js';

// Everything but `--version`: oclif finds the command in its manifest (help, topics, aliases,
// unknown commands) and imports that command's module alone.

export async function runOclif(argv: string[]): Promise<void> {
  try {
    const config = await Config.load(import.meta.url);
    const args = hoistGlobalFlags(argv, (id) => config.findCommand(id) !== undefined);
    await run(args, config);
    await flush();
  } catch (err) {
    await handle(err as Error);
  }
}
