import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('names the arguments of run after what they hold', () => {
    const { code, stdout } = ctr(['run', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('$ ctr run [FLAGS] IMAGE ID [COMMAND [ARG...]]');
    expect(stdout).toMatch(/\n {2}\[IMAGE\] +image to run, e\.g\. docker\.io\/library\/busybox:latest/);
    expect(stdout).toMatch(/\n {2}\[ID\] +container id/);
    expect(stdout).toMatch(/\n {2}\[COMMAND\.\.\.\] +command and its arguments/);
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

  it('tells a path that is no socket from one where nothing listens', () => {
    const file = join(dir, 'file.sock');
    writeFileSync(file, '');
    const notSocket = ctr(['version', '-a', file]);
    expect(notSocket).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `ctr: cannot connect to ctrd at ${file} (from --address): not a socket: it is a regular file; ` +
        'point ctr at another socket with -a/--address or CTRD_ADDRESS\n',
    });
    expect(ctr(['version', '-a', dir]).stderr).toContain('not a socket: it is a directory;');
    // A socket left behind by a daemon that died: connection refused, as before.
    const dead = join(dir, 'dead.sock');
    spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(dead)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(ctr(['version', '-a', dead]).stderr).toContain(
      'connection refused: nothing is listening on that socket (is ctrd running?)',
    );
    expect(ctr(['version', '-a', join(dir, 'none.sock')]).stderr).toContain('no socket at that path');
  });

  it('treats an unknown command as a usage error', () => {
    const { code, stderr } = ctr(['frobnicate']);
    expect(code).toBe(2);
    expect(stderr).toBe('ctr: unknown command "frobnicate": see \'ctr --help\'\n');
  });

  it('suggests the command a typo was near', () => {
    expect(ctr(['contaners', 'ls'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'ctr: unknown command "contaners ls": did you mean "containers ls"? see \'ctr --help\'\n',
    });
    expect(ctr(['c', 'lsit']).stderr).toBe(
      'ctr: unknown command "c lsit": did you mean "containers ls"? see \'ctr --help\'\n',
    );
    expect(ctr(['imgaes']).stderr).toContain('did you mean "images"?');
  });

  it('takes --json before the command; a command without data output refuses it', () => {
    const missing = join(dir, 'missing.sock');
    // Parsed as `version --json`: it gets as far as dialling the socket.
    expect(ctr(['--json', '-a', missing, 'version']).stderr).toContain(
      `cannot connect to ctrd at ${missing}`,
    );
    const rm = ctr(['--json', 'rm', 'x']);
    expect(rm.code).toBe(2);
    expect(rm.stderr).toBe("ctr: nonexistent flag: --json\nsee 'ctr rm --help'\n");
  });
});

describe('the command set (oclif.manifest.json)', () => {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, { flags: Record<string, { char?: string; name: string }>; hidden?: boolean }>;
  };
  const commands = Object.entries(manifest.commands);

  it('speaks to users in their words: no project-internal names in help texts or the README', () => {
    const texts = JSON.stringify(manifest) + readFileSync(join(packageRoot, 'README.md'), 'utf8');
    const pjson = readFileSync(join(packageRoot, 'package.json'), 'utf8');
    for (const word of [/\bseed\b/i, /\bseed's\b/i, /the original (way|verb)/i, /\(the original/i]) {
      expect(texts).not.toMatch(word);
      expect(pjson).not.toMatch(word);
    }
  });

  it('has --json on every command that lists or shows data', () => {
    const data =
      /(^|:)(ls|info|stats|metrics|ps|tree|usage|check|label)$|^(version|logs|events|checkpoints|containers)$/;
    const listed = commands.filter(([id]) => data.test(id)).map(([id]) => id);
    expect(listed.length).toBeGreaterThanOrEqual(23);
    expect(listed.filter((id) => !manifest.commands[id]?.flags.json)).toEqual([]);
  });

  it('gives each short flag one meaning, and none clashes with -a/--address or -n/--namespace', () => {
    const meanings = new Map<string, Set<string>>();
    for (const [, c] of commands) {
      for (const f of Object.values(c.flags)) {
        if (!f.char) continue;
        const set = meanings.get(f.char) ?? new Set<string>();
        set.add(f.name);
        meanings.set(f.char, set);
      }
    }
    expect([...(meanings.get('a') ?? [])]).toEqual(['address']);
    expect([...(meanings.get('n') ?? [])]).toEqual(['namespace']);
    // -f is --force on the removing verbs and --follow on logs, as in docker and tail; -u is the user
    // to run as, by name or uid (--user) or by number (--uid, containers exec).
    const allowed: Record<string, string[]> = { f: ['follow', 'force'], u: ['uid', 'user'] };
    for (const [char, names] of meanings) {
      if (names.size > 1) expect([...names].sort()).toEqual(allowed[char]);
    }
  });
});
