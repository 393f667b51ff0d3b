import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { exitFromStatus, nodeSpawner, posixSpawner, type Spawner } from '../src/index.js';
import { pollWaitExit } from './helpers/wait-exit.js';

async function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  let out = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (d: string) => {
    out += d;
  });
  if (stream) await once(stream, 'close');
  return out;
}

describe('exitFromStatus', () => {
  it('splits the reaper status into a code or a signal', () => {
    expect(exitFromStatus(0)).toEqual({ code: 0, signal: null });
    expect(exitFromStatus(3)).toEqual({ code: 3, signal: null });
    expect(exitFromStatus(137)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(exitFromStatus(143)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(exitFromStatus(255)).toEqual({ code: 255, signal: null });
  });
});

const spawners: [string, Spawner][] = [
  ['child_process', nodeSpawner],
  ['posix_spawn', posixSpawner({ waitExit: pollWaitExit })],
];

describe.each(spawners)('%s spawner', (_name, spawner) => {
  it('pipes stdin, stdout and stderr and reports the exit code', async () => {
    const p = await spawner.spawn('/bin/sh', ['-c', 'read x; echo "out $x $V"; echo err >&2; exit 3'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { V: 'v1', PATH: '/usr/bin:/bin' },
    });
    expect(p.pid).toBeGreaterThan(0);
    p.stdin?.end('in\n');
    const [out, err, exit] = await Promise.all([text(p.stdout), text(p.stderr), p.exited]);
    expect(out).toBe('out in v1\n');
    expect(err).toBe('err\n');
    expect(exit).toEqual({ code: 3, signal: null });
  });

  it('gives /dev/null for ignore and reports a signal', async () => {
    const p = await spawner.spawn('/bin/sh', ['-c', 'cat; kill -TERM $$'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {},
    });
    expect(p.stdout).toBeNull();
    expect(await p.exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('hands an fd over as an extra fd of the child', async () => {
    const { readFileSync, mkdtempSync, openSync, closeSync, rmSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/spawner-');
    try {
      const fd = openSync(`${dir}/out`, 'w');
      const p = await spawner.spawn('/bin/sh', ['-c', 'echo extra >&3'], {
        stdio: ['ignore', 'ignore', 'ignore', fd],
        env: {},
      });
      closeSync(fd);
      expect(await p.exited).toEqual({ code: 0, signal: null });
      expect(readFileSync(`${dir}/out`, 'utf8')).toBe('extra\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails for a missing binary', async () => {
    const start = async () =>
      (await spawner.spawn('/nonexistent/runc', [], { stdio: ['ignore', 'pipe', 'pipe'], env: {} })).exited;
    await expect(start()).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
