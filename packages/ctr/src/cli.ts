import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';

// The ctr process's entry, imported by bin/run.js. A short-lived CLI spends most of its life
// loading code, so this file loads nothing it does not need: `--version` is answered from
// package.json alone; everything else loads oclif (a chunk of its own, fetched with import()),
// which reads its manifest and then imports only the one command that runs, and only that command
// loads the API client and the RPC stack. `--help` therefore never loads the RPC stack either.

/** The flags that print the version when they come first (oclif's `--version` plus ctr's `-v`). */
const VERSION_FLAGS = new Set(['--version', '-v']);

interface PackageJson {
  name: string;
  version: string;
}

/** oclif's user agent line, which is what `ctr --version` has always printed. */
export function versionLine(pkg: PackageJson): string {
  const cpu = arch() === 'ia32' ? 'x86' : arch();
  return `${pkg.name}/${pkg.version} ${platform()}-${cpu} node-${process.version}`;
}

function readPackageJson(): PackageJson {
  // Two levels under the package root in dist/bundle/, one in dist/ and src/ (tests).
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as Partial<PackageJson>;
      if (pkg.name === '@ctrd/ctr' && typeof pkg.version === 'string') return pkg as PackageJson;
    } catch {
      // try the next one
    }
  }
  return { name: '@ctrd/ctr', version: 'unknown' };
}

export async function main(argv: string[]): Promise<void> {
  if (argv.length === 1 && VERSION_FLAGS.has(argv[0] as string)) {
    process.stdout.write(`${versionLine(readPackageJson())}\n`);
    return;
  }
  const { runOclif } = await import('./oclif-main.js');
  await runOclif(argv);
}
