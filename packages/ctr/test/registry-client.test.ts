import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MediaType, normalizeReference } from '@ctrd/api-proto/oci';
import { afterEach, describe, expect, it } from 'vitest';
import { parseUserFlag, parseWwwAuthenticate } from '../src/registry/auth.js';
import { RegistryClient } from '../src/registry/client.js';
import {
  type FakeRegistry,
  recordingServer,
  registryClient,
  sha256,
  startRegistry,
} from './fake-registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const registry = startRegistry;
const client = registryClient;

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** An image: one layer, a config and a manifest, tagged `repo:tag`. */
function seedImage(r: FakeRegistry, repo = 'test/busybox', tag = '1') {
  const layer = r.addBlob('layer bytes '.repeat(100));
  const config = r.addBlob(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, ...config },
    layers: [{ mediaType: MediaType.ociLayerGzip, ...layer }],
  };
  const digest = r.addManifest(repo, tag, MediaType.ociManifest, manifest);
  return { layer, config, manifest, digest, ref: normalizeReference(`${r.host}/${repo}:${tag}`) };
}

describe('WWW-Authenticate and --user', () => {
  it('parses bearer and basic challenges with quoted, escaped and bare values', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        },
      },
    ]);
    expect(parseWwwAuthenticate('Basic realm="a \\"q\\" b", charset=UTF-8')).toEqual([
      { scheme: 'basic', params: { realm: 'a "q" b', charset: 'UTF-8' } },
    ]);
    expect(parseWwwAuthenticate('Basic realm="x", Bearer realm="y"').map((c) => c.scheme)).toEqual([
      'basic',
      'bearer',
    ]);
  });

  it('takes the password from user:password or CTRD_REGISTRY_PASSWORD, else says how to give one', () => {
    expect(parseUserFlag('alice:pa:ss', {})).toEqual({ username: 'alice', password: 'pa:ss' });
    expect(parseUserFlag('alice', { CTRD_REGISTRY_PASSWORD: 'env' })).toEqual({
      username: 'alice',
      password: 'env',
    });
    expect(() => parseUserFlag('alice', {})).toThrow(/--user alice: no password: .*CTRD_REGISTRY_PASSWORD/);
  });
});

describe('RegistryClient pull side', () => {
  it('resolves a tag by HEAD and fetches the manifest and a blob, anonymously', async () => {
    const r = await registry();
    const img = seedImage(r);
    const c = client(r);
    const desc = await c.resolve(img.ref);
    expect(desc).toEqual({ mediaType: MediaType.ociManifest, digest: img.digest, size: expect.any(Number) });
    const bytes = await c.fetchManifest(img.ref.path, desc);
    expect(JSON.parse(Buffer.from(bytes).toString())).toEqual(img.manifest);
    const blob = await c.fetchBlob(img.ref.path, { mediaType: MediaType.ociLayerGzip, ...img.layer });
    expect((await collect(blob.body)).toString()).toBe('layer bytes '.repeat(100));
    const head = r.requests.find((q) => q.method === 'HEAD');
    expect(head?.headers.accept).toContain(MediaType.ociIndex);
    expect(head?.headers.accept).toContain(MediaType.dockerManifest);
  });

  it('falls back to GET and hashes the body when HEAD does not name the digest', async () => {
    const r = await registry();
    const img = seedImage(r);
    r.intercept = (req, res) => {
      if (req.method !== 'HEAD') return false;
      res.statusCode = 405;
      res.end();
      return true;
    };
    const desc = await client(r).resolve(img.ref);
    expect(desc.digest).toBe(img.digest);
    expect(desc.mediaType).toBe(MediaType.ociManifest);
  });

  it('says not found for an unknown tag', async () => {
    const r = await registry();
    await expect(client(r).resolve(normalizeReference(`${r.host}/nope/x:1`))).rejects.toMatchObject({
      name: 'NotFound',
      message: expect.stringMatching(/manifest .*nope\/x:1: not found/),
    });
  });

  it('bearer: fetches a token from the realm with service, scope and the basic credentials, then retries', async () => {
    const r = await registry({ auth: 'bearer', users: { alice: 's3cret' } });
    const img = seedImage(r);
    const c = client(r, { username: 'alice', password: 's3cret' });
    const desc = await c.resolve(img.ref);
    await c.fetchManifest(img.ref.path, desc);
    expect(r.tokenRequests).toHaveLength(1);
    const tokenUrl = new URL(r.tokenRequests[0]?.url ?? '', r.origin);
    expect(tokenUrl.searchParams.get('service')).toBe('fake-registry');
    expect(tokenUrl.searchParams.getAll('scope')).toEqual(['repository:test/busybox:pull']);
    expect(r.tokenRequests[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    );
    // The token is cached: the second call went straight through with it.
    const authed = r.requests.filter(
      (q) => q.headers.authorization === 'Bearer tok:repository:test/busybox:pull',
    );
    expect(authed.length).toBe(2);
  });

  it('bearer: anonymous token when no credentials are given', async () => {
    const r = await registry({ auth: 'bearer', anonymousPull: true });
    const img = seedImage(r);
    await client(r).resolve(img.ref);
    expect(r.tokenRequests[0]?.headers.authorization).toBeUndefined();
  });

  it('bearer: a token server refusing the credentials is an authorization error', async () => {
    const r = await registry({ auth: 'bearer', users: { alice: 's3cret' } });
    const img = seedImage(r);
    await expect(client(r, { username: 'alice', password: 'wrong' }).resolve(img.ref)).rejects.toMatchObject({
      name: 'FailedPrecondition',
      message: expect.stringMatching(/authorization failed: token server 127\.0\.0\.1:\d+ answered 401/),
    });
  });

  it('basic: sends the credentials after the challenge; without them asks for --user; wrong ones are unauthorized', async () => {
    const r = await registry({ auth: 'basic', users: { bob: 'pw' } });
    const img = seedImage(r);
    expect((await client(r, { username: 'bob', password: 'pw' }).resolve(img.ref)).digest).toBe(img.digest);
    expect(r.requests[0]?.headers.authorization).toBeUndefined();
    expect(r.requests[1]?.headers.authorization).toBe(`Basic ${Buffer.from('bob:pw').toString('base64')}`);
    await expect(client(r).resolve(img.ref)).rejects.toMatchObject({
      name: 'FailedPrecondition',
      message: expect.stringContaining('basic authentication required: give --user'),
    });
    await expect(client(r, { username: 'bob', password: 'no' }).resolve(img.ref)).rejects.toMatchObject({
      name: 'FailedPrecondition',
      message: expect.stringMatching(/unauthorized/),
    });
  });

  it('a blob redirect to another host:port is followed without the Authorization header', async () => {
    const r = await registry({ auth: 'basic', users: { bob: 'pw' } });
    const img = seedImage(r);
    const data = r.blobs.get(img.layer.digest) as Buffer;
    const cdn = await recordingServer((_req, res) => {
      res.setHeader('content-length', String(data.length));
      res.end(data);
    });
    cleanups.push(() => cdn.close());
    r.intercept = (req, res) => {
      if (!req.url?.includes('/blobs/') || !req.headers.authorization) return false;
      res.statusCode = 307;
      res.setHeader('location', `${cdn.origin}/storage/blob?sig=1`);
      res.end();
      return true;
    };
    const c = client(r, { username: 'bob', password: 'pw' });
    const blob = await c.fetchBlob(img.ref.path, { mediaType: MediaType.ociLayerGzip, ...img.layer });
    expect(await collect(blob.body)).toEqual(data);
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]?.headers.authorization).toBeUndefined();
    // The registry itself did get them.
    expect(r.requests.some((q) => q.headers.authorization?.toString().startsWith('Basic '))).toBe(true);
  });

  it('a foreign-layer URL answering 401 gets no credentials; the layer then comes from the registry', async () => {
    const r = await registry({ auth: 'basic', users: { bob: 'pw' } });
    const img = seedImage(r);
    const foreign = await recordingServer((_req, res) => {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic realm="steal"');
      res.end();
    });
    cleanups.push(() => foreign.close());
    const c = client(r, { username: 'bob', password: 'pw' });
    const desc = {
      mediaType: MediaType.dockerForeignLayer,
      ...img.layer,
      urls: [`${foreign.origin}/layer.tar.gz`],
    };
    const blob = await c.fetchBlob(img.ref.path, desc);
    expect((await collect(blob.body)).length).toBe(img.layer.size);
    expect(foreign.requests).toHaveLength(1);
    expect(foreign.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('a manifest whose bytes do not match its digest is refused', async () => {
    const r = await registry();
    const img = seedImage(r);
    const stored = r.manifests.get(`test/busybox@${img.digest}`);
    if (!stored) throw new Error('seed');
    stored.bytes = Buffer.concat([stored.bytes, Buffer.from(' ')]);
    await expect(
      client(r).fetchManifest('test/busybox', {
        mediaType: MediaType.ociManifest,
        digest: img.digest,
        size: stored.bytes.length,
      }),
    ).rejects.toMatchObject({
      name: 'FailedPrecondition',
      message: expect.stringMatching(/unexpected digest/),
    });
  });

  it('refuses a manifest over 4 MiB by its declared size and by the bytes that arrive', async () => {
    const r = await registry();
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const digest = r.addManifest('big/one', 'huge', MediaType.ociManifest, big);
    const c = client(r);
    await expect(c.resolve(normalizeReference(`${r.host}/big/one:huge`))).rejects.toMatchObject({
      name: 'InvalidArgument',
      message: expect.stringMatching(/over the limit of 4194304 bytes/),
    });
    // A HEAD that lies small, then a chunked GET without a length: cut off at the cap.
    r.intercept = (req, res) => {
      if (req.method === 'HEAD') return false;
      res.setHeader('content-type', MediaType.ociManifest);
      res.write(big.subarray(0, 1 << 20));
      res.end(big.subarray(1 << 20));
      return true;
    };
    await expect(
      c.fetchManifest('big/one', { mediaType: MediaType.ociManifest, digest, size: 100 }),
    ).rejects.toMatchObject({
      name: 'ResourceExhausted',
    });
  });

  it('resumes with Range, and skips what is stored when the server ignores Range', async () => {
    const r = await registry();
    const img = seedImage(r);
    const full = r.blobs.get(img.layer.digest) as Buffer;
    const desc = { mediaType: MediaType.ociLayerGzip, ...img.layer };
    const part = await client(r).fetchBlob(img.ref.path, desc, { offset: 500 });
    expect(await collect(part.body)).toEqual(full.subarray(500));
    expect(r.requests.at(-1)?.headers.range).toBe('bytes=500-');

    const r2 = await registry({ ignoreRange: true });
    r2.addBlob(full);
    const again = await client(r2).fetchBlob(img.ref.path, desc, { offset: 700 });
    expect(await collect(again.body)).toEqual(full.subarray(700));
  });

  it('fails as soon as a blob runs past its descriptor size, and when it ends short', async () => {
    const r = await registry();
    const img = seedImage(r);
    const small = { mediaType: MediaType.ociLayerGzip, digest: img.layer.digest, size: 10 };
    await expect(client(r).fetchBlob(img.ref.path, small)).rejects.toMatchObject({
      name: 'FailedPrecondition',
    });
    r.intercept = (_req, res) => {
      res.setHeader('transfer-encoding', 'chunked');
      res.end(Buffer.alloc(img.layer.size + 100));
      return true;
    };
    const over = await client(r).fetchBlob(img.ref.path, { mediaType: MediaType.ociLayerGzip, ...img.layer });
    await expect(collect(over.body)).rejects.toThrow(/more than the \d+ bytes the descriptor says/);
    r.intercept = (_req, res) => {
      res.write(Buffer.alloc(5));
      res.end();
      return true;
    };
    const short = await client(r).fetchBlob(img.ref.path, {
      mediaType: MediaType.ociLayerGzip,
      ...img.layer,
    });
    await expect(collect(short.body)).rejects.toThrow(/sent 5 of \d+ bytes/);
  });

  it('retries 5xx answers with backoff and gives up with Unavailable', async () => {
    const r = await registry();
    const img = seedImage(r);
    let failures = 2;
    r.intercept = (_req, res) => {
      if (failures-- <= 0) return false;
      res.statusCode = 503;
      res.end();
      return true;
    };
    expect((await client(r).resolve(img.ref)).digest).toBe(img.digest);
    failures = 100;
    await expect(client(r).resolve(img.ref)).rejects.toMatchObject({
      name: 'Unavailable',
      message: /status 503/,
    });
  });

  it('retries a connection reset', async () => {
    const r = await registry();
    const img = seedImage(r);
    let resets = 1;
    r.intercept = (req) => {
      if (resets-- <= 0) return false;
      req.socket.destroy();
      return true;
    };
    expect((await client(r).resolve(img.ref)).digest).toBe(img.digest);
  });

  it('https: an untrusted certificate names --skip-verify; a plain-http registry names --plain-http', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctr-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    try {
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ]);
    } catch {
      return; // no openssl: nothing to serve TLS with
    }
    const server = createHttpsServer(
      { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
      (_req, res) => {
        res.writeHead(404);
        res.end();
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const https = new RegistryClient({ domain: host, retries: 0 });
    await expect(https.resolve(normalizeReference(`${host}/a/b:1`))).rejects.toMatchObject({
      name: 'Unavailable',
      message: expect.stringMatching(
        /certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\).*--skip-verify/,
      ),
    });
    // The http fake registry spoken to over https.
    const r = await registry();
    const img = seedImage(r);
    await expect(new RegistryClient({ domain: r.host, retries: 0 }).resolve(img.ref)).rejects.toMatchObject({
      name: 'Unavailable',
      message: expect.stringMatching(/https failed .*use --plain-http/),
    });
  });

  it('stops at once when the signal aborts', async () => {
    const r = await registry();
    const img = seedImage(r);
    r.intercept = () => true; // never answers
    const ac = new AbortController();
    const p = client(r).resolve(img.ref, ac.signal);
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ name: 'Canceled' });
  });
});

describe('RegistryClient push side', () => {
  it('uploads a missing blob (POST then PUT with digest), skips an existing one, mounts across repos', async () => {
    const r = await registry({ auth: 'bearer', users: { alice: 'pw' } });
    const c = client(r, { username: 'alice', password: 'pw' }).forPush('team/app');
    const data = Buffer.from('a new layer');
    const desc = { mediaType: MediaType.ociLayer, digest: sha256(data), size: data.length };
    expect(await c.pushBlob('team/app', desc, () => data)).toBe('pushed');
    expect(r.blobs.get(desc.digest)).toEqual(data);
    const put = r.requests.find((q) => q.method === 'PUT');
    expect(new URL(put?.url ?? '', r.origin).searchParams.get('digest')).toBe(desc.digest);
    expect(
      r.tokenRequests.some((t) => t.url.includes(encodeURIComponent('repository:team/app:pull,push'))),
    ).toBe(true);
    expect(await c.pushBlob('team/app', desc, () => data)).toBe('exists');
    c.forPush('team/other');
    expect(await c.pushBlob('team/other', desc, () => data, { mountFrom: 'team/app' })).toBe('mounted');
  });

  it('streams a body from an async source and puts manifests by tag', async () => {
    const r = await registry();
    const c = client(r).forPush('x/y');
    const parts = [Buffer.from('abc'), Buffer.from('def')];
    const desc = { mediaType: MediaType.ociLayer, digest: sha256('abcdef'), size: 6 };
    await c.pushBlob('x/y', desc, async function* () {
      yield* parts;
    });
    expect(r.blobs.get(desc.digest)?.toString()).toBe('abcdef');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest }));
    const mdesc = { mediaType: MediaType.ociManifest, digest: sha256(manifest), size: manifest.length };
    await c.putManifest('x/y', 'v1', mdesc, manifest);
    expect(r.manifest('x/y', 'v1')?.digest).toBe(mdesc.digest);
    expect(r.manifest('x/y', 'v1')?.mediaType).toBe(MediaType.ociManifest);
  });

  it('a push without credentials to a registry that wants them is unauthorized', async () => {
    const r = await registry({ auth: 'bearer', anonymousPull: true });
    const c = client(r).forPush('x/y');
    const data = Buffer.from('z');
    await expect(
      c.pushBlob('x/y', { mediaType: MediaType.ociLayer, digest: sha256(data), size: 1 }, () => data),
    ).rejects.toMatchObject({ name: 'FailedPrecondition', message: /unauthorized/ });
  });
});
