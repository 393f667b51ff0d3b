import { isInvalidArgument, OCI_SPEC_URL, packJson } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { ContentService } from '@ctrd/api-proto/content';
import { EventsService } from '@ctrd/api-proto/events';
import { ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { TasksService } from '@ctrd/api-proto/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, harness } from './harness.js';

// Every id, key, ref and digest a request carries is checked at the API edge by the rules of what
// it names (reliability case 25, 32): each bad value is InvalidArgument, whatever the service, and
// before anything is looked up or changed.

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h.close();
});

// containerd's identifier rule: namespaces, containers, tasks, exec ids, topic components.
const BAD_IDS = ['', '../x', 'a/b', 'x'.repeat(77), 'a\0b', 'ünïcode', '.x', 'a..b', '-a', 'a b'];
const BAD_DIGESTS = [
  '',
  'sha256:../../x',
  'md5:d41d8cd98f00b204e9800998ecf8427e',
  `sha256:${'g'.repeat(64)}`,
  `sha256:${'A'.repeat(64)}`,
  `sha256:${'a'.repeat(63)}`,
  `../sha256:${'a'.repeat(64)}`,
];
const BAD_LEASE_IDS = ['', 'a/b', 'a b', 'x'.repeat(257), 'a\nb', '../x/'];
const BAD_REFS = ['', 'x'.repeat(1025), 'a\nb', 'a\0b'];
const BAD_KEYS = ['', 'a\0b', 'x'.repeat(1025)];
const BAD_IMAGE_NAMES = ['', 'a\nb', 'a\0b', 'x'.repeat(4097)];

const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2' });
const runtime = { name: 'io.containerd.runc.v2' };
const digest = `sha256:${'a'.repeat(64)}`;

async function expectInvalid(what: string, call: () => Promise<unknown>): Promise<void> {
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isInvalidArgument(err), `${what}: ${err === undefined ? 'succeeded' : String(err)}`).toBe(true);
}

const cases = (
  values: readonly string[],
  calls: Record<string, (v: string) => Promise<unknown>>,
): [string, () => Promise<unknown>][] =>
  Object.entries(calls).flatMap(([name, call]) =>
    values.map((v): [string, () => Promise<unknown>] => [
      `${name}(${JSON.stringify(v.slice(0, 40))})`,
      () => call(v),
    ]),
  );

describe('the API edge', () => {
  it('container ids, and the image, snapshotter and snapshot key a container names', async () => {
    const c = h.client(ContainersService);
    const table = [
      ...cases(BAD_IDS, {
        'Containers.Get': (id) => c.get({ id }),
        'Containers.Create': (id) => c.create({ container: { id, runtime, spec } }),
        'Containers.Update': (id) => c.update({ container: { id, runtime, spec } }),
        'Containers.Delete': (id) => c.delete({ id }),
        'Containers.Create snapshotter': (snapshotter) =>
          c.create({
            container: { id: 'c1', runtime, spec, snapshotter: snapshotter || 'x/y', snapshotKey: 'k' },
          }),
      }),
      ...cases(BAD_IMAGE_NAMES.slice(1), {
        'Containers.Create image': (image) => c.create({ container: { id: 'c1', runtime, spec, image } }),
      }),
      ...cases(BAD_KEYS.slice(1), {
        'Containers.Create snapshot key': (snapshotKey) =>
          c.create({ container: { id: 'c1', runtime, spec, snapshotter: 'overlayfs', snapshotKey } }),
      }),
    ];
    for (const [what, call] of table) await expectInvalid(what, call);
    expect((await c.list({})).containers).toEqual([]);
  });

  it('task container ids and exec ids', async () => {
    const t = h.client(TasksService);
    const table = [
      ...cases(BAD_IDS, {
        'Tasks.Create': (containerId) => t.create({ containerId }),
        'Tasks.Start': (containerId) => t.start({ containerId }),
        'Tasks.Delete': (containerId) => t.delete({ containerId }),
        'Tasks.Get': (containerId) => t.get({ containerId }),
        'Tasks.Kill': (containerId) => t.kill({ containerId, signal: 15 }),
        'Tasks.Pause': (containerId) => t.pause({ containerId }),
        'Tasks.Resume': (containerId) => t.resume({ containerId }),
        'Tasks.ListPids': (containerId) => t.listPids({ containerId }),
        'Tasks.Wait': (containerId) => t.wait({ containerId }),
        'Tasks.Update': (containerId) => t.update({ containerId }),
        'Tasks.CloseIO': (containerId) => t.closeIO({ containerId }),
        'Tasks.ResizePty': (containerId) => t.resizePty({ containerId }),
      }),
      // A valid container id that does not exist: the exec id is refused first.
      ...cases(BAD_IDS, {
        'Tasks.DeleteProcess': (execId) => t.deleteProcess({ containerId: 'c1', execId }),
        'Tasks.Exec': (execId) => t.exec({ containerId: 'c1', execId }),
      }),
      ...cases(BAD_IDS.slice(1), {
        'Tasks.Start exec': (execId) => t.start({ containerId: 'c1', execId }),
        'Tasks.Get exec': (execId) => t.get({ containerId: 'c1', execId }),
        'Tasks.Kill exec': (execId) => t.kill({ containerId: 'c1', execId, signal: 15 }),
        'Tasks.Wait exec': (execId) => t.wait({ containerId: 'c1', execId }),
        'Tasks.CloseIO exec': (execId) => t.closeIO({ containerId: 'c1', execId }),
        'Tasks.ResizePty exec': (execId) => t.resizePty({ containerId: 'c1', execId }),
      }),
    ];
    for (const [what, call] of table) await expectInvalid(what, call);
  });

  it('lease ids, and resource ids by what they name', async () => {
    const l = h.client(LeasesService);
    await l.create({ id: 'L' });
    const resource = (type: string, id: string) => ({ id: 'L', resource: { type, id } });
    const table = [
      ...cases(BAD_LEASE_IDS.slice(1), { 'Leases.Create': (id) => l.create({ id }) }),
      ...cases(BAD_LEASE_IDS, {
        'Leases.Delete': (id) => l.delete({ id }),
        'Leases.AddResource': (id) => l.addResource({ id, resource: { type: 'content', id: digest } }),
        'Leases.DeleteResource': (id) => l.deleteResource({ id, resource: { type: 'content', id: digest } }),
        'Leases.ListResources': (id) => l.listResources({ id }),
      }),
      ...cases(BAD_DIGESTS.slice(1), {
        'Leases.AddResource content': (id) => l.addResource(resource('content', id)),
      }),
      ...cases(BAD_REFS.slice(2), {
        'Leases.AddResource ingests': (id) => l.addResource(resource('ingests', id)),
      }),
      ...cases(BAD_IDS.slice(1), {
        'Leases.AddResource containers': (id) => l.addResource(resource('containers', id)),
      }),
      ...cases(BAD_IMAGE_NAMES.slice(1, 3), {
        'Leases.AddResource images': (id) => l.addResource(resource('images', id)),
      }),
      ...cases(BAD_KEYS.slice(1, 2), {
        'Leases.AddResource snapshots': (id) => l.addResource(resource('snapshots/overlayfs', id)),
      }),
    ];
    for (const [what, call] of table) await expectInvalid(what, call);
    expect((await l.listResources({ id: 'L' })).resources).toEqual([]);
    // Generated lease ids (nanos-base64url) are accepted wherever a lease id goes.
    const made = (await l.create({})).lease!.id;
    await l.addResource({ id: made, resource: { type: 'content', id: digest } });
    expect((await l.listResources({ id: made })).resources.map((r) => r.id)).toEqual([digest]);
  });

  it('digests, refs, image names, snapshot keys, namespaces and topics', async () => {
    const ct = h.client(ContentService);
    const im = h.client(ImagesService);
    const sn = h.client(SnapshotsService);
    const ns = h.client(NamespacesService);
    const ev = h.client(EventsService);
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it) {
      }
    };
    const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1n };
    const table = [
      ...cases(BAD_DIGESTS, {
        'Content.Info': (d) => ct.info({ digest: d }),
        'Content.Delete': (d) => ct.delete({ digest: d }),
        'Content.Update': (d) => ct.update({ info: { digest: d } }),
        'Content.Read': (d) => drain(ct.read({ digest: d })),
        'Images.Create target': (d) => im.create({ image: { name: 'x', target: { ...target, digest: d } } }),
      }),
      ...cases(BAD_REFS, {
        'Content.Status': (ref) => ct.status({ ref }),
        'Content.Abort': (ref) => ct.abort({ ref }),
      }),
      ...cases(BAD_IMAGE_NAMES, {
        'Images.Get': (name) => im.get({ name }),
        'Images.Create': (name) => im.create({ image: { name, target } }),
        'Images.Update': (name) => im.update({ image: { name, target } }),
        'Images.Delete': (name) => im.delete({ name }),
      }),
      ...cases(BAD_KEYS, {
        'Snapshots.Prepare': (key) => sn.prepare({ snapshotter: 'native', key }),
        'Snapshots.Prepare parent': (parent) =>
          sn.prepare({ snapshotter: 'native', key: 'k', parent: parent || '\0' }),
        'Snapshots.View': (key) => sn.view({ snapshotter: 'native', key }),
        'Snapshots.Mounts': (key) => sn.mounts({ snapshotter: 'native', key }),
        'Snapshots.Commit': (key) => sn.commit({ snapshotter: 'native', key, name: 'n' }),
        'Snapshots.Commit name': (name) => sn.commit({ snapshotter: 'native', key: 'k', name }),
        'Snapshots.Remove': (key) => sn.remove({ snapshotter: 'native', key }),
        'Snapshots.Stat': (key) => sn.stat({ snapshotter: 'native', key }),
        'Snapshots.Usage': (key) => sn.usage({ snapshotter: 'native', key }),
        'Snapshots.Update': (name) => sn.update({ snapshotter: 'native', info: { name } }),
      }),
      ...cases(['', 'nope', '../native'], {
        'Snapshots.Stat snapshotter': (snapshotter) => sn.stat({ snapshotter, key: 'k' }),
      }),
      ...cases(BAD_IDS, {
        'Namespaces.Get': (name) => ns.get({ name }),
        'Namespaces.Create': (name) => ns.create({ namespace: { name } }),
        'Namespaces.Update': (name) => ns.update({ namespace: { name } }),
        'Namespaces.Delete': (name) => ns.delete({ name }),
        // A "/" in a component makes two components: both valid for a/b.
        'Events.Publish topic': (part) => ev.publish({ topic: `/x/${part === 'a/b' ? 'a//b' : part}` }),
        'Events.Forward namespace': (namespace) =>
          ev.forward({ envelope: { namespace, topic: '/x', timestamp: { seconds: 1n } } }),
      }),
    ];
    for (const [what, call] of table) await expectInvalid(what, call);
  });

  it('the namespace and lease headers', async () => {
    // (Values with control characters cannot be sent as a header at all.)
    const sendable = (v: string) => ![...v].some((ch) => ch.charCodeAt(0) < 0x20);
    for (const bad of BAD_IDS.slice(1).filter(sendable)) {
      await expectInvalid(`namespace ${JSON.stringify(bad)}`, () =>
        h.client(ContainersService, bad).list({}),
      );
    }
    for (const bad of BAD_LEASE_IDS.slice(1).filter(sendable)) {
      await expectInvalid(`lease ${JSON.stringify(bad)}`, () =>
        h.client(ContainersService, 'default', bad).create({ container: { id: 'c2', runtime, spec } }),
      );
    }
  });
});
