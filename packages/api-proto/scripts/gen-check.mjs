// CI check for the generated code: lint the protos, regenerate into a temp dir (never in place,
// so a typecheck running in parallel never sees a half-written src/gen), and fail if the result
// differs from src/gen or if src/gen differs from what is committed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// Run from the package dir with buf and protoc-gen-es from node_modules/.bin, also when started
// with plain `node` rather than through npm.
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(pkg);
const PATH = [join(pkg, 'node_modules/.bin'), join(pkg, '../../node_modules/.bin'), process.env.PATH].join(
  delimiter,
);
const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit', env: { ...process.env, PATH } });

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

run('buf', ['lint']);
const tmp = mkdtempSync(join(tmpdir(), 'api-proto-gen-'));
try {
  run('buf', ['generate', '-o', tmp]);
  const fresh = join(tmp, 'src/gen');
  const want = new Map(files(fresh).map((p) => [relative(fresh, p), readFileSync(p, 'utf8')]));
  const have = new Map(files('src/gen').map((p) => [relative('src/gen', p), readFileSync(p, 'utf8')]));
  const problems = [];
  for (const [name, text] of want) {
    if (!have.has(name)) problems.push(`missing: src/gen/${name}`);
    else if (have.get(name) !== text) problems.push(`stale: src/gen/${name}`);
  }
  for (const name of have.keys()) if (!want.has(name)) problems.push(`extra: src/gen/${name}`);
  if (problems.length > 0) {
    console.error(
      `${problems.join('\n')}\ngen-check: src/gen is out of date: run npm run gen -w @ctrd/api-proto and commit`,
    );
    process.exit(1);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
run('git', ['diff', '--exit-code', '--', 'src/gen']);
const untracked = execFileSync('git', ['status', '--porcelain', '--', 'src/gen'], { encoding: 'utf8' });
if (untracked.trim() !== '') {
  console.error(`${untracked}gen-check: src/gen has uncommitted changes: commit them`);
  process.exit(1);
}
