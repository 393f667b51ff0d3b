import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { createClient as createConnectClient } from '@connectrpc/connect';
import { compressionGzip, createGrpcTransport } from '@connectrpc/connect-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, createUnixTransport, socketPath } from '../src/unix-transport.js';
import { ContainersService } from '../src/containers.js';
import {
  Canceled,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  NotImplemented,
  ResourceExhausted,
  Unavailable,
} from '../src/errors.js';
import { TaskOOMSchema } from '../src/event-types.js';
import { EventsService } from '../src/events.js';
import { LeasesService } from '../src/leases.js';
import { namespaceFromContext } from '../src/namespace-headers.js';
import { NamespacesService } from '../src/namespaces.js';
import type { Server } from '../src/server.js';
import { createServer, service } from '../src/server.js';
import { unpackAny } from '../src/type-registry.js';
import { packAny } from '../src/typeurl.js';
import { VersionService } from '../src/version.js';

let dir: string;
let server: Server | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-proto-'));
});
afterEach(async () => {
  await server?.close({ graceMs: 100 });
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function services() {
  return [
    service(VersionService, { version: () => ({ version: 'test-1.2.3', revision: 'r' }) }),
    service(NamespacesService, {
      get: (req, ctx) => {
        const ns = namespaceFromContext(ctx);
        if (req.name === 'missing') throw new NotFound(`namespace "missing" (asked from ${ns})`);
        return { namespace: { name: req.name, labels: { from: ns } } };
      },
    }),
    service(EventsService, {
      async *subscribe(req) {
        for (const f of req.filters) {
          yield {
            topic: `/t/${f}`,
            namespace: 'default',
            event: packAny(TaskOOMSchema, create(TaskOOMSchema, { containerId: f })),
          };
        }
      },
      publish: () => ({}),
    }),
  ];
}

// One raw HTTP/2 request, to look at what goes over the wire.
async function raw(path: string, url: string, headers: Record<string, string | string[]>, body: Buffer) {
  const session = http2Connect('http://localhost', { createConnection: () => netConnect(path) });
  try {
    return await new Promise<{
      headers: Record<string, unknown>;
      trailers: Record<string, unknown>;
      body: string;
    }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': url, ...headers });
      let h: Record<string, unknown> = {};
      let t: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      req.on('response', (x) => {
        h = x;
      });
      req.on('trailers', (x) => {
        t = x;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ headers: h, trailers: t, body: Buffer.concat(chunks).toString() }));
      req.on('error', reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

describe('dialing', () => {
  it('a missing socket is Unavailable with a hint', async () => {
    const c = createClient(VersionService, {
      address: join(tmpdir(), 'api-proto-missing.sock'),
      timeoutMs: 2000,
    });
    const err = await c.version({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Unavailable);
    expect((err as Error).message).toMatch(
      /^connect ENOENT .*api-proto-missing\.sock: is the server running at this address\?$/,
    );
  });
});

describe('socket addresses', () => {
  it('accepts unix:// URLs and plain paths', () => {
    expect(socketPath('unix:///run/ctrd/ctrd.sock')).toBe('/run/ctrd/ctrd.sock');
    expect(socketPath('/run/x.sock')).toBe('/run/x.sock');
    expect(() => socketPath('tcp://1.2.3.4:5')).toThrow(InvalidArgument);
    expect(() => socketPath('')).toThrow(InvalidArgument);
    expect(() => socketPath(`/${'x'.repeat(104)}`)).toThrow(/105 bytes, over the limit of 104/);
    expect(socketPath(`/${'x'.repeat(103)}`)).toHaveLength(104);
  });
});

describe('createServer + createClient over a unix socket', () => {
  it('serves gRPC calls with namespace headers, error classes and streams', async () => {
    server = await createServer({
      socketPath: `unix://${join(dir, 's.sock')}`,
      services: services(),
      mode: 0o660,
    });
    expect(server.address).toBe(`unix://${join(dir, 's.sock')}`);
    expect((await stat(server.socketPath)).mode & 0o777).toBe(0o660);

    const transport = createUnixTransport({ address: server.address, namespace: 'ns1', timeoutMs: 5000 });
    const version = createClient(VersionService, { transport });
    const namespaces = createClient(NamespacesService, { transport });
    expect(await version.version({})).toMatchObject({ version: 'test-1.2.3', revision: 'r' });
    expect((await namespaces.get({ name: 'x' })).namespace?.labels).toEqual({ from: 'ns1' });

    const err = await namespaces.get({ name: 'missing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFound);
    expect((err as Error).message).toBe('namespace "missing" (asked from ns1): not found');

    const noNs = createClient(NamespacesService, { address: server.address });
    await expect(noNs.get({ name: 'x' })).rejects.toBeInstanceOf(FailedPrecondition);

    const events = createClient(EventsService, { address: server.address, namespace: 'default' });
    const got: string[] = [];
    for await (const env of events.subscribe({ filters: ['a', 'b'] })) {
      got.push(`${env.topic} ${(unpackAny(env.event) as unknown as { containerId: string }).containerId}`);
    }
    expect(got).toEqual(['/t/a a', '/t/b b']);

    // a service the server does not have at all
    const containers = createClient(ContainersService, { address: server.address, namespace: 'default' });
    await expect(containers.get({ id: 'x' })).rejects.toBeInstanceOf(NotImplemented);
    transport.close();
  });

  it('one namespace per request: the header twice or a list is InvalidArgument, on gRPC and Connect', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    const grpc = (ns: string | string[], lease?: string[]) =>
      raw(
        server!.socketPath,
        '/containerd.services.namespaces.v1.Namespaces/Get',
        {
          'content-type': 'application/grpc',
          te: 'trailers',
          'containerd-namespace': ns,
          ...(lease ? { 'containerd-lease': lease } : {}),
        },
        Buffer.from([0, 0, 0, 0, 0]),
      );
    for (const ns of [['a', 'b'], ['a', 'a'], 'a,b', 'a, b']) {
      const res = await grpc(ns);
      expect(res.trailers['grpc-status'] ?? res.headers['grpc-status'], JSON.stringify(ns)).toBe('3');
      expect(decodeURIComponent(String(res.trailers['grpc-message'] ?? res.headers['grpc-message']))).toMatch(
        /^namespace: exactly one containerd-namespace header value must be sent, got "a, ?[ab]"/,
      );
    }
    expect((await grpc('a')).trailers['grpc-status']).toBe('0');
    const json = await raw(
      server.socketPath,
      '/containerd.services.namespaces.v1.Namespaces/Get',
      { 'content-type': 'application/json', 'containerd-namespace': ['a', 'b'] },
      Buffer.from('{"name":"x"}'),
    );
    expect(json.headers[':status']).toBe(400);
    expect(JSON.parse(json.body)).toMatchObject({ code: 'invalid_argument' });
    // The same through ctrd's own client, and a per-call header that repeats the transport's.
    const transport = createUnixTransport({ address: server.address, namespace: 'ns1' });
    const namespaces = createClient(NamespacesService, { transport });
    await expect(
      namespaces.get(
        { name: 'x' },
        {
          headers: [
            ['containerd-namespace', 'a'],
            ['containerd-namespace', 'b'],
          ],
        },
      ),
    ).rejects.toThrow(InvalidArgument);
    expect((await namespaces.get({ name: 'x' })).namespace?.labels).toEqual({ from: 'ns1' });
    transport.close();
  });

  it('answers unknown gRPC methods with grpc-status 12 in trailers over HTTP 200', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    const res = await raw(
      server.socketPath,
      '/containerd.services.containers.v1.Containers/ListStream',
      { 'content-type': 'application/grpc', te: 'trailers', 'containerd-namespace': 'default' },
      Buffer.from([0, 0, 0, 0, 0]),
    );
    expect(res.headers[':status']).toBe(200);
    expect(res.headers['content-type']).toBe('application/grpc');
    expect(res.trailers['grpc-status']).toBe('12');
    // an existing service, unknown method
    const res2 = await raw(
      server.socketPath,
      '/containerd.services.version.v1.Version/Nope',
      { 'content-type': 'application/grpc+proto', te: 'trailers' },
      Buffer.from([0, 0, 0, 0, 0]),
    );
    expect(res2.trailers['grpc-status']).toBe('12');
  });

  it('answers the Connect protocol with JSON (curl --http2-prior-knowledge)', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    const ok = await raw(
      server.socketPath,
      '/containerd.services.version.v1.Version/Version',
      { 'content-type': 'application/json' },
      Buffer.from('{}'),
    );
    expect(ok.headers[':status']).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ version: 'test-1.2.3', revision: 'r' });
    const nf = await raw(
      server.socketPath,
      '/containerd.services.namespaces.v1.Namespaces/Get',
      { 'content-type': 'application/json', 'containerd-namespace': 'default' },
      Buffer.from('{"name":"missing"}'),
    );
    expect(nf.headers[':status']).toBe(404);
    expect(JSON.parse(nf.body)).toMatchObject({ code: 'not_found' });
  });

  it('rejects requests over 16 MiB with ResourceExhausted', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    const path = server.socketPath;
    const transport = createGrpcTransport({
      baseUrl: 'http://localhost',
      nodeOptions: { createConnection: () => netConnect(path), maxSessionMemory: 64 },
      writeMaxBytes: 64 * 1024 * 1024,
    });
    const events = createConnectClient(EventsService, transport);
    const big = new Uint8Array(17 * 1024 * 1024);
    const err = await events
      .publish(
        { topic: '/x', event: { typeUrl: 'x', value: big } },
        { headers: { 'containerd-namespace': 'default' } },
      )
      .catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(new ResourceExhausted('x').code);
    // just under the limit goes through with the stock client settings
    const ok = createClient(EventsService, { address: server.address, namespace: 'default' });
    await expect(
      ok.publish({ topic: '/x', event: { typeUrl: 'x', value: new Uint8Array(15 * 1024 * 1024) } }),
    ).resolves.toBeDefined();
    expect(String(err)).toMatch(/message size .* is larger than configured readMaxBytes/);
  });

  it('rejects a declared 1 GiB message from its 5-byte header alone', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    const header = Buffer.from([0, 0x40, 0, 0, 0]); // uncompressed, length 2^30
    const res = await raw(
      server.socketPath,
      '/containerd.services.events.v1.Events/Publish',
      { 'content-type': 'application/grpc', te: 'trailers', 'containerd-namespace': 'default' },
      Buffer.concat([header, Buffer.alloc(16)]),
    );
    expect(res.headers[':status']).toBe(200);
    expect(res.trailers['grpc-status'] ?? res.headers['grpc-status']).toBe('8');
  });

  it('close() waits for in-flight calls, then refuses new ones', async () => {
    const order: string[] = [];
    let enter!: () => void;
    const entered = new Promise<void>((resolve) => {
      enter = resolve;
    });
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        ...services(),
        service(LeasesService, {
          create: async () => {
            enter();
            await sleep(300);
            order.push('handler answered');
            return { lease: { id: 'slow' } };
          },
        }),
      ],
    });
    const address = server.address;
    const leases = createClient(LeasesService, { address, namespace: 'default' });
    const slow = leases.create({ id: 'slow' });
    await entered;
    await server.close();
    order.push('close resolved');
    expect(order).toEqual(['handler answered', 'close resolved']);
    expect((await slow).lease?.id).toBe('slow');
    server = undefined;
    const again = createClient(VersionService, { address, timeoutMs: 1000 });
    await expect(again.version({})).rejects.toThrow();
  });

  it('close() cancels streams that outlive graceMs', async () => {
    let handlerSawAbort = false;
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(EventsService, {
          async *subscribe(_req, ctx) {
            yield { topic: '/first' };
            await new Promise<void>((resolve) =>
              ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
            );
            handlerSawAbort = true;
          },
        }),
      ],
    });
    const events = createClient(EventsService, { address: server.address, namespace: 'default' });
    const stream = events.subscribe({})[Symbol.asyncIterator]();
    expect((await stream.next()).value?.topic).toBe('/first');
    const t0 = Date.now();
    await server.close({ graceMs: 200 });
    server = undefined;
    const elapsed = Date.now() - t0;
    // It waited its 200 ms grace, then cancelled the stream rather than waiting for it (or for the
    // default 10 s grace).
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(8000);
    expect(handlerSawAbort).toBe(true);
    await stream.next().catch(() => undefined);
  });

  it('close({ now }) cancels in-flight calls at once: callers get Unavailable, handlers see Canceled', async () => {
    const reasons: unknown[] = [];
    const aborted = (signal: AbortSignal): Promise<void> =>
      new Promise((resolve) =>
        signal.addEventListener(
          'abort',
          () => {
            reasons.push(signal.reason);
            resolve();
          },
          { once: true },
        ),
      );
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(NamespacesService, {
          // A long wait (as Tasks.Wait) that fails with its signal's reason...
          update: async (_req, ctx) => {
            await aborted(ctx.signal);
            throw ctx.signal.reason;
          },
          // ...and one that fails with an error of its own, which it keeps.
          get: async (_req, ctx) => {
            await aborted(ctx.signal);
            throw new NotFound('namespace "gone": not found');
          },
        }),
        service(EventsService, {
          // As the exchange's Subscribe: ends cleanly when its signal aborts.
          async *subscribe(_req, ctx) {
            yield { topic: '/first' };
            await aborted(ctx.signal);
          },
        }),
      ],
    });
    const address = server.address;
    const namespaces = createClient(NamespacesService, { address, namespace: 'default' });
    const events = createClient(EventsService, { address, namespace: 'default' });
    // A compressed request is served by Connect's handler, not the plain gRPC path.
    const path = socketPath(address);
    const gzipped = createConnectClient(
      NamespacesService,
      createGrpcTransport({
        baseUrl: 'http://localhost',
        nodeOptions: { createConnection: () => netConnect(path) },
        sendCompression: compressionGzip,
        compressMinBytes: 0,
      }),
    );
    const outcome = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => e,
      );
    const wait = outcome(namespaces.update({ namespace: { name: 'a' } }));
    const own = outcome(namespaces.get({ name: 'gone' }));
    const viaConnect = outcome(gzipped.update({ namespace: { name: 'b' } }));
    const stream = events.subscribe({})[Symbol.asyncIterator]();
    expect((await stream.next()).value?.topic).toBe('/first');
    await sleep(50);

    const t0 = Date.now();
    await server.close({ now: true, graceMs: 5000 });
    server = undefined;
    expect(Date.now() - t0).toBeLessThan(1000);
    const w = await wait;
    expect(w).toBeInstanceOf(Unavailable);
    expect((w as Error).message).toMatch(/server is shutting down/);
    expect(await own).toBeInstanceOf(NotFound);
    expect((await viaConnect) as { code?: number }).toMatchObject({ code: new Unavailable('x').code });
    expect(await stream.next().catch((e: unknown) => e)).toBeInstanceOf(Unavailable);
    expect(reasons).toHaveLength(4);
    for (const r of reasons) expect(r).toBeInstanceOf(Canceled);
  });

  it('refuses to steal a live socket or clobber a non-socket file', async () => {
    server = await createServer({ socketPath: join(dir, 's.sock'), services: services() });
    await expect(createServer({ socketPath: join(dir, 's.sock'), services: [] })).rejects.toThrow(
      /another server is listening/,
    );
    await writeFile(join(dir, 'file'), 'x');
    await expect(createServer({ socketPath: join(dir, 'file'), services: [] })).rejects.toBeInstanceOf(
      FailedPrecondition,
    );
  });
});
