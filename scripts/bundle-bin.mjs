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
//
// The bundle carries the revision it was built from as the constant __CTRD_REVISION__ (ctrd's
// Version.revision, which dockerd shows as the containerd version's commit): CTRD_REVISION when
// set (a release built outside git), else the git commit of the checkout, with ".m" when tracked
// files have changes (containerd's Makefile marks its REVISION so), else the package's version.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const [pkgArg, ...external] = process.argv.slice(2);
if (!pkgArg) {
  process.stderr.write('usage: node scripts/bundle-bin.mjs PKG_DIR [EXTERNAL...]\n');
  process.exit(2);
}
const pkg = resolve(pkgArg);
const outfile = join(pkg, 'dist', 'bundle', 'bin.js');

function gitRevision(dir) {
  const git = (...args) =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    // Only this package's own checkout: an unpacked tarball inside someone else's repository
    // must not take that repository's commit.
    git('ls-files', '--error-unmatch', 'package.json');
    const head = git('rev-parse', 'HEAD');
    let modified = false;
    try {
      git('diff', '--no-ext-diff', '--quiet', '--exit-code', 'HEAD');
    } catch {
      modified = true;
    }
    return `${head}${modified ? '.m' : ''}`;
  } catch {
    return undefined;
  }
}

const revision =
  process.env.CTRD_REVISION ||
  gitRevision(pkg) ||
  JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version ||
  'unknown';

await build({
  entryPoints: [join(pkg, 'dist', 'bin.js')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  define: { __CTRD_REVISION__: JSON.stringify(revision) },
  // Bundled CommonJS code calls require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __ctrdRequire } from 'node:module';\nconst require = __ctrdRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write(
  `bundled ${relative(process.cwd(), join(pkg, 'dist', 'bin.js'))} into ${relative(process.cwd(), outfile)} (revision ${revision})\n`,
);
