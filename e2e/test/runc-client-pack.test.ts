import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listIds, mountsUnder, RUNC } from './helpers/rootfs.js';

// @ctrd/runc-client used alone: packed as it would be published, installed into a project outside
// the workspace (koffi comes from the npm registry), and its example run there as a user would.

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const pkgDir = join(repo, 'packages/runc-client');
const canRun = process.getuid?.() === 0 && existsSync(RUNC) && existsSync('/bin/busybox');

describe.runIf(canRun)('@ctrd/runc-client packed and installed alone', () => {
  let dir: string;
  let tarball: string;
  let project: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runc-client-pack-'));
    await run('npx', ['tsc', '-b', 'packages/runc-client'], { cwd: repo });
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: pkgDir });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, info?.filename ?? '');
    project = join(dir, 'project');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'uses-runc-client', version: '1.0.0', private: true, type: 'module' }),
    );
    await run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project, timeout: 240_000 });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the tarball holds dist, examples and the README, not sources or tests', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/package.json',
        'package/README.md',
        'package/dist/index.js',
        'package/dist/index.d.ts',
        'package/examples/run-busybox.mjs',
      ]),
    );
    expect(files.filter((f) => /^package\/(src|test)\//.test(f) || f.endsWith('.tsbuildinfo'))).toEqual([]);
    const installed = await readdir(join(project, 'node_modules'));
    expect(installed).toEqual(expect.arrayContaining(['@ctrd', 'koffi']));
  });

  it('runs the busybox example from the installed package', async () => {
    const example = join(project, 'node_modules/@ctrd/runc-client/examples/run-busybox.mjs');
    const root = join(dir, 'runc-root');
    const { stdout } = await run('node', [example], {
      cwd: project,
      env: { ...process.env, RUNC_ROOT: root },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^runc 1\.1\.\S+, container busybox-\d+, bundle \//);
    expect(stdout).toContain('container output:\n  hello from busybox\n');
    expect(stdout).toContain('container exit code: 3\n');
    // The example cleans up after itself.
    expect(await listIds(RUNC, root)).toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('passes a command through and reports its exit code', async () => {
    const example = join(project, 'node_modules/@ctrd/runc-client/examples/run-busybox.mjs');
    const { stdout } = await run('node', [example, 'sh', '-c', 'echo "$((6*7))"; exit 0'], {
      cwd: project,
      timeout: 60_000,
    });
    expect(stdout).toContain('container output:\n  42\n');
    expect(stdout).toContain('container exit code: 0\n');
  });
});
