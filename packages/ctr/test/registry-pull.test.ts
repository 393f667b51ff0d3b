import { MediaType, normalizeReference } from '@ctrd/api-proto/oci';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fetchImage } from '../src/registry/fetch.js';
import { Progress } from '../src/registry/progress.js';
import { pushImage } from '../src/registry/push.js';
import { Capture } from './helpers.js';
import { FakeContent } from './fake-content.js';
import { type FakeRegistry, registryClient, sha256, startRegistry } from './fake-registry.js';

const registry = startRegistry;
const client = registryClient;

interface PlatformImage {
  manifest: string;
  config: string;
  layer: string;
  layerBytes: Buffer;
}

/** A two-platform index (amd64, arm64) under `repo:tag`; each platform one layer of `size` bytes. */
function seedIndex(r: FakeRegistry, repo: string, tag: string, size = 3000) {
  const per: Record<string, PlatformImage> = {};
  const entries = [];
  for (const arch of ['amd64', 'arm64']) {
    const layerBytes = Buffer.alloc(size, arch === 'amd64' ? 0x61 : 0x62);
    const layer = r.addBlob(layerBytes);
    const config = r.addBlob(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, ...config },
      layers: [{ mediaType: MediaType.ociLayer, ...layer }],
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = r.addManifest(repo, undefined, MediaType.ociManifest, bytes);
    per[arch] = { manifest: digest, config: config.digest, layer: layer.digest, layerBytes };
    entries.push({
      mediaType: MediaType.ociManifest,
      digest,
      size: bytes.length,
      platform: { os: 'linux', architecture: arch },
    });
  }
  const index = r.addManifest(repo, tag, MediaType.ociIndex, {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: entries,
  });
  return { index, amd64: per.amd64 as PlatformImage, arm64: per.arm64 as PlatformImage };
}

describe('fetchImage', () => {
  it('fetches the wanted platform under the lease with containerd refs, gc.ref and source labels', async () => {
    const r = await registry();
    const img = seedIndex(r, 'test/busybox', '1');
    const store = new FakeContent();
    const ref = normalizeReference(`${r.host}/test/busybox:1`);
    const out = new Capture();
    const progress = new Progress(out, { tty: false });
    const result = await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref,
      lease: 'L1',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      progress,
    });
    progress.stop();
    expect(result.target.digest).toBe(img.index);
    expect(result.manifests.map((m) => m.desc.digest)).toEqual([img.amd64.manifest]);
    // amd64 only: nothing of arm64 was fetched.
    expect(store.blobs.has(img.arm64.layer)).toBe(false);
    expect(store.blobs.get(img.amd64.layer)?.data).toEqual(img.amd64.layerBytes);
    expect(store.writes).toEqual(
      expect.arrayContaining([
        `STAT index-${img.index} lease=L1`,
        `STAT manifest-${img.amd64.manifest} lease=L1`,
        `STAT config-${img.amd64.config} lease=L1`,
        `STAT layer-${img.amd64.layer} lease=L1`,
      ]),
    );
    const source = `containerd.io/distribution.source.${r.host}`;
    expect(store.blobs.get(img.index)?.labels).toEqual({
      'containerd.io/gc.ref.content.m.0': img.amd64.manifest,
      [source]: 'test/busybox',
    });
    expect(store.blobs.get(img.amd64.manifest)?.labels).toEqual({
      'containerd.io/gc.ref.content.config': img.amd64.config,
      'containerd.io/gc.ref.content.l.0': img.amd64.layer,
      [source]: 'test/busybox',
    });
    expect(store.blobs.get(img.amd64.layer)?.labels).toEqual({ [source]: 'test/busybox' });
    // History lines on a non-terminal, then the total.
    expect(out.text).toContain(`${ref.reference}: resolved`);
    expect(out.text).toMatch(new RegExp(`layer-${img.amd64.layer}: +done +\\|\\++\\| 2\\.9 KiB/2\\.9 KiB`));
    expect(out.text).toMatch(/elapsed: \d+\.\d s\ttotal: [\d.]+ KiB\t\([\d.]+ [KM]?i?B\/s\)\n$/);
  });

  it('--all-platforms fetches every manifest; a second fetch finds everything present', async () => {
    const r = await registry();
    const img = seedIndex(r, 'multi/arch', 'v2');
    const store = new FakeContent();
    const ref = normalizeReference(`${r.host}/multi/arch:v2`);
    const result = await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref,
      lease: 'L',
      allPlatforms: true,
    });
    expect(result.manifests).toHaveLength(2);
    expect(store.blobs.has(img.arm64.layer) && store.blobs.has(img.amd64.layer)).toBe(true);
    expect(store.blobs.get(img.index)?.labels['containerd.io/gc.ref.content.m.1']).toBe(img.arm64.manifest);

    const out = new Capture();
    const progress = new Progress(out, { tty: false });
    const before = store.writes.length;
    await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref,
      lease: 'L',
      allPlatforms: true,
      progress,
    });
    progress.stop();
    expect(store.writes.length).toBe(before);
    expect(out.text).toContain(`layer-${img.arm64.layer}: exists`);
    expect(out.text).toContain(`index-${img.index}: exists`);
  });

  it('a layer whose bytes do not match its digest fails and nothing of it is kept', async () => {
    const r = await registry();
    const img = seedIndex(r, 'bad/layer', '1');
    // Same length, other bytes: only the digest can tell.
    r.blobs.set(img.amd64.layer, Buffer.alloc(img.amd64.layerBytes.length, 0x7a));
    const store = new FakeContent();
    await expect(
      fetchImage({
        clients: store.clients(),
        registry: client(r),
        ref: normalizeReference(`${r.host}/bad/layer:1`),
        lease: 'L',
        platforms: [{ os: 'linux', architecture: 'amd64' }],
        backoffMs: 1,
      }),
    ).rejects.toMatchObject({
      name: 'FailedPrecondition',
      message: expect.stringMatching(/unexpected commit digest/),
    });
    expect(store.blobs.has(img.amd64.layer)).toBe(false);
    expect(store.ingests.has(`layer-${img.amd64.layer}`)).toBe(false);
    expect(store.aborted).toContain(`layer-${img.amd64.layer}`);
  });

  it('resumes a partial layer with a Range request for the rest', async () => {
    const r = await registry();
    const img = seedIndex(r, 'resume/me', '1', 100_000);
    const store = new FakeContent();
    store.ingests.set(`layer-${img.amd64.layer}`, {
      data: img.amd64.layerBytes.subarray(0, 40_000),
      total: 100_000n,
      expected: img.amd64.layer,
      locked: false,
    });
    await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref: normalizeReference(`${r.host}/resume/me:1`),
      lease: 'L',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    expect(store.blobs.get(img.amd64.layer)?.data).toEqual(img.amd64.layerBytes);
    const layerGets = r.requests.filter((q) => q.url.endsWith(`/blobs/${img.amd64.layer}`));
    expect(layerGets.map((q) => q.headers.range)).toEqual(['bytes=40000-']);
  });

  it('a connection that breaks mid-layer is resumed from where the ingest got to', async () => {
    const r = await registry();
    const img = seedIndex(r, 'flaky/net', '1', 200_000);
    let broke = false;
    r.intercept = (req, res) => {
      if (broke || !req.url?.endsWith(`/blobs/${img.amd64.layer}`)) return false;
      broke = true;
      res.setHeader('content-length', '200000');
      res.write(img.amd64.layerBytes.subarray(0, 120_000), () => setTimeout(() => res.destroy(), 50));
      return true;
    };
    const store = new FakeContent();
    await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref: normalizeReference(`${r.host}/flaky/net:1`),
      lease: 'L',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      backoffMs: 1,
    });
    expect(store.blobs.get(img.amd64.layer)?.data).toEqual(img.amd64.layerBytes);
    const ranges = r.requests
      .filter((q) => q.url.endsWith(`/blobs/${img.amd64.layer}`))
      .map((q) => q.headers.range as string | undefined);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1] ?? '')?.[0])).toBeGreaterThan(0);
  });

  it('waits while another writer holds a ref (Unavailable), then writes', async () => {
    const r = await registry();
    const img = seedIndex(r, 'busy/ref', '1');
    const store = new FakeContent();
    // Another writer holds each ref until fetchImage has been refused once (not after a fixed time:
    // on a slow machine the fetch may reach the ref only after any such time).
    const timers: NodeJS.Timeout[] = [];
    for (const ref of [`manifest-${img.amd64.manifest}`, `layer-${img.amd64.layer}`]) {
      store.ingests.set(ref, { data: Buffer.alloc(0), total: 0n, expected: '', locked: true });
      const t = setInterval(() => {
        if (!store.writes.some((w) => w.startsWith(`STAT ${ref}`))) return;
        store.ingests.delete(ref);
        clearInterval(t);
      }, 5);
      timers.push(t);
    }
    onTestFinished(() => {
      for (const t of timers) clearInterval(t);
    });
    await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref: normalizeReference(`${r.host}/busy/ref:1`),
      lease: 'L',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      backoffMs: 15,
    });
    expect(store.blobs.has(img.amd64.manifest) && store.blobs.has(img.amd64.layer)).toBe(true);
    expect(
      store.writes.filter((w) => w.startsWith(`STAT manifest-${img.amd64.manifest}`)).length,
    ).toBeGreaterThan(1);
    expect(store.writes.filter((w) => w.startsWith(`STAT layer-${img.amd64.layer}`)).length).toBeGreaterThan(
      1,
    );
  });

  it('says which platforms were asked for when an index has none of them', async () => {
    const r = await registry();
    seedIndex(r, 'only/two', '1');
    await expect(
      fetchImage({
        clients: new FakeContent().clients(),
        registry: client(r),
        ref: normalizeReference(`${r.host}/only/two:1`),
        lease: 'L',
        platforms: [{ os: 'linux', architecture: 's390x' }],
      }),
    ).rejects.toThrow(/has no manifest for linux\/s390x: use --platform or --all-platforms/);
  });
});

describe('pushImage', () => {
  it('pushes blobs then manifests then the tagged index; a second push finds everything there', async () => {
    const src = await registry();
    const img = seedIndex(src, 'test/busybox', '1');
    const store = new FakeContent();
    const pulled = await fetchImage({
      clients: store.clients(),
      registry: client(src),
      ref: normalizeReference(`${src.host}/test/busybox:1`),
      lease: 'L',
      allPlatforms: true,
    });

    const dst = await registry({ auth: 'bearer', users: { u: 'p' } });
    const ref = normalizeReference(`${dst.host}/copy/busybox:v1`);
    const out = new Capture();
    const progress = new Progress(out, { tty: false });
    await pushImage({
      clients: store.clients(),
      registry: client(dst, { username: 'u', password: 'p' }),
      ref,
      target: pulled.target,
      progress,
    });
    progress.stop();
    expect(dst.manifest('copy/busybox', 'v1')?.digest).toBe(img.index);
    expect(dst.manifest('copy/busybox', img.arm64.manifest)).toBeDefined();
    expect(dst.blobs.get(img.arm64.layer)).toEqual(img.arm64.layerBytes);
    const order = dst.requests
      .filter((q) => q.method === 'PUT')
      .map((q) => new URL(q.url, dst.origin).pathname);
    expect(order.at(-1)).toBe('/v2/copy/busybox/manifests/v1');
    expect(order.filter((p) => p.includes('/blobs/uploads/'))).toHaveLength(4);
    expect(out.text).toContain(`layer-${img.amd64.layer}: done`);
    expect(out.text).toContain(`index-${img.index}: done`);

    const again = new Capture();
    const p2 = new Progress(again, { tty: false });
    const uploadsBefore = dst.requests.filter((q) => q.method === 'PUT' && q.url.includes('/blobs/')).length;
    await pushImage({
      clients: store.clients(),
      registry: client(dst, { username: 'u', password: 'p' }),
      ref,
      target: pulled.target,
      progress: p2,
    });
    p2.stop();
    expect(again.text).toContain(`layer-${img.amd64.layer}: exists`);
    // Blobs are not uploaded again; only the manifests are put (idempotent).
    expect(dst.requests.filter((q) => q.method === 'PUT' && q.url.includes('/blobs/')).length).toBe(
      uploadsBefore,
    );
    expect(uploadsBefore).toBe(4);
  });

  it('an index whose other platform was never pulled pushes only when the registry has that manifest', async () => {
    const src = await registry();
    const img = seedIndex(src, 'test/busybox', '1');
    const store = new FakeContent();
    const pulled = await fetchImage({
      clients: store.clients(),
      registry: client(src),
      ref: normalizeReference(`${src.host}/test/busybox:1`),
      lease: 'L',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    const dst = await registry();
    await expect(
      pushImage({
        clients: store.clients(),
        registry: client(dst),
        ref: normalizeReference(`${dst.host}/a/b:1`),
        target: pulled.target,
      }),
    ).rejects.toThrow(new RegExp(`content ${img.arm64.manifest} .*not in the local store`));
    // --platform pushes the one manifest alone, tagged.
    const top = await pushImage({
      clients: store.clients(),
      registry: client(dst),
      ref: normalizeReference(`${dst.host}/a/b:1`),
      target: pulled.target,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(top.digest).toBe(img.amd64.manifest);
    expect(dst.manifest('a/b', '1')?.digest).toBe(img.amd64.manifest);
  });

  it('mounts a blob from the repository it was pulled from on the same registry', async () => {
    const r = await registry();
    const img = seedIndex(r, 'origin/repo', '1');
    const store = new FakeContent();
    const pulled = await fetchImage({
      clients: store.clients(),
      registry: client(r),
      ref: normalizeReference(`${r.host}/origin/repo:1`),
      lease: 'L',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    // Make the registry hold the blobs only under origin/repo.
    for (const d of [img.amd64.layer, img.amd64.config]) r.links.set(d, new Set(['origin/repo']));
    await pushImage({
      clients: store.clients(),
      registry: client(r),
      ref: normalizeReference(`${r.host}/other/repo:1`),
      target: pulled.target,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const posts = r.requests
      .filter((q) => q.method === 'POST')
      .map((q) => new URL(q.url, r.origin).searchParams);
    expect(posts.map((p) => p.get('from'))).toEqual(['origin/repo', 'origin/repo']);
    expect(r.requests.some((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/'))).toBe(false);
    expect(sha256(r.blobs.get(img.amd64.layer) ?? '')).toBe(img.amd64.layer);
  });
});
