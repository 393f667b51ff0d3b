import { isAlreadyExists, isInvalidArgument, isNotFound } from '@ctrd/api-proto';
import { LeasesService } from '@ctrd/api-proto/leases';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PluginType } from '../src/plugin.js';
import { EXPIRE_LABEL, type LocalLeases } from '../src/services/leases.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

describe('Leases', () => {
  it('Create generates an id when none is given, and keeps labels', async () => {
    const l = h.client(LeasesService);
    const made = (await l.create({ labels: { a: 'b' } })).lease!;
    expect(made.id).toMatch(/^\d+-[A-Za-z0-9_-]{4}$/);
    expect(made.createdAt).toBeDefined();
    expect((await l.list({})).leases.map((x) => [x.id, x.labels])).toEqual([[made.id, { a: 'b' }]]);
  });

  it('AlreadyExists, invalid ids, NotFound on delete', async () => {
    const l = h.client(LeasesService);
    await l.create({ id: 'one' });
    expect(isAlreadyExists(await l.create({ id: 'one' }).catch((e) => e))).toBe(true);
    // ctr's generated ids look like this: url-safe base64 after the nanoseconds.
    await l.create({ id: '271993008--67c' });
    await l.create({ id: '1700000000000000000-a_b' });
    for (const id of ['../x', 'a/b', 'x'.repeat(257), 'ü', 'a b', 'a,b']) {
      expect(isInvalidArgument(await l.create({ id }).catch((e) => e)), id).toBe(true);
    }
    expect(
      isInvalidArgument(await l.create({ id: 'e', labels: { [EXPIRE_LABEL]: 'tomorrow' } }).catch((e) => e)),
    ).toBe(true);
    await l.delete({ id: 'one' });
    expect(isNotFound(await l.delete({ id: 'one' }).catch((e) => e))).toBe(true);
  });

  it('List filters by id and labels; bad syntax is InvalidArgument', async () => {
    const l = h.client(LeasesService);
    await l.create({ id: 'a', labels: { team: 'x' } });
    await l.create({ id: 'b', labels: { team: 'y' } });
    expect((await l.list({ filters: ['labels.team==y'] })).leases.map((x) => x.id)).toEqual(['b']);
    expect((await l.list({ filters: ['id==a'] })).leases.map((x) => x.id)).toEqual(['a']);
    expect(isInvalidArgument(await l.list({ filters: ['id=="a'] }).catch((e) => e))).toBe(true);
    expect((await h.client(LeasesService, 'other').list({})).leases).toEqual([]);
  });

  it('resources: add, list, delete; bad types rejected; gone with the lease', async () => {
    const l = h.client(LeasesService);
    // A content resource is a digest, as containerd parses it.
    const dgst = `sha256:${'ab'.repeat(32)}`;
    await l.create({ id: 'r' });
    await l.addResource({ id: 'r', resource: { id: dgst, type: 'content' } });
    await l.addResource({ id: 'r', resource: { id: 'key1', type: 'snapshots/overlayfs' } });
    await l.addResource({ id: 'r', resource: { id: 'key1', type: 'snapshots/overlayfs' } });
    expect((await l.listResources({ id: 'r' })).resources.map((x) => `${x.type}:${x.id}`)).toEqual([
      `content:${dgst}`,
      'snapshots/overlayfs:key1',
    ]);
    await l.deleteResource({ id: 'r', resource: { id: dgst, type: 'content' } });
    expect((await l.listResources({ id: 'r' })).resources).toHaveLength(1);
    for (const type of ['', 'bogus', 'snapshots/', 'snapshots/a/b', 'content']) {
      expect(
        isInvalidArgument(await l.addResource({ id: 'r', resource: { id: 'x', type } }).catch((e) => e)),
        type,
      ).toBe(true);
    }
    expect(
      isNotFound(
        await l.addResource({ id: 'nope', resource: { id: dgst, type: 'content' } }).catch((e) => e),
      ),
    ).toBe(true);
    await l.delete({ id: 'r' });
    expect(isNotFound(await l.listResources({ id: 'r' }).catch((e) => e))).toBe(true);
  });

  it('the sweep removes leases past containerd.io/gc.expire and keeps the rest', async () => {
    const l = h.client(LeasesService);
    await l.create({ id: 'old', labels: { [EXPIRE_LABEL]: new Date(Date.now() - 1000).toISOString() } });
    await l.create({ id: 'new', labels: { [EXPIRE_LABEL]: new Date(Date.now() + 3600_000).toISOString() } });
    await l.create({ id: 'forever' });
    const local = h.plugins.get<LocalLeases>(PluginType.Service, 'leases-service');
    expect(local.sweepExpired()).toBe(1);
    expect((await l.list({})).leases.map((x) => x.id).sort()).toEqual(['forever', 'new']);
  });
});
