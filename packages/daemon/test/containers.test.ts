import { create, fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  OCI_SPEC_URL,
  packJson,
  unpackAny,
  unpackJson,
} from '@ctrd/api-proto';
import { type ContainerSchema, ContainersService } from '@ctrd/api-proto/containers';
import { ContainerCreateSchema } from '@ctrd/api-proto/event-types';
import { EventsService } from '@ctrd/api-proto/events';
import { LeasesService } from '@ctrd/api-proto/leases';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PluginType } from '../src/plugin.js';
import type { Exchange } from '../src/services/exchange.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['/bin/true'] } });
const runtime = { name: 'io.containerd.runc.v2' };
const mk = (id: string, extra: Omit<MessageInitShape<typeof ContainerSchema>, '$typeName'> = {}) => ({
  container: { id, runtime, spec, ...extra },
});

describe('Containers', () => {
  it('Create then Get returns the spec bytes exactly as sent', async () => {
    const c = h.client(ContainersService);
    const odd = create(AnySchema, {
      typeUrl: OCI_SPEC_URL,
      value: new TextEncoder().encode('{"b":1,  "a":2}'),
    });
    const opts = create(AnySchema, {
      typeUrl: 'containerd.runc.v1.Options',
      value: new Uint8Array([0x32, 1, 0x78]),
    });
    const made = await c.create({
      container: {
        id: 'web',
        labels: { app: 'web' },
        image: 'docker.io/library/busybox:latest',
        runtime: { name: 'io.containerd.runc.v2', options: opts },
        spec: odd,
        snapshotter: 'overlayfs',
        snapshotKey: 'web',
        extensions: { note: create(AnySchema, { typeUrl: 'x.y', value: new Uint8Array([1, 2]) }) },
      },
    });
    expect(made.container?.createdAt).toBeDefined();
    const got = (await c.get({ id: 'web' })).container!;
    expect(got.spec?.typeUrl).toBe(OCI_SPEC_URL);
    expect(new TextDecoder().decode(got.spec?.value)).toBe('{"b":1,  "a":2}');
    expect(got.runtime?.options?.typeUrl).toBe('containerd.runc.v1.Options');
    expect([...(got.runtime?.options?.value ?? [])]).toEqual([0x32, 1, 0x78]);
    expect(Object.keys(got.extensions)).toEqual(['note']);
    expect(got).toMatchObject({ labels: { app: 'web' }, snapshotter: 'overlayfs', snapshotKey: 'web' });
  });

  it('rejects invalid ids', async () => {
    const c = h.client(ContainersService);
    for (const id of ['../x', 'a/b', '', 'x'.repeat(77), 'ünïcode', 'a..b', '-a']) {
      const err = await c.create(mk(id)).catch((e) => e);
      expect(isInvalidArgument(err), `id ${JSON.stringify(id)}`).toBe(true);
    }
    expect(isNotFound(await c.get({ id: 'nope' }).catch((e) => e))).toBe(true);
    expect((await c.list({})).containers).toEqual([]);
  });

  it('requires runtime.name and spec, and a snapshotter with a snapshot key', async () => {
    const c = h.client(ContainersService);
    expect(await c.create({ container: { id: 'a', spec } }).catch((e) => e.message)).toMatch(
      /runtime.name must be set/,
    );
    expect(await c.create({ container: { id: 'a', runtime } }).catch((e) => e.message)).toMatch(
      /spec must be set/,
    );
    expect(await c.create(mk('a', { snapshotKey: 'k' })).catch((e) => e.message)).toMatch(
      /snapshotter must be set when snapshot_key is set/,
    );
    const huge = { k: 'v'.repeat(5000) };
    expect(isInvalidArgument(await c.create(mk('a', { labels: huge })).catch((e) => e))).toBe(true);
    expect(isInvalidArgument(await c.create({}).catch((e) => e))).toBe(true);
  });

  it('needs the namespace header', async () => {
    const noNs = h.client(ContainersService, '');
    const err = await noNs.list({}).catch((e) => e);
    expect(isFailedPrecondition(err)).toBe(true);
    expect(err.message).toMatch(/namespace is required/);
    const bad = h.client(ContainersService, 'bad/ns');
    expect(isInvalidArgument(await bad.list({}).catch((e) => e))).toBe(true);
  });

  it('20 concurrent creates of one id: exactly one winner', async () => {
    const c = h.client(ContainersService);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => c.create(mk('race'))));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const l of lost) expect(isAlreadyExists(l.reason)).toBe(true);
    expect((await c.list({})).containers.map((x) => x.id)).toEqual(['race']);
  });

  it('namespaces are separate', async () => {
    await h.client(ContainersService, 'a').create(mk('same'));
    await h.client(ContainersService, 'b').create(mk('same'));
    expect((await h.client(ContainersService, 'a').list({})).containers).toHaveLength(1);
    const err = await h
      .client(ContainersService, 'c')
      .get({ id: 'same' })
      .catch((e) => e);
    expect(err.message).toBe('container "same" in namespace "c": not found');
  });

  it('Update: masks, empty mask, immutable fields, unknown fields', async () => {
    const c = h.client(ContainersService);
    await c.create(
      mk('u', { labels: { a: '1', b: '2' }, image: 'img:1', snapshotter: 'overlayfs', snapshotKey: 'u' }),
    );
    await c.update({
      container: { id: 'u', labels: { c: '3' } },
      updateMask: { paths: ['labels.c', 'labels.a'] },
    });
    expect((await c.get({ id: 'u' })).container?.labels).toEqual({ b: '2', c: '3' });
    await c.update({ container: { id: 'u', image: 'img:2' }, updateMask: { paths: ['image'] } });
    const got = (await c.get({ id: 'u' })).container!;
    expect(got.image).toBe('img:2');
    expect(got.labels).toEqual({ b: '2', c: '3' });
    const err1 = await c
      .update({ container: { id: 'u', snapshotter: 'native' }, updateMask: { paths: ['image'] } })
      .catch((e) => e);
    expect(isInvalidArgument(err1)).toBe(true);
    expect(err1.message).toMatch(/snapshotter is immutable/);
    const err2 = await c
      .update({ container: { id: 'u', runtime: { name: 'io.other' } }, updateMask: { paths: ['labels'] } })
      .catch((e) => e);
    expect(err2.message).toMatch(/runtime.name is immutable/);
    for (const p of ['snapshotter', 'runtime', 'id', 'labels.', 'createdat']) {
      const e = await c.update({ container: { id: 'u' }, updateMask: { paths: [p] } }).catch((x) => x);
      expect(isInvalidArgument(e), p).toBe(true);
    }
    // Empty mask: every updatable field from the request (the spec is still required).
    const spec2 = packJson(OCI_SPEC_URL, { ociVersion: '1.1.0' });
    await c.update({ container: { id: 'u', spec: spec2, image: 'img:3', snapshotKey: 'u2' } });
    const all = (await c.get({ id: 'u' })).container!;
    expect(all).toMatchObject({ image: 'img:3', labels: {}, snapshotKey: 'u2', snapshotter: 'overlayfs' });
    expect(unpackJson(all.spec)).toEqual({ ociVersion: '1.1.0' });
    expect(isNotFound(await c.update({ container: { id: 'ghost' } }).catch((e) => e))).toBe(true);
    // A spec cannot be removed.
    expect(
      isInvalidArgument(
        await c.update({ container: { id: 'u' }, updateMask: { paths: ['spec'] } }).catch((e) => e),
      ),
    ).toBe(true);
  });

  it('List and ListStream with filters; bad filter syntax is InvalidArgument', async () => {
    const c = h.client(ContainersService);
    await c.create(mk('a1', { image: 'busybox', labels: { tier: 'web', 'x.y': 'z' } }));
    await c.create(mk('a2', { image: 'alpine', labels: { tier: 'db' } }));
    await c.create(mk('b1', { runtime: { name: 'io.containerd.other' } }));
    const ids = async (filters: string[]) => (await c.list({ filters })).containers.map((x) => x.id);
    expect(await ids([])).toEqual(['a1', 'a2', 'b1']);
    expect(await ids(['id==a2'])).toEqual(['a2']);
    expect(await ids(['image==busybox'])).toEqual(['a1']);
    expect(await ids(['runtime.name==io.containerd.other'])).toEqual(['b1']);
    expect(await ids(['labels.tier'])).toEqual(['a1', 'a2']);
    expect(await ids(['labels.tier==web', 'id==b1'])).toEqual(['a1', 'b1']);
    expect(await ids(['labels.x.y==z'])).toEqual(['a1']);
    expect(await ids(['id~=^a'])).toEqual(['a1', 'a2']);
    expect(await ids(['labels.tier!=web'])).toEqual(['a2', 'b1']);
    for (const f of ['labels.a=="x', 'id==', '==a', 'id~=/[/']) {
      const err = await c.list({ filters: [f] }).catch((e) => e);
      expect(isInvalidArgument(err), f).toBe(true);
    }
    const streamed: string[] = [];
    for await (const m of c.listStream({ filters: ['labels.tier'] })) streamed.push(m.container!.id);
    expect(streamed).toEqual(['a1', 'a2']);
    expect(
      isInvalidArgument(
        await (async () => {
          for await (const _ of c.listStream({ filters: ['"'] })) {
          }
        })().catch((e) => e),
      ),
    ).toBe(true);
  });

  it('Delete, then NotFound', async () => {
    const c = h.client(ContainersService);
    await c.create(mk('d'));
    await c.delete({ id: 'd' });
    expect(isNotFound(await c.delete({ id: 'd' }).catch((e) => e))).toBe(true);
    expect(isNotFound(await c.get({ id: 'd' }).catch((e) => e))).toBe(true);
  });

  it('publishes /containers/{create,update,delete}', async () => {
    const ac = new AbortController();
    const sub = h
      .client(EventsService)
      .subscribe({ filters: ['topic~="/containers/"'] }, { signal: ac.signal });
    const it = sub[Symbol.asyncIterator]();
    const first = it.next();
    // Subscribe registers when the call reaches the exchange.
    await expect
      .poll(() => h.plugins.get<Exchange>(PluginType.Event, 'exchange').stats().subscribers)
      .toBe(1);
    const c = h.client(ContainersService, 'evns');
    await c.create(mk('e1', { image: 'img' }));
    await c.update({ container: { id: 'e1', labels: { a: 'b' } }, updateMask: { paths: ['labels'] } });
    await c.delete({ id: 'e1' });
    const envs = [(await first).value, (await it.next()).value, (await it.next()).value];
    ac.abort();
    expect(envs.map((e) => [e.namespace, e.topic])).toEqual([
      ['evns', '/containers/create'],
      ['evns', '/containers/update'],
      ['evns', '/containers/delete'],
    ]);
    expect(envs[0].event.typeUrl).toBe('containerd.events.ContainerCreate');
    const payload = fromBinary(ContainerCreateSchema, envs[0].event.value);
    expect(payload).toMatchObject({ id: 'e1', image: 'img', runtime: { name: 'io.containerd.runc.v2' } });
    expect(unpackAny(envs[1].event)).toMatchObject({ id: 'e1', labels: { a: 'b' } });
  });

  it('a container created under a lease is one of its resources; an unknown lease is NotFound', async () => {
    const leases = h.client(LeasesService);
    const lease = (await leases.create({ id: 'l1' })).lease!;
    await h.client(ContainersService, 'default', lease.id).create(mk('leased'));
    expect((await leases.listResources({ id: 'l1' })).resources.map((r) => [r.type, r.id])).toEqual([
      ['containers', 'leased'],
    ]);
    const err = await h
      .client(ContainersService, 'default', 'nolease')
      .create(mk('x'))
      .catch((e) => e);
    expect(isNotFound(err)).toBe(true);
    expect(
      isNotFound(
        await h
          .client(ContainersService)
          .get({ id: 'x' })
          .catch((e) => e),
      ),
    ).toBe(true);
  });
});
