import { toTimestamp } from '@ctrd/api-proto';
import { describe, expect, it } from 'vitest';
import { FakeDaemon } from './fake-daemon.js';
import { runCtr } from './helpers.js';

describe('ctr leases ls', () => {
  it('prints ID CREATED AT LABELS, -q and --json', async () => {
    const d = new FakeDaemon();
    d.namespaces.set('default', {});
    d.leases.set('default', [
      {
        id: '1700000000-abcd',
        createdAt: toTimestamp(new Date('2026-11-23T08:00:00Z')),
        labels: { 'containerd.io/gc.expire': '2026-11-24T08:00:00Z' },
      },
    ]);
    const res = await runCtr(['leases', 'ls'], { routes: d.routes });
    expect(res).toEqual({
      code: 0,
      stdout:
        'ID                 CREATED AT                  LABELS\n' +
        '1700000000-abcd    2026-11-23T08:00:00.000Z    containerd.io/gc.expire=2026-11-24T08:00:00Z\n',
      stderr: 'ctr: showing leases in namespace "default"; -n NAME or -A for others\n',
    });
    expect((await runCtr(['leases', 'list', '-q'], { routes: d.routes })).stdout).toBe('1700000000-abcd\n');
    const json = JSON.parse((await runCtr(['leases', 'ls', '--json'], { routes: d.routes })).stdout);
    expect(json).toEqual([
      {
        namespace: 'default',
        id: '1700000000-abcd',
        createdAt: '2026-11-23T08:00:00.000Z',
        labels: { 'containerd.io/gc.expire': '2026-11-24T08:00:00Z' },
      },
    ]);
  });
});
