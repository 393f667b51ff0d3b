import { MediaType } from '@ctrd/api-proto/oci';
import { describe, expect, it } from 'vitest';
import { FakeContent } from './fake-content.js';
import { type FakeRegistry, startRegistry } from './fake-registry.js';
import { runCtr } from './helpers.js';

// The commands end to end against the fake registry (real HTTP on loopback) and the fake content
// store (in memory): what a user sees on stdout and stderr, and what ends up stored.

async function registryWithImage(options: ConstructorParameters<typeof FakeRegistry>[0] = {}) {
  const r = await startRegistry(options);
  const layer = r.addBlob(Buffer.alloc(5000, 0x41));
  const config = r.addBlob(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const manifest = r.addManifest('test/busybox', '1', MediaType.dockerManifest, {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, ...config },
    layers: [{ mediaType: MediaType.dockerLayerGzip, ...layer }],
  });
  return { r, layer: layer.digest, config: config.digest, manifest, name: `${r.host}/test/busybox:1` };
}

describe('ctr images pull / push, content fetch', () => {
  it('pull --no-unpack: progress on stderr, the image name on stdout, the image created (then updated)', async () => {
    const { layer, manifest, name } = await registryWithImage();
    const store = new FakeContent();
    const res = await runCtr(['images', 'pull', '--plain-http', '--no-unpack', name], {
      routes: store.routes,
    });
    expect(res.stderr).not.toMatch(/^ctr: /m);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`${name}\n`);
    expect(res.stderr).toContain(`${name}: resolved`);
    expect(res.stderr).toMatch(new RegExp(`manifest-${manifest}: +done`));
    expect(res.stderr).toMatch(new RegExp(`layer-${layer}: +done +\\|\\++\\| 4\\.9 KiB/4\\.9 KiB`));
    expect(res.stderr).toMatch(/elapsed: [\d.]+ s\ttotal: /);
    expect(store.images.get(name)?.target?.digest).toBe(manifest);
    expect(store.images.get(name)?.target?.mediaType).toBe(MediaType.dockerManifest);
    // The lease was taken for the pull and given back.
    expect(store.writes.every((w) => / lease=\d+-[0-9a-f]{6}$/.test(w))).toBe(true);
    expect(store.leases.size).toBe(0);

    const again = await runCtr(['i', 'pull', '--plain-http', '--no-unpack', name], { routes: store.routes });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`layer-${layer}: +exists`));
    expect(store.images.get(name)?.target?.digest).toBe(manifest);
  });

  it('pull with --user: basic credentials from the flag, or the password from CTRD_REGISTRY_PASSWORD', async () => {
    const { r, name } = await registryWithImage({ auth: 'basic', users: { bob: 'pw' } });
    const store = new FakeContent();
    const denied = await runCtr(['images', 'pull', '--plain-http', '--no-unpack', name], {
      routes: store.routes,
    });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(
      /^ctr: manifest .*: basic authentication required: give --user USER\[:PASSWORD\]$/m,
    );
    const noPassword = await runCtr(
      ['images', 'pull', '--plain-http', '--user', 'bob', '--no-unpack', name],
      {
        routes: store.routes,
      },
    );
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr).toContain('CTRD_REGISTRY_PASSWORD');
    const ok = await runCtr(['images', 'pull', '--plain-http', '-u', 'bob', '--no-unpack', name], {
      routes: store.routes,
      env: { CTRD_REGISTRY_PASSWORD: 'pw' },
    });
    expect(ok.code).toBe(0);
    expect(
      r.requests.some((q) => q.headers.authorization === `Basic ${Buffer.from('bob:pw').toString('base64')}`),
    ).toBe(true);
  });

  it('push LOCAL to another repository: blobs and the tagged manifest arrive; stdout names the pushed digest', async () => {
    const { r, manifest, name, layer } = await registryWithImage();
    const store = new FakeContent();
    expect(
      (await runCtr(['images', 'pull', '--plain-http', '--no-unpack', name], { routes: store.routes })).code,
    ).toBe(0);
    const remote = `${r.host}/copy/busybox:2`;
    const res = await runCtr(['images', 'push', '--plain-http', remote, name], { routes: store.routes });
    expect(res.stderr).not.toMatch(/^ctr: /m);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`${remote}@${manifest}\n`);
    // Same registry, pulled from test/busybox: the blobs were mounted, not uploaded.
    expect(res.stderr).toMatch(new RegExp(`layer-${layer}: +(mounted|exists)`));
    expect(res.stderr).toMatch(new RegExp(`manifest-${manifest}: +done`));
    expect(r.manifest('copy/busybox', '2')?.digest).toBe(manifest);

    const missing = await runCtr(['images', 'push', '--plain-http', `${r.host}/x/y:1`, 'nothing/here:1'], {
      routes: store.routes,
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ctr: image "docker\.io\/nothing\/here:1": not found$/m);
  });

  it('content fetch stores the blobs, creates no image and keeps its lease', async () => {
    const { manifest, name, layer } = await registryWithImage();
    const store = new FakeContent();
    const res = await runCtr(['content', 'fetch', '--plain-http', name], { routes: store.routes });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`${manifest}\n`);
    expect(res.stderr).toMatch(/^ctr: content held by lease \d+-[0-9a-f]{6} until \d{4}-\d\d-\d\dT/m);
    expect(store.blobs.has(layer)).toBe(true);
    expect(store.images.size).toBe(0);
    expect(store.leases.size).toBe(1);
  });

  it('rejects --platform together with --all-platforms, and a bad reference', async () => {
    const store = new FakeContent();
    const both = await runCtr(['images', 'pull', '--platform', 'linux/arm64', '--all-platforms', 'busybox'], {
      routes: store.routes,
    });
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--platform and --all-platforms: give one or the other/);
    const bad = await runCtr(['images', 'pull', 'Not/Valid'], { routes: store.routes });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /image reference "Not\/Valid": invalid reference format: repository name must be lowercase/,
    );
  });
});
