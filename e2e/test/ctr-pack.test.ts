import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { CTR } from './tasks-support.js';

// @ctrd/ctr as a user gets it: packed as it would be published, installed into a project outside the
// workspace, and run with npx against a real ctrd. @ctrd/api-proto is not on the registry yet, so its
// tarball is installed beside it; everything else comes from the npm registry.

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');

async function pack(pkg: string, dest: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], {
    cwd: join(repo, 'packages', pkg),
  });
  const [info] = JSON.parse(stdout) as { filename: string }[];
  return join(dest, info?.filename ?? '');
}

describe('@ctrd/ctr packed and installed outside the workspace', () => {
  let dir: string;
  let project: string;
  let d: DaemonProcess;
  let ctrTarball: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctr-pack-'));
    const protoTarball = await pack('api-proto', dir);
    ctrTarball = await pack('ctr', dir);
    project = join(dir, 'project');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'uses-ctr', version: '1.0.0', private: true, type: 'module' }),
    );
    await run('npm', ['install', '--no-audit', '--no-fund', protoTarball, ctrTarball], {
      cwd: project,
      timeout: 240_000,
    });
    d = await startDaemon({ dir: join(dir, 'd') });
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
    await run(CTR, ['--address', d.socket, 'c', 'create', '--rootfs', rootfs, 'packed1', '/bin/true']);
  }, 300_000);

  afterAll(async () => {
    if (d) {
      await run(CTR, ['--address', d.socket, 'c', 'rm', 'packed1']).catch(() => {});
      await d.stop('SIGTERM');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the tarball holds the bin, the oclif manifest and dist, not sources or tests', async () => {
    const { stdout } = await run('tar', ['-tzf', ctrTarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/package.json',
        'package/README.md',
        'package/bin/run.js',
        'package/oclif.manifest.json',
        'package/dist/index.js',
      ]),
    );
    expect(files.filter((f) => /^package\/(src|test)\//.test(f))).toEqual([]);
  });

  it('npx ctr --address SOCK containers lists the seed columns and the container', async () => {
    const { stdout } = await run('npx', ['ctr', '--address', d.socket, 'containers'], {
      cwd: project,
      timeout: 60_000,
    });
    const [header, ...rows] = stdout.trim().split('\n');
    expect(header?.split(/\s{2,}/).map((c) => c.trim())).toEqual(['ID', 'PATH', 'STATUS', 'PID1']);
    expect(rows.some((r) => r.startsWith('packed1 '))).toBe(true);
  });

  it('a missing socket says which address it tried, and exits 1', async () => {
    const missing = join(dir, 'nothing-here.sock');
    const err = (await run('npx', ['ctr', '--address', missing, 'containers'], { cwd: project }).catch(
      (e) => e,
    )) as { code?: number; stderr?: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(missing);
  });
});
