import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from './helpers.js';

// The built CLI as a user runs it: a real process, real exit codes, oclif's routing and manifest.
const dir = mkdtempSync(join(tmpdir(), 'ctr-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ctr(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(packageRoot, 'bin/run.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
    // spawnSync blocks this worker, so vitest's own timeout cannot stop it: this bound must.
    timeout: 45_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bin/run.js', () => {
  it('lists its commands in --help', () => {
    const { code, stdout } = ctr(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('$ ctr [COMMAND]');
    expect(stdout).toMatch(/\n {2}version +print the client and server versions/);
  });

  it('says which socket it tried and how to point elsewhere', () => {
    const missing = join(dir, 'missing.sock');
    const byFlag = ctr(['version', '-a', missing]);
    expect(byFlag.code).toBe(1);
    expect(byFlag.stdout).toBe('');
    expect(byFlag.stderr).toBe(
      `ctr: cannot connect to ctrd at ${missing} (from --address): no socket at that path (is ctrd running?); ` +
        'point ctr at another socket with -a/--address or CTRD_ADDRESS\n',
    );
    const byEnv = ctr(['version'], { CONTAINERD_ADDRESS: missing });
    expect(byEnv.stderr).toContain(`cannot connect to ctrd at ${missing} (from CONTAINERD_ADDRESS)`);
  });

  it('treats an unknown command as a usage error', () => {
    const { code, stderr } = ctr(['frobnicate']);
    expect(code).toBe(2);
    expect(stderr).toBe('ctr: unknown command "frobnicate": see \'ctr --help\'\n');
  });
});
