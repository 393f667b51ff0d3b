import { describe, expect, it } from 'vitest';
import { FakeDaemon } from './fake-daemon.js';
import { runCtr } from './helpers.js';

function daemon(): FakeDaemon {
  const d = new FakeDaemon();
  d.namespaces.set('default', {});
  d.namespaces.set('k8s.io', { team: 'infra', a: '1' });
  return d;
}

describe('ctr namespaces', () => {
  it('ls prints NAME and sorted labels', async () => {
    const d = daemon();
    const res = await runCtr(['namespaces', 'ls'], { routes: d.routes });
    expect(res).toEqual({
      code: 0,
      stdout: 'NAME       LABELS\ndefault\nk8s.io     a=1,team=infra\n',
      stderr: '',
    });
  });

  it('answers to ns ls, -q and --json', async () => {
    const d = daemon();
    expect((await runCtr(['ns', 'list', '-q'], { routes: d.routes })).stdout).toBe('default\nk8s.io\n');
    const json = await runCtr(['namespace', 'ls', '--json'], { routes: d.routes });
    expect(JSON.parse(json.stdout)).toEqual([
      { name: 'default', labels: {} },
      { name: 'k8s.io', labels: { a: '1', team: 'infra' } },
    ]);
  });

  it('create takes labels, rm removes and prints each name', async () => {
    const d = daemon();
    const created = await runCtr(['ns', 'create', 'web', 'tier=front'], { routes: d.routes });
    expect(created).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(d.namespaces.get('web')).toEqual({ tier: 'front' });
    const again = await runCtr(['ns', 'create', 'web'], { routes: d.routes });
    expect(again).toEqual({ code: 1, stdout: '', stderr: 'ctr: namespace web: already exists\n' });
    const removed = await runCtr(['ns', 'rm', 'web', 'ghost'], { routes: d.routes });
    expect(removed).toEqual({
      code: 0,
      stdout: 'web\n',
      stderr: 'ctr: warning: namespace "ghost" not found\n',
    });
    expect(d.namespaces.has('web')).toBe(false);
  });

  it('rm of a namespace in use fails with the reason and exit 1', async () => {
    const d = daemon();
    d.addContainer('k8s.io', { id: 'pause' });
    const res = await runCtr(['namespaces', 'remove', 'k8s.io'], { routes: d.routes });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      'ctr: cannot remove namespace "k8s.io": namespace "k8s.io" must be empty, but it still has containers: failed precondition\n',
    );
  });

  it('label sets and clears with per-key masks and prints the result', async () => {
    const d = daemon();
    const res = await runCtr(['ns', 'label', 'k8s.io', 'team=', 'b=2'], { routes: d.routes });
    expect(res).toEqual({ code: 0, stdout: 'a=1,b=2\n', stderr: '' });
    const json = await runCtr(['ns', 'label', '--json', 'k8s.io'], { routes: d.routes });
    expect(json).toEqual({ code: 0, stdout: '{\n  "a": "1",\n  "b": "2"\n}\n', stderr: '' });
  });

  it('create without a name is a usage error', async () => {
    const res = await runCtr(['ns', 'create'], { routes: daemon().routes });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^ctr: missing 1 required arg:\nname {2}namespace name\nsee 'ctr ns create --help'\n$/,
    );
  });
});
