#!/usr/bin/env node
// Development entry: oclif finds the commands itself (no manifest), so a fresh `tsc -b` is enough.
import { Config, flush, handle, run, settings } from '@oclif/core';
import { hoistGlobalFlags } from '../dist/argv.js';

process.env.NODE_ENV = 'development';
settings.debug = true;
try {
  const config = await Config.load({ root: new URL('..', import.meta.url).pathname, devPlugins: false });
  const argv = hoistGlobalFlags(process.argv.slice(2), (id) => config.findCommand(id) !== undefined);
  await run(argv, config);
  await flush();
} catch (err) {
  await handle(err);
}
