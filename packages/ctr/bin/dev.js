#!/usr/bin/env node
// Development entry: oclif skips the manifest and finds commands itself, so a fresh `tsc -b` is enough.
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
