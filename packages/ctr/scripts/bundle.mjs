// Bundles the CLI for start-up speed. ctr is a short-lived process: loading a few hundred small
// modules (ours, oclif and its dependencies, protobuf-es, Connect) cost more than the call it
// makes, mostly in module resolution. esbuild joins them into dist/bundle/:
//
// - cli.js, the entry bin/run.js imports: it answers `--version` itself and loads oclif with
//   import(), so oclif's chunk is read only when a command or the help runs;
// - help.js, oclif's help with ctr's one change, which oclif imports to show help;
// - one file per command and hook, which oclif imports by the manifest's path when that command
//   runs (package.json "oclif.commands" points at dist/bundle/commands); each pulls in the shared
//   chunks it needs, so the API client and the RPC stack load with a command, never for `--help`;
// - shared chunks, oclif's among them: one copy of @oclif/core for the entry and every command.
//
// dist/*.js (the library entry, used by tests and by bin/dev.js) is left as tsc wrote it.
import { readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dist = join(pkg, 'dist');
const outdir = join(dist, 'bundle');

/**
 * `import ... from 'node:http'` in an ES module makes Node build the module's ESM facade, which
 * reads every export, lazy getters included; on Node 22+ one of node:http's getters loads undici,
 * ~40 ms of CPU on every start for nothing. Bundled code gets builtins through require() instead,
 * whose exports esbuild reads only where the code uses them.
 */
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' ? { path: args.path, namespace: 'node-builtin' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

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
  join(dist, 'cli.js'),
  join(dist, 'help.js'),
  ...(await jsFiles(join(dist, 'commands'))),
  ...(await jsFiles(join(dist, 'hooks'))),
];

// Chunk names carry a content hash: without this, chunks of earlier builds would pile up.
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints,
  outdir,
  outbase: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // oclif requires these only to transpile TypeScript plugins in development, never here.
  external: ['typescript', 'ts-node', 'tsx'],
  // Bundled CommonJS code (oclif) calls require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __ctrRequire } from 'node:module';\nconst require = __ctrRequire(import.meta.url);",
  },
  plugins: [builtinsThroughRequire],
  // Bundled code that says `Headers` gets ctr's small one (src/headers.ts says why).
  inject: [join(dist, 'headers.js')],
  chunkNames: 'chunks/[name]-[hash]',
  // Less to read and parse on every start; identifiers are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write(`bundled ${entryPoints.length} entry points into ${relative(pkg, outdir)}\n`);
