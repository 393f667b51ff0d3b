#!/usr/bin/env node
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
// A serving shim has closed everything it owns by now; don't let a stray handle keep it alive.
if (process.argv[2] === 'serve') setTimeout(() => process.exit(), 500).unref();
