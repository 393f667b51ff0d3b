#!/usr/bin/env node
import { Config, flush, handle, run } from '@oclif/core';
import { hoistGlobalFlags } from '../dist/argv.js';

// execute() without the dev-mode switches, plus containerd ctr's global-flags-first order.
try {
  const config = await Config.load(import.meta.url);
  const argv = hoistGlobalFlags(process.argv.slice(2), (id) => config.findCommand(id) !== undefined);
  await run(argv, config);
  await flush();
} catch (err) {
  await handle(err);
}
