import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  OCI_SPEC_URL,
  packJson,
} from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2' });

describe('Namespaces', () => {
  it('Get never says NotFound: an unknown namespace has empty labels', async () => {
    const ns = h.client(NamespacesService);
    const res = await ns.get({ name: 'never-written' });
    expect(res.namespace?.name).toBe('never-written');
    expect(res.namespace?.labels).toEqual({});
  });

  it('Create, List, AlreadyExists', async () => {
    const ns = h.client(NamespacesService);
    await ns.create({ namespace: { name: 'team-a', labels: { owner: 'alice' } } });
    const err = await ns.create({ namespace: { name: 'team-a' } }).catch((e) => e);
    expect(isAlreadyExists(err)).toBe(true);
    expect(err.message).toContain('namespace "team-a": already exists');
    const list = await ns.list({});
    expect(list.namespaces.map((n) => [n.name, n.labels])).toEqual([['team-a', { owner: 'alice' }]]);
  });

  it('Update with labels.<k> masks sets and deletes; without a mask replaces', async () => {
    const ns = h.client(NamespacesService);
    await ns.create({ namespace: { name: 'n', labels: { a: '1', b: '2' } } });
    await ns.update({
      namespace: { name: 'n', labels: { c: '3' } },
      updateMask: { paths: ['labels.c', 'labels.a'] },
    });
    expect((await ns.get({ name: 'n' })).namespace?.labels).toEqual({ b: '2', c: '3' });
    await ns.update({ namespace: { name: 'n', labels: { z: '9' } } });
    expect((await ns.get({ name: 'n' })).namespace?.labels).toEqual({ z: '9' });
    const bad = await ns
      .update({ namespace: { name: 'n' }, updateMask: { paths: ['name'] } })
      .catch((e) => e);
    expect(isInvalidArgument(bad)).toBe(true);
  });

  it('Delete: NotFound when absent, FailedPrecondition when not empty', async () => {
    const ns = h.client(NamespacesService);
    expect(isNotFound(await ns.delete({ name: 'ghost' }).catch((e) => e))).toBe(true);
    await h.client(ContainersService, 'busy').create({
      container: { id: 'c1', runtime: { name: 'io.containerd.runc.v2' }, spec },
    });
    const err = await ns.delete({ name: 'busy' }).catch((e) => e);
    expect(isFailedPrecondition(err)).toBe(true);
    expect(err.message).toMatch(/namespace "busy" must be empty, but it still has containers/);
    await h.client(ContainersService, 'busy').delete({ id: 'c1' });
    await ns.delete({ name: 'busy' });
    expect((await ns.list({})).namespaces).toEqual([]);
  });

  it('a write creates its namespace implicitly', async () => {
    await h.client(ContainersService, 'implicit').create({
      container: { id: 'c1', runtime: { name: 'io.containerd.runc.v2' }, spec },
    });
    const names = (await h.client(NamespacesService).list({})).namespaces.map((n) => n.name);
    expect(names).toEqual(['implicit']);
  });

  it('rejects invalid namespace names', async () => {
    const ns = h.client(NamespacesService);
    for (const name of ['', '../x', 'a/b', 'x'.repeat(77), 'näme']) {
      expect(isInvalidArgument(await ns.create({ namespace: { name } }).catch((e) => e))).toBe(true);
    }
  });
});
