import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isInvalidArgument, isResourceExhausted } from '../src/errors.js';
import {
  chainId,
  chainIds,
  compatiblePlatforms,
  defaultPlatform,
  familiarName,
  formatPlatform,
  isLayerType,
  layerCompression,
  MAX_LAYERS,
  MAX_MANIFEST_BYTES,
  MediaType,
  normalizePlatform,
  normalizeReference,
  parseImageConfig,
  parseImageLayout,
  parseIndex,
  parseManifest,
  parsePlatform,
  platformMatches,
  platformRank,
} from '../src/oci.js';

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const desc = (mediaType: string, s: string) => ({ mediaType, digest: sha(s), size: s.length });

function manifest(extra: Record<string, unknown> = {}, layers = 1) {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: desc(MediaType.ociConfig, 'config'),
    layers: Array.from({ length: layers }, (_, i) => desc(MediaType.ociLayerGzip, `layer${i}`)),
    ...extra,
  };
}

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('media types', () => {
  it('classifies layers and their compression', () => {
    expect(layerCompression(MediaType.ociLayer)).toBe('none');
    expect(layerCompression(MediaType.dockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MediaType.ociLayerZstd)).toBe('zstd');
    expect(layerCompression(MediaType.dockerForeignLayer)).toBe('gzip');
    expect(isLayerType(MediaType.ociManifest)).toBe(false);
    expect(layerCompression(MediaType.ociConfig)).toBeUndefined();
  });
});

describe('parseManifest', () => {
  it('returns only validated fields', () => {
    const m = parseManifest(JSON.stringify(manifest({ annotations: { a: 'b' }, junk: { big: true } })), {
      mediaType: MediaType.ociManifest,
    });
    expect(m.config.digest).toBe(sha('config'));
    expect(m.layers).toHaveLength(1);
    expect(m.annotations).toEqual({ a: 'b' });
    expect((m as unknown as Record<string, unknown>).junk).toBeUndefined();
  });

  it('accepts a docker schema2 manifest', () => {
    const m = parseManifest(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: desc(MediaType.dockerConfig, 'c'),
        layers: [desc(MediaType.dockerLayerGzip, 'l')],
      }),
      { mediaType: MediaType.dockerManifest },
    );
    expect(m.mediaType).toBe(MediaType.dockerManifest);
  });

  it('rejects a body over 4 MiB before parsing it', () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    const e = caught(() => parseManifest(big, { name: 'sha256:abc' }));
    expect(isResourceExhausted(e)).toBe(true);
    expect(e.message).toMatch(/^manifest sha256:abc: 4194305 bytes, over the limit/);
  });

  it(`rejects more than ${MAX_LAYERS} layers`, () => {
    const e = caught(() => parseManifest(JSON.stringify(manifest({}, 200))));
    expect(isInvalidArgument(e)).toBe(true);
    expect(e.message).toContain('200 layers, more than the limit of 128');
    expect(parseManifest(JSON.stringify(manifest({}, MAX_LAYERS))).layers).toHaveLength(MAX_LAYERS);
  });

  it('rejects a manifest that is also an index (GHSA-5j5w-g665-5m35)', () => {
    const both = manifest({ manifests: [desc(MediaType.ociManifest, 'x')] });
    expect(caught(() => parseManifest(JSON.stringify(both))).message).toContain(
      'expected a manifest but found an index',
    );
    expect(caught(() => parseIndex(JSON.stringify(both))).message).toContain(
      'expected an index but found a manifest',
    );
  });

  it('rejects a body whose mediaType disagrees with its descriptor', () => {
    const e = caught(() =>
      parseManifest(JSON.stringify(manifest()), { mediaType: MediaType.dockerManifest, name: 'sha256:1' }),
    );
    expect(isInvalidArgument(e)).toBe(true);
    expect(e.message).toContain('media type mismatch');
    const untyped = manifest({ mediaType: undefined });
    expect(
      caught(() => parseManifest(JSON.stringify(untyped), { mediaType: MediaType.ociIndex })).message,
    ).toContain('descriptor says index');
  });

  it('rejects bad digests, sizes, schema versions and json', () => {
    const badDigest = manifest({
      config: { mediaType: MediaType.ociConfig, digest: 'sha256:../../x', size: 1 },
    });
    expect(isInvalidArgument(caught(() => parseManifest(JSON.stringify(badDigest))))).toBe(true);
    const negative = manifest({ config: { ...desc(MediaType.ociConfig, 'c'), size: -1 } });
    expect(caught(() => parseManifest(JSON.stringify(negative))).message).toContain(
      'size must be a non-negative',
    );
    expect(caught(() => parseManifest(JSON.stringify(manifest({ schemaVersion: 1 })))).message).toContain(
      'schemaVersion 1 is not supported',
    );
    expect(caught(() => parseManifest('{nope')).message).toMatch(/^manifest: invalid json/);
    expect(caught(() => parseManifest('[]')).message).toBe('manifest: want a json object');
  });
});

describe('parseIndex', () => {
  it('parses entries with platforms', () => {
    const idx = parseIndex(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { ...desc(MediaType.ociManifest, 'a'), platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    );
    expect(idx.manifests[0]?.platform).toEqual({ os: 'linux', architecture: 'arm64' });
  });

  it('bounds the number of entries', () => {
    const many = {
      schemaVersion: 2,
      manifests: Array.from({ length: 1025 }, () => desc(MediaType.ociManifest, 'a')),
    };
    expect(caught(() => parseIndex(JSON.stringify(many))).message).toContain('1025 entries');
  });
});

describe('parseImageConfig', () => {
  const cfg = {
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: '1000:1000',
      Env: ['PATH=/bin', 'A=1'],
      Entrypoint: null,
      Cmd: ['sh'],
      WorkingDir: '/work',
      Labels: { l: 'v' },
      StopSignal: 'SIGINT',
      ExposedPorts: { '80/tcp': {} },
      Volumes: { '/data': { ignored: 1 } },
    },
    rootfs: { type: 'layers', diff_ids: [sha('a'), sha('b')] },
    history: [{ created_by: 'x', empty_layer: true }],
  };

  it('keeps the run config fields', () => {
    const c = parseImageConfig(JSON.stringify(cfg));
    expect(c.config).toEqual({
      User: '1000:1000',
      Env: ['PATH=/bin', 'A=1'],
      Cmd: ['sh'],
      WorkingDir: '/work',
      Labels: { l: 'v' },
      StopSignal: 'SIGINT',
      ExposedPorts: { '80/tcp': {} },
      Volumes: { '/data': {} },
    });
    expect(c.rootfs.diff_ids).toEqual([sha('a'), sha('b')]);
  });

  it('rejects wrong types and bad diff ids', () => {
    const badEnv = { ...cfg, config: { Env: 'A=1' } };
    expect(caught(() => parseImageConfig(JSON.stringify(badEnv))).message).toContain(
      'Env must be an array of strings',
    );
    const badDiff = { ...cfg, rootfs: { type: 'layers', diff_ids: ['md5:x'] } };
    expect(isInvalidArgument(caught(() => parseImageConfig(JSON.stringify(badDiff))))).toBe(true);
    const badType = { ...cfg, rootfs: { type: 'other', diff_ids: [] } };
    expect(caught(() => parseImageConfig(JSON.stringify(badType))).message).toContain('rootfs.type');
    expect(
      caught(() => parseImageConfig(JSON.stringify(cfg), { mediaType: MediaType.ociManifest })).message,
    ).toContain('is not an image config');
  });
});

describe('parseImageLayout', () => {
  it('accepts 1.0.0 only', () => {
    expect(parseImageLayout('{"imageLayoutVersion":"1.0.0"}').imageLayoutVersion).toBe('1.0.0');
    expect(isInvalidArgument(caught(() => parseImageLayout('{"imageLayoutVersion":"2"}')))).toBe(true);
  });
});

describe('normalizeReference', () => {
  const cases: [string, string, string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'docker.io', 'library/busybox'],
    ['index.docker.io/foo/bar', 'docker.io/foo/bar:latest', 'docker.io', 'foo/bar'],
    ['localhost/x', 'localhost/x:latest', 'localhost', 'x'],
    ['localhost:5000/x:v1', 'localhost:5000/x:v1', 'localhost:5000', 'x'],
    ['ghcr.io/a/b/c:t', 'ghcr.io/a/b/c:t', 'ghcr.io', 'a/b/c'],
    ['[::1]:5000/img', '[::1]:5000/img:latest', '[::1]:5000', 'img'],
    ['Registry/x', 'Registry/x:latest', 'Registry', 'x'],
  ];
  for (const [input, full, domain, path] of cases) {
    it(`${input} → ${full}`, () => {
      const r = normalizeReference(input);
      expect(r.reference).toBe(full);
      expect(r.domain).toBe(domain);
      expect(r.path).toBe(path);
      expect(r.name).toBe(`${domain}/${path}`);
    });
  }

  it('keeps the digest and drops the tag', () => {
    const d = sha('m');
    const r = normalizeReference(`busybox:1@${d}`);
    expect(r.reference).toBe(`docker.io/library/busybox@${d}`);
    expect(r.tag).toBeUndefined();
    expect(r.digest).toBe(d);
  });

  it('adds no tag when asked not to', () => {
    expect(normalizeReference('busybox', { defaultTag: false }).reference).toBe('docker.io/library/busybox');
  });

  it('rejects invalid references with InvalidArgument', () => {
    for (const bad of [
      '',
      'UPPER',
      'docker.io/Upper/x',
      'a//b',
      'x:',
      'x@sha256:zz',
      `x@sha256:${'a'.repeat(63)}`,
      'a'.repeat(64),
      ':tag',
      'x:-bad',
      `${'a/'.repeat(200)}b`,
    ]) {
      const e = caught(() => normalizeReference(bad));
      expect(isInvalidArgument(e), bad).toBe(true);
    }
    expect(caught(() => normalizeReference('UPPER')).message).toBe(
      'image reference "UPPER": invalid reference format: repository name must be lowercase',
    );
  });

  it('prints the familiar short name', () => {
    expect(familiarName(normalizeReference('busybox'))).toBe('busybox:latest');
    expect(familiarName(normalizeReference('docker.io/library/a/b:1'))).toBe('library/a/b:1');
    expect(familiarName(normalizeReference('localhost:5000/x:v1'))).toBe('localhost:5000/x:v1');
  });
});

describe('platforms', () => {
  it('normalizes names', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({
      os: 'linux',
      architecture: 'amd64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64', variant: 'v8' })).toEqual({
      os: 'linux',
      architecture: 'arm64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    });
  });

  it('knows the host platform', () => {
    const p = defaultPlatform();
    expect(p.os).toBe('linux');
    expect(p.architecture).toBe({ x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64'] ?? p.architecture);
  });

  it('parses --platform values', () => {
    expect(formatPlatform(parsePlatform('linux/arm/v6'))).toBe('linux/arm/v6');
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(parsePlatform('linux').architecture).toBe(defaultPlatform().architecture);
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(isInvalidArgument(caught(() => parsePlatform('a/b/c/d')))).toBe(true);
    expect(isInvalidArgument(caught(() => parsePlatform('nope/amd64')))).toBe(true);
  });

  it('matches compatible platforms, best first', () => {
    const amd64 = { os: 'linux', architecture: 'amd64' };
    expect(platformMatches(amd64, { os: 'linux', architecture: 'x86_64' })).toBe(true);
    expect(platformMatches(amd64, { os: 'linux', architecture: 'arm64' })).toBe(false);
    expect(platformMatches(amd64, { os: 'windows', architecture: 'amd64' })).toBe(false);
    expect(platformRank(amd64, { os: 'linux', architecture: '386' })).toBe(1);
    const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
    expect(platformMatches(armv7, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true);
    expect(platformMatches(armv7, { os: 'linux', architecture: 'arm', variant: 'v8' })).toBe(false);
    expect(compatiblePlatforms({ os: 'linux', architecture: 'arm64' }).map(formatPlatform)).toEqual([
      'linux/arm64',
      'linux/arm/v8',
      'linux/arm/v7',
      'linux/arm/v6',
      'linux/arm/v5',
    ]);
  });
});

describe('chain ids', () => {
  it('follows the OCI definition', () => {
    const [a, b, c] = [sha('a'), sha('b'), sha('c')];
    const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`;
    const abc = `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`;
    expect(chainIds([a, b, c])).toEqual([a, ab, abc]);
    expect(chainId([a])).toBe(a);
    expect(chainId([])).toBeUndefined();
    expect(isInvalidArgument(caught(() => chainId(['sha256:nothex'])))).toBe(true);
  });
});
