#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ caches compiled code across runs (a no-op on Node 20); enabled before anything else
// loads, so oclif and the bundled commands come from the cache on the next start.
module.enableCompileCache?.();

const { Config, flush, handle, run } = await import('@oclif/core');
const { hoistGlobalFlags } = await import('../dist/bundle/argv.js');

// execute() without the dev-mode switches, plus containerd ctr's global-flags-first order.
try {
  const config = await Config.load(import.meta.url);
  const argv = hoistGlobalFlags(process.argv.slice(2), (id) => config.findCommand(id) !== undefined);
  await run(argv, config);
  await flush();
} catch (err) {
  await handle(err);
}
