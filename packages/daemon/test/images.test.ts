import { fromBinary } from '@bufbuild/protobuf';
import { isAlreadyExists, isInvalidArgument, isNotFound } from '@ctrd/api-proto';
import { ImageCreateSchema, ImageDeleteSchema, ImageUpdateSchema } from '@ctrd/api-proto/event-types';
import { ImagesService } from '@ctrd/api-proto/images';
import { sha256Digest } from '@ctrd/api-proto/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PluginType } from '../src/plugin.js';
import type { Exchange } from '../src/services/exchange.js';
import { pastEvents } from './content-support.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const errOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
};

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const target = (seed: string, mediaType = INDEX, annotations: Record<string, string> = {}) => ({
  mediaType,
  digest: sha256Digest(seed),
  size: 512n,
  annotations,
});

describe('Images', () => {
  it('Create, Get, List with every filter; AlreadyExists; events with bare type URLs', async () => {
    const c = h.client(ImagesService);
    const made = await c.create({
      image: {
        name: 'docker.io/library/busybox:latest',
        labels: { team: 'a', drop: '' },
        target: target('busybox', INDEX, { 'org.opencontainers.image.ref.name': 'latest' }),
      },
    });
    expect(made.image?.createdAt).toBeDefined();
    expect(made.image?.labels).toEqual({ team: 'a' });
    await c.create({
      image: {
        name: 'docker.io/library/alpine:3',
        labels: { team: 'b' },
        target: target('alpine', MANIFEST),
      },
    });
    const got = (await c.get({ name: 'docker.io/library/busybox:latest' })).image!;
    expect(got.target?.digest).toBe(sha256Digest('busybox'));
    expect(got.target?.size).toBe(512n);
    expect(got.target?.annotations).toEqual({ 'org.opencontainers.image.ref.name': 'latest' });

    const names = async (filters: string[]) => (await c.list({ filters })).images.map((i) => i.name);
    expect(await names([])).toEqual(['docker.io/library/alpine:3', 'docker.io/library/busybox:latest']);
    expect(await names(['name==docker.io/library/alpine:3'])).toEqual(['docker.io/library/alpine:3']);
    expect(await names(['name~=busybox'])).toEqual(['docker.io/library/busybox:latest']);
    expect(await names([`target.digest==${sha256Digest('alpine')}`])).toEqual(['docker.io/library/alpine:3']);
    expect(await names([`target.mediatype==${MANIFEST}`])).toEqual(['docker.io/library/alpine:3']);
    expect(await names(['labels.team==a'])).toEqual(['docker.io/library/busybox:latest']);
    expect(await names(['annotations."org.opencontainers.image.ref.name"==latest'])).toEqual([
      'docker.io/library/busybox:latest',
    ]);
    expect(await names(['labels.team==a', 'labels.team==b'])).toHaveLength(2);
    expect(isInvalidArgument(await errOf(c.list({ filters: ['name=="x'] })))).toBe(true);

    const dup = await errOf(c.create({ image: { name: 'docker.io/library/alpine:3', target: target('x') } }));
    expect(isAlreadyExists(dup)).toBe(true);
    expect(dup.message).toContain('image "docker.io/library/alpine:3": already exists');
    const nf = await errOf(c.get({ name: 'nope' }));
    expect(isNotFound(nf)).toBe(true);
    expect(nf.message).toContain('image "nope": not found');

    const ev = await pastEvents(h.plugins.get<Exchange>(PluginType.Event, 'exchange'), 'topic~="/images/"');
    expect(ev.map((e) => [e.topic, e.event?.typeUrl, e.namespace])).toEqual([
      ['/images/create', 'containerd.services.images.v1.ImageCreate', 'default'],
      ['/images/create', 'containerd.services.images.v1.ImageCreate', 'default'],
    ]);
    const first = fromBinary(ImageCreateSchema, ev[0]!.event!.value);
    expect(first).toMatchObject({ name: 'docker.io/library/busybox:latest', labels: { team: 'a' } });
  });

  it('rejects bad names, targets, media types and labels; nothing is stored', async () => {
    const c = h.client(ImagesService);
    const bad: [string, unknown][] = [
      ['empty name', { name: '', target: target('a') }],
      ['newline', { name: 'a\nb', target: target('a') }],
      ['NUL', { name: 'a\0b', target: target('a') }],
      ['DEL', { name: 'a\u007fb', target: target('a') }],
      ['4097 bytes', { name: 'x'.repeat(4097), target: target('a') }],
      ['no target', { name: 'a' }],
      ['bad digest', { name: 'a', target: { ...target('a'), digest: 'sha256:../../x' } }],
      ['unknown alg', { name: 'a', target: { ...target('a'), digest: `md5:${'a'.repeat(32)}` } }],
      ['size 0', { name: 'a', target: { ...target('a'), size: 0n } }],
      ['size < 0', { name: 'a', target: { ...target('a'), size: -1n } }],
      ['no media type', { name: 'a', target: { ...target('a'), mediaType: '' } }],
      ['media type', { name: 'a', target: { ...target('a'), mediaType: 'not a type' } }],
      ['media type ctl', { name: 'a', target: { ...target('a'), mediaType: 'application/json\n' } }],
      ['big label', { name: 'a', labels: { k: 'v'.repeat(4096) }, target: target('a') }],
      ['big annotations', { name: 'a', target: target('a', INDEX, { k: 'v'.repeat(300_000) }) }],
    ];
    for (const [what, image] of bad) {
      const e = await errOf(c.create({ image: image as never }));
      expect(isInvalidArgument(e), what).toBe(true);
    }
    expect((await c.list({})).images).toEqual([]);
    // 4096 bytes is the limit, and reference-like names with odd but printable characters are fine.
    await c.create({ image: { name: 'x'.repeat(4096), target: target('a') } });
    await c.create({ image: { name: 'localhost:5000/a/b@sha256:abc', target: target('a') } });
    await c.create({
      image: { name: 'c', target: { ...target('c'), mediaType: 'application/vnd.x+json; charset=utf-8' } },
    });
    expect((await c.list({})).images).toHaveLength(3);
  });

  it('Update: labels.<k>, labels, target, annotations, empty mask replaces; errors', async () => {
    const c = h.client(ImagesService);
    await c.create({
      image: { name: 'img', labels: { a: '1', b: '2' }, target: target('one', INDEX, { x: '1', y: '2' }) },
    });
    let img = (
      await c.update({
        image: { name: 'img', labels: { a: 'changed', b: '' } },
        updateMask: { paths: ['labels.a', 'labels.b', 'labels.c'] },
      })
    ).image!;
    expect(img.labels).toEqual({ a: 'changed' });
    expect(img.target?.digest).toBe(sha256Digest('one'));
    img = (
      await c.update({
        image: { name: 'img', target: target('two', MANIFEST) },
        updateMask: { paths: ['target'] },
      })
    ).image!;
    expect(img.target).toMatchObject({ digest: sha256Digest('two'), mediaType: MANIFEST, annotations: {} });
    expect(img.labels).toEqual({ a: 'changed' });
    img = (
      await c.update({
        image: { name: 'img', target: target('ignored', INDEX, { z: '3' }) },
        updateMask: { paths: ['annotations.z'] },
      })
    ).image!;
    expect(img.target).toMatchObject({ digest: sha256Digest('two'), annotations: { z: '3' } });
    img = (
      await c.update({ image: { name: 'img', labels: { only: 'x' } }, updateMask: { paths: ['labels'] } })
    ).image!;
    expect(img.labels).toEqual({ only: 'x' });
    // No mask: the whole image is replaced (ctr pull's Update after AlreadyExists).
    img = (await c.update({ image: { name: 'img', labels: {}, target: target('three') } })).image!;
    expect(img.labels).toEqual({});
    expect(img.target?.digest).toBe(sha256Digest('three'));
    expect(img.createdAt).toEqual((await c.get({ name: 'img' })).image?.createdAt);

    expect(
      isInvalidArgument(await errOf(c.update({ image: { name: 'img' }, updateMask: { paths: ['name'] } }))),
    ).toBe(true);
    // A replacement without a valid target is refused and the stored image is unchanged.
    expect(isInvalidArgument(await errOf(c.update({ image: { name: 'img', labels: { q: '1' } } })))).toBe(
      true,
    );
    expect(
      isInvalidArgument(
        await errOf(
          c.update({
            image: { name: 'img', target: { ...target('x'), digest: 'sha256:nope' } },
            updateMask: { paths: ['target'] },
          }),
        ),
      ),
    ).toBe(true);
    expect((await c.get({ name: 'img' })).image?.target?.digest).toBe(sha256Digest('three'));
    expect(isInvalidArgument(await errOf(c.update({ image: { name: '' } })))).toBe(true);
    expect(isNotFound(await errOf(c.update({ image: { name: 'ghost', target: target('g') } })))).toBe(true);
    const ev = await pastEvents(
      h.plugins.get<Exchange>(PluginType.Event, 'exchange'),
      'topic=="/images/update"',
    );
    expect(ev).toHaveLength(5);
    expect(ev[0]?.event?.typeUrl).toBe('containerd.services.images.v1.ImageUpdate');
    expect(fromBinary(ImageUpdateSchema, ev[0]!.event!.value).labels).toEqual({ a: 'changed' });
  });

  it('Delete: NotFound when missing, /images/delete event, namespaces kept apart', async () => {
    const a = h.client(ImagesService, 'ns-a');
    const b = h.client(ImagesService, 'ns-b');
    await a.create({ image: { name: 'same', target: target('a') } });
    await b.create({ image: { name: 'same', target: target('b') } });
    expect((await b.get({ name: 'same' })).image?.target?.digest).toBe(sha256Digest('b'));
    await a.delete({ name: 'same' });
    expect(isNotFound(await errOf(a.get({ name: 'same' })))).toBe(true);
    expect((await b.get({ name: 'same' })).image?.name).toBe('same');
    expect(isNotFound(await errOf(a.delete({ name: 'same' })))).toBe(true);
    expect(isInvalidArgument(await errOf(a.delete({ name: '' })))).toBe(true);
    await b.delete({ name: 'same', sync: true });
    expect((await b.list({})).images).toEqual([]);
    const ev = await pastEvents(
      h.plugins.get<Exchange>(PluginType.Event, 'exchange'),
      'topic=="/images/delete"',
    );
    expect(ev.map((e) => [e.namespace, fromBinary(ImageDeleteSchema, e.event!.value).name])).toEqual([
      ['ns-a', 'same'],
      ['ns-b', 'same'],
    ]);
  });
});
