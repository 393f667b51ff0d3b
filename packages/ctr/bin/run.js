#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ caches the code it compiles across runs; Node 20 has no such cache (hence the `?.`).
// Enabled before anything else loads, so the bundle comes from the cache on the next start.
module.enableCompileCache?.();

const { main } = await import('../dist/bundle/cli.js');
await main(process.argv.slice(2));
