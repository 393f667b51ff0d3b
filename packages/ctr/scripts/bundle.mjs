// Bundles the compiled commands for start-up speed. ctr is a short-lived process: loading ~150 small
// ES modules (our files, protobuf-es, Connect) costs more than the call it makes, mostly in module
// resolution. esbuild joins them into one file per command plus shared chunks under dist/bundle/,
// which oclif loads (package.json "oclif.commands"). @oclif/core stays a normal dependency: it finds
// and loads the commands itself. dist/*.js (the library entry, used by tests) is left as tsc wrote it.
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dist = join(pkg, 'dist');

async function jsFiles(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await jsFiles(p)));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

const entryPoints = [
  ...(await jsFiles(join(dist, 'commands'))),
  ...(await jsFiles(join(dist, 'hooks'))),
  join(dist, 'argv.js'),
];

await build({
  entryPoints,
  outdir: join(dist, 'bundle'),
  outbase: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@oclif/core'],
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write(
  `bundled ${entryPoints.length} entry points into ${relative(pkg, join(dist, 'bundle'))}\n`,
);
