import { create } from '@bufbuild/protobuf';
import { toTimestamp } from '@ctrd/api-proto';
import { ContainerCreateSchema, TaskExitSchema, TaskStartSchema } from '@ctrd/api-proto/event-types';
import { EnvelopeSchema } from '@ctrd/api-proto/events';
import { describe, expect, it } from 'vitest';
import { parseSince } from '../src/time.js';
import { FakeDaemon } from './fake-daemon.js';
import { runCtr } from './helpers.js';

function daemon(): FakeDaemon {
  const d = new FakeDaemon();
  d.addEvent(
    'default',
    '/containers/create',
    ContainerCreateSchema,
    create(ContainerCreateSchema, {
      id: 'redis',
      image: 'redis',
      runtime: { name: 'io.containerd.runc.v2' },
    }),
  );
  d.addEvent(
    'default',
    '/tasks/start',
    TaskStartSchema,
    create(TaskStartSchema, { containerId: 'redis', pid: 24761 }),
  );
  d.addEvent(
    'default',
    '/tasks/exit',
    TaskExitSchema,
    create(TaskExitSchema, {
      containerId: 'redis',
      id: 'redis',
      pid: 24761,
      exitStatus: 137,
      exitedAt: toTimestamp(new Date('2026-11-23T08:00:01Z')),
    }),
  );
  return d;
}

describe('ctr events', () => {
  it('prints containerd 0.x’s TYPE ID PID STATUS lines, scoped to the namespace', async () => {
    const d = daemon();
    const res = await runCtr(['events'], { routes: d.routes });
    expect(res).toEqual({
      code: 0,
      stdout:
        'TYPE                ID                      PID       STATUS\n' +
        'containers/create   redis\n' +
        'start-container     redis                   24761\n' +
        'exit                redis                   24761     137\n',
      stderr: 'ctr: events in namespace "default"; -A for all\n',
    });
    expect(d.subscribeFilters).toEqual([['namespace==default']]);
  });

  it('passes filters through, ANDed with the namespace, or alone with -A', async () => {
    const d = daemon();
    await runCtr(['events', '-n', 'k8s.io', 'topic=="/tasks/exit"', 'topic~="/containers/"'], {
      routes: d.routes,
    });
    await runCtr(['events', '-A', 'topic=="/tasks/exit"'], { routes: d.routes });
    expect(d.subscribeFilters).toEqual([
      ['namespace==k8s.io,topic=="/tasks/exit"', 'namespace==k8s.io,topic~="/containers/"'],
      ['topic=="/tasks/exit"'],
    ]);
  });

  it('--json prints one documented object per line', async () => {
    const res = await runCtr(['events', '--json'], { routes: daemon().routes });
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[2]).toEqual({
      timestamp: '2026-11-23T08:00:00.000Z',
      namespace: 'default',
      topic: '/tasks/exit',
      type: 'exit',
      id: 'redis',
      pid: 24761,
      status: 137,
      event: {
        containerId: 'redis',
        id: 'redis',
        pid: 24761,
        exitStatus: 137,
        exitedAt: '2026-11-23T08:00:01Z',
      },
    });
  });

  it('--since replays from EventHistory (then follows unless --no-follow)', async () => {
    const d = daemon();
    d.history = [
      create(EnvelopeSchema, {
        namespace: 'default',
        topic: '/namespaces/create',
        timestamp: toTimestamp(new Date('2026-11-23T07:00:00Z')),
      }),
    ];
    const res = await runCtr(['events', '--since', '2026-11-23T06:00:00Z', '--no-follow'], {
      routes: d.routes,
    });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      'TYPE                ID                      PID       STATUS\nnamespaces/create\n',
    );
    expect(d.replayRequests).toEqual([
      { since: new Date('2026-11-23T06:00:00Z'), filters: ['namespace==default'], follow: false },
    ]);
    const bad = await runCtr(['events', '--since', 'yesterday-ish'], { routes: d.routes });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ctr: --since "yesterday-ish": expected a time');
  });

  it('reads --since as a time, Unix seconds or a duration ago', () => {
    const now = new Date('2026-11-23T08:00:00Z');
    expect(parseSince('10m', now)).toEqual(new Date('2026-11-23T07:50:00Z'));
    expect(parseSince('1795420800', now)).toEqual(new Date(1795420800 * 1000));
    expect(parseSince('2026-11-23T06:00:00Z', now)).toEqual(new Date('2026-11-23T06:00:00Z'));
  });
});
