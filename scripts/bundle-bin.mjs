// Bundles a package's bin (compiled by tsc) into one file, for start-up speed: `ctrd` and `ctrd-shim`
// load a few hundred small ES modules (ours, protobuf-es and its generated code, Connect), and Node
// spends most of their start-up resolving and reading them: ~0.7 s for ctrd before it does anything,
// against ~0.4 s from one file. That time is on the path of a daemon restart (the API is down) and of
// every new shim (the first tasks in its group wait for it).
//
//   node scripts/bundle-bin.mjs PKG_DIR [EXTERNAL...]
//
// reads PKG_DIR/dist/bin.js, writes PKG_DIR/dist/bundle/bin.js (the package.json "bin" points there).
// The bundle sits at the same depth under the package as the compiled files, so their
// `new URL('../../package.json', import.meta.url)` lookups still find it. Native addons (better-sqlite3,
// koffi) and pino (it may load transport workers by path) stay external. dist/*.js (the library entry,
// used by tests and other packages) is left as tsc wrote it.
import { join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const [pkgArg, ...external] = process.argv.slice(2);
if (!pkgArg) {
  process.stderr.write('usage: node scripts/bundle-bin.mjs PKG_DIR [EXTERNAL...]\n');
  process.exit(2);
}
const pkg = resolve(pkgArg);
const outfile = join(pkg, 'dist', 'bundle', 'bin.js');
await build({
  entryPoints: [join(pkg, 'dist', 'bin.js')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  // Bundled CommonJS code calls require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __ctrdRequire } from 'node:module';\nconst require = __ctrdRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write(
  `bundled ${relative(process.cwd(), join(pkg, 'dist', 'bin.js'))} into ${relative(process.cwd(), outfile)}\n`,
);
