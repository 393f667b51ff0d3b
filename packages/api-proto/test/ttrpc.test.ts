import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AlreadyExists,
  Canceled,
  DeadlineExceeded,
  FailedPrecondition,
  InvalidArgument,
  kindFromCode,
  NotFound,
  NotImplemented,
  ResourceExhausted,
  Unavailable,
  Unknown,
} from '../src/errors.js';
import { EventsService } from '../src/events.js';
import { leaseFromContext, namespaceFromContext, withNamespace } from '../src/namespace-headers.js';
import {
  GetNamespaceRequestSchema,
  GetNamespaceResponseSchema,
  NamespacesService,
} from '../src/namespaces.js';
import { createServer, type Server } from '../src/server.js';
import { TasksService } from '../src/tasks.js';
import {
  createTtrpcClient,
  createTtrpcServer,
  createTtrpcTransport,
  encodeHeader,
  FrameReader,
  MAX_MESSAGE_LENGTH,
  MessageType,
  RequestSchema,
  service,
  TTRPC_METADATA,
  type TtrpcServer,
} from '../src/ttrpc.js';
import { createClient } from '../src/unix-transport.js';
import { VersionService } from '../src/version.js';
import { RawPeer, recordingLogger, sleep } from './ttrpc-helpers.js';

let dir: string;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttrpc-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

const NS = 'containerd.services.namespaces.v1.Namespaces';

// One implementation, served on both transports in some tests: what a handler sees of the call.
function namespacesImpl() {
  return {
    get: (req: { name: string }, ctx: HandlerContext) => {
      if (req.name === 'missing') throw new NotFound(`namespace ${JSON.stringify(req.name)}`);
      return {
        namespace: {
          name: req.name,
          labels: {
            ns: namespaceFromContext(ctx),
            protocol: ctx.protocolName,
            lease: leaseFromContext(ctx) ?? '',
            deadline: String(ctx.timeoutMs() !== undefined),
          },
        },
      };
    },
  };
}

async function serve(
  services: Parameters<typeof createTtrpcServer>[0]['services'],
  more: Partial<Parameters<typeof createTtrpcServer>[0]> = {},
): Promise<TtrpcServer & { connections: () => number }> {
  let connections = 0;
  const server = await createTtrpcServer({
    socketPath: join(dir, 'ttrpc.sock'),
    services,
    // Counts connections: every accepted one passes the check.
    peerCheck: () => {
      connections++;
      return true;
    },
    ...more,
  });
  cleanups.push(() => server.close({ graceMs: 50 }));
  return Object.assign(server, { connections: () => connections });
}

function client<T extends Parameters<typeof createTtrpcClient>[0]>(
  desc: T,
  server: TtrpcServer,
  opts: { namespace?: string; timeoutMs?: number; interceptors?: Interceptor[] } = {},
) {
  const transport = createTtrpcTransport({ address: server.address, namespace: 'default', ...opts });
  cleanups.push(() => transport.close());
  return { client: createTtrpcClient(desc, { transport }), transport };
}

describe('ttrpc server and client', () => {
  it('serve one implementation exactly as gRPC does, the namespace from containerd-namespace-ttrpc', async () => {
    const impl = namespacesImpl();
    const ttrpc = await serve([service(NamespacesService, impl)]);
    const grpc: Server = await createServer({
      socketPath: join(dir, 'grpc.sock'),
      services: [service(NamespacesService, impl)],
    });
    cleanups.push(() => grpc.close({ graceMs: 50 }));

    const overTtrpc = client(NamespacesService, ttrpc, { namespace: 'one' }).client;
    const overGrpc = createClient(NamespacesService, { address: grpc.address, namespace: 'one' });
    const a = await overTtrpc.get({ name: 'x' });
    const b = await overGrpc.get({ name: 'x' });
    expect(a.namespace?.labels).toEqual({ ns: 'one', protocol: 'ttrpc', lease: '', deadline: 'false' });
    expect(b.namespace?.labels).toEqual({ ns: 'one', protocol: 'grpc', lease: '', deadline: 'false' });
    // Per-call options as on gRPC: withNamespace's header goes out under the ttrpc key.
    const c = await overTtrpc.get({ name: 'x' }, withNamespace('two', { lease: 'l1', timeoutMs: 5000 }));
    expect(c.namespace?.labels).toEqual({ ns: 'two', protocol: 'ttrpc', lease: 'l1', deadline: 'true' });
    // The same error, the same class and message on both.
    const e1 = await overTtrpc.get({ name: 'missing' }).catch((e: unknown) => e);
    const e2 = await overGrpc.get({ name: 'missing' }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(NotFound);
    expect(e2).toBeInstanceOf(NotFound);
    expect((e1 as Error).message).toBe('namespace "missing": not found');
    expect((e1 as Error).message).toBe((e2 as Error).message);
  });

  it('send service, method, timeout_nano and metadata as Go does, and read a Go-style empty answer', async () => {
    const path = join(dir, 'raw.sock');
    const seen: ReturnType<typeof fromBinary<typeof RequestSchema>>[] = [];
    const raw: NetServer = createNetServer((sock) => {
      const reader = new FrameReader();
      sock.on('data', (chunk: Buffer) => {
        for (const ev of reader.push(chunk)) {
          if (ev.kind !== 'frame') continue;
          seen.push(fromBinary(RequestSchema, ev.data));
          // Go answers success with no Status: GetNamespaceResponse{namespace{name: "n"}}.
          const payload = toBinary(
            GetNamespaceResponseSchema,
            create(GetNamespaceResponseSchema, { namespace: { name: 'n' } }),
          );
          const data = Buffer.concat([Buffer.from([0x12, payload.byteLength]), payload]);
          sock.write(Buffer.concat([encodeHeader({ ...ev.header, length: data.byteLength, type: 2 }), data]));
        }
      });
    });
    await new Promise<void>((r) => raw.listen(path, r));
    cleanups.push(() => new Promise((r) => raw.close(r)));
    const addHeader: Interceptor = (next) => (req) => {
      req.header.set('x-trace', 'abc');
      return next(req);
    };
    const transport = createTtrpcTransport({
      address: `unix://${path}`,
      namespace: 'ns1',
      interceptors: [addHeader],
    });
    cleanups.push(() => transport.close());
    const c = createTtrpcClient(NamespacesService, { transport });
    expect((await c.get({ name: 'q' }, { timeoutMs: 1500 })).namespace?.name).toBe('n');
    expect((await c.get({ name: 'q' }, withNamespace('other'))).namespace?.name).toBe('n');
    expect(seen.map((r) => [r.service, r.method])).toEqual([
      [NS, 'Get'],
      [NS, 'Get'],
    ]);
    expect(fromBinary(GetNamespaceRequestSchema, seen[0]!.payload).name).toBe('q');
    expect(seen[0]!.timeoutNano).toBe(1_500_000_000n);
    expect(seen[1]!.timeoutNano).toBe(0n);
    expect(seen[0]!.metadata.map((kv) => [kv.key, kv.value]).sort()).toEqual([
      ['containerd-namespace-ttrpc', 'ns1'],
      ['x-trace', 'abc'],
    ]);
    expect(seen[1]!.metadata.map((kv) => [kv.key, kv.value]).sort()).toEqual([
      ['containerd-namespace-ttrpc', 'other'],
      ['x-trace', 'abc'],
    ]);
  });

  it('map every status code to the classes of the gRPC side; raw metadata stays readable', async () => {
    const log = recordingLogger();
    const codes = [
      Code.Canceled,
      Code.Unknown,
      Code.InvalidArgument,
      Code.DeadlineExceeded,
      Code.NotFound,
      Code.AlreadyExists,
      Code.PermissionDenied,
      Code.ResourceExhausted,
      Code.FailedPrecondition,
      Code.Aborted,
      Code.OutOfRange,
      Code.Unimplemented,
      Code.Internal,
      Code.Unavailable,
      Code.DataLoss,
      Code.Unauthenticated,
    ];
    let raw: readonly { key: string; value: string }[] = [];
    const server = await serve(
      [
        service(NamespacesService, {
          get: (req, ctx) => {
            raw = ctx.values.get(TTRPC_METADATA);
            if (req.name === 'plain') throw new Error('disk on fire');
            if (req.name === 'class') throw new AlreadyExists('namespace "a"');
            if (req.name === 'nons') namespaceFromContext({ ...ctx, requestHeader: new Headers() });
            throw new ConnectError(`code ${req.name}`, Number(req.name) as Code);
          },
        }),
      ],
      { logger: log },
    );
    const { client: c } = client(NamespacesService, server);
    for (const code of codes) {
      const e = await c.get({ name: String(code) }).catch((err: unknown) => err);
      expect(e, `code ${code}`).toBeInstanceOf(Error);
      expect((e as { kind: string }).kind, `code ${code}`).toBe(kindFromCode(code));
    }
    expect(raw).toEqual([expect.objectContaining({ key: 'containerd-namespace-ttrpc', value: 'default' })]);
    await expect(c.get({ name: 'class' })).rejects.toThrow(
      new AlreadyExists('namespace "a": already exists'),
    );
    await expect(c.get({ name: 'nons' })).rejects.toThrow(FailedPrecondition);
    const plain = await c.get({ name: 'plain' }).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(Unknown);
    expect((plain as Error).message).toBe('disk on fire: unknown');
    // What is not one of our classes is a bug in the handler: logged, as on gRPC.
    const logged = log.lines.filter((l) => l.level === 'error' && l.msg === 'unexpected error in handler');
    expect(logged.map((l) => (l.obj as { err: Error }).err.message)).toContain('disk on fire');
  });

  it("answer unknown services and methods Unimplemented in Go's words, and streaming methods too", async () => {
    const server = await serve([
      service(NamespacesService, { get: () => ({ namespace: { name: 'n' } }) }),
      service(EventsService, {
        async *subscribe() {
          yield { topic: '/x' };
        },
      }),
    ]);
    const tasks = client(TasksService, server).client;
    const e = await tasks.get({ containerId: 'x' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NotImplemented);
    expect((e as Error).message).toBe('service containerd.services.tasks.v1.Tasks: not implemented');
    // A method the implementation leaves out answers as on gRPC (Connect's stub).
    await expect(client(NamespacesService, server).client.list({})).rejects.toThrow(NotImplemented);
    // The client refuses streams itself.
    const events = client(EventsService, server).client;
    await expect(
      (async () => {
        for await (const _ of events.subscribe({})) break;
      })(),
    ).rejects.toThrow(NotImplemented);

    const peer = await RawPeer.connect(server.socketPath);
    cleanups.push(() => peer.close());
    peer.request(1, { service: NS, method: 'Nope' });
    expect(await peer.response()).toMatchObject({
      streamId: 1,
      code: Code.Unimplemented,
      message: 'method Nope',
    });
    peer.request(3, { service: 'containerd.services.events.v1.Events', method: 'Subscribe' });
    expect(await peer.response()).toMatchObject({
      streamId: 3,
      code: Code.Unimplemented,
      message: 'method Subscribe: streaming is not supported over ttrpc here (unary calls only)',
    });
  });

  it('answer protocol errors on their stream id and keep the connection, as Go does', async () => {
    const server = await serve([service(VersionService, { version: () => ({ version: 'v' }) })]);
    const peer = await RawPeer.connect(server.socketPath);
    cleanups.push(() => peer.close());
    const V = 'containerd.services.version.v1.Version';
    peer.request(2, { service: V, method: 'Version' });
    expect(await peer.response()).toMatchObject({
      streamId: 2,
      code: Code.InvalidArgument,
      message: 'StreamID must be odd for client initiated streams',
    });
    peer.send(1, MessageType.Request, Uint8Array.of(0xff, 0xff));
    const bad = await peer.response();
    expect(bad).toMatchObject({ streamId: 1, code: Code.InvalidArgument });
    expect(bad.message).toMatch(/^unmarshal request error: /);
    peer.request(1, { service: V, method: 'Version' });
    expect(await peer.response()).toMatchObject({
      streamId: 1,
      code: Code.InvalidArgument,
      message: 'StreamID cannot be re-used and must increment',
    });
    peer.send(5, MessageType.Data, Uint8Array.of(1));
    expect(await peer.response()).toMatchObject({
      streamId: 5,
      code: Code.InvalidArgument,
      message: 'StreamID is no longer active',
    });
    // Unknown types are ignored for compatibility: no answer, and the next call is served.
    peer.send(7, 9, Uint8Array.of(1));
    peer.request(9, { service: V, method: 'Version', payload: Uint8Array.of(0xff) });
    const garbled = await peer.response();
    expect(garbled).toMatchObject({ streamId: 9, code: Code.Internal });
    expect(garbled.message).toMatch(/^ttrpc: error unmarshalling payload: /);
    peer.request(11, { service: V, method: 'Version' });
    expect(await peer.response()).toMatchObject({ streamId: 11, code: 0 });
  });

  it('answer a frame over 4 MiB ResourceExhausted, skip its bytes and keep the connection', async () => {
    const server = await serve([service(VersionService, { version: () => ({ version: 'v' }) })]);
    const peer = await RawPeer.connect(server.socketPath);
    cleanups.push(() => peer.close());
    const over = MAX_MESSAGE_LENGTH + 1;
    peer.socket.write(encodeHeader({ length: over, streamId: 1, type: MessageType.Request, flags: 0 }));
    expect(await peer.response()).toMatchObject({
      streamId: 1,
      code: Code.ResourceExhausted,
      message: 'message length 4194305 exceed maximum message size of 4194304',
    });
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    for (let left = over; left > 0; left -= chunk.byteLength)
      peer.socket.write(chunk.subarray(0, Math.min(left, chunk.byteLength)));
    peer.request(3, { service: 'containerd.services.version.v1.Version', method: 'Version' });
    expect(await peer.response(5000)).toMatchObject({ streamId: 3, code: 0 });
    expect(server.connections()).toBe(1);
  });

  it('refuse oversize messages both ways without losing the connection', async () => {
    const big = 'x'.repeat(MAX_MESSAGE_LENGTH);
    const server = await serve([
      service(NamespacesService, {
        get: (req) => ({ namespace: { name: req.name === 'big' ? big : req.name } }),
      }),
    ]);
    const { client: c } = client(NamespacesService, server);
    const sent = await c.get({ name: big }).catch((e: unknown) => e);
    expect(sent).toBeInstanceOf(ResourceExhausted);
    expect((sent as Error).message).toMatch(
      /^message length \d+ exceed maximum message size of 4194304: resource exhausted$/,
    );
    const answered = await c.get({ name: 'big' }).catch((e: unknown) => e);
    expect(answered).toBeInstanceOf(ResourceExhausted);
    expect((await c.get({ name: 'small' })).namespace?.name).toBe('small');
    expect(server.connections()).toBe(1);
  });

  it('multiplex many calls on one connection and answer each as it finishes', async () => {
    const order: number[] = [];
    const server = await serve([
      service(NamespacesService, {
        get: async (req) => {
          const n = Number(req.name);
          await sleep((40 - n) * 5);
          order.push(n);
          return { namespace: { name: req.name, labels: { twice: String(n * 2) } } };
        },
      }),
    ]);
    const { client: c } = client(NamespacesService, server);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, n) => c.get({ name: String(n) })));
    expect(answers.map((a) => a.namespace?.labels.twice)).toEqual(
      Array.from({ length: 40 }, (_, n) => String(n * 2)),
    );
    expect(order[0]).toBe(39);
    expect(server.connections()).toBe(1);

    const peer = await RawPeer.connect(server.socketPath);
    cleanups.push(() => peer.close());
    const payload = (name: string) =>
      toBinary(GetNamespaceRequestSchema, create(GetNamespaceRequestSchema, { name }));
    peer.request(1, { service: NS, method: 'Get', payload: payload('20') });
    peer.request(3, { service: NS, method: 'Get', payload: payload('30') });
    peer.request(5, { service: NS, method: 'Get', payload: payload('39') });
    const got = [await peer.response(), await peer.response(), await peer.response()];
    expect(got.map((r) => r.streamId)).toEqual([5, 3, 1]);
  });

  it('end a call at its deadline on both sides and tell the handler through ctx.signal', async () => {
    const reasons: unknown[] = [];
    const timeouts: (number | undefined)[] = [];
    let handled = 0;
    const server = await serve([
      service(NamespacesService, {
        get: async (req, ctx) => {
          handled++;
          timeouts.push(ctx.timeoutMs());
          if (req.name === 'deaf') {
            // Ignores its signal: the server answers at the deadline anyway.
            await sleep(300);
            return { namespace: { name: 'late' } };
          }
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
          reasons.push(ctx.signal.reason);
          return { namespace: { name: 'never' } };
        },
      }),
    ]);
    const { client: c } = client(NamespacesService, server);
    const t0 = Date.now();
    await expect(c.get({ name: 'x' }, { timeoutMs: 100 })).rejects.toThrow(DeadlineExceeded);
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleep(50);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(ConnectError);
    expect((reasons[0] as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(timeouts[0]).toBeGreaterThan(0);
    expect(timeouts[0]).toBeLessThanOrEqual(100);
    await expect(c.get({ name: 'x' }, { signal: AbortSignal.timeout(50) })).rejects.toThrow(DeadlineExceeded);

    const peer = await RawPeer.connect(server.socketPath);
    cleanups.push(() => peer.close());
    const payload = toBinary(GetNamespaceRequestSchema, create(GetNamespaceRequestSchema, { name: 'deaf' }));
    const t1 = Date.now();
    peer.request(1, { service: NS, method: 'Get', payload, timeoutNano: 50_000_000n });
    expect(await peer.response()).toMatchObject({
      streamId: 1,
      code: Code.DeadlineExceeded,
      message: 'context deadline exceeded',
    });
    expect(Date.now() - t1).toBeLessThan(250);
    // The handler's late answer is dropped: nothing more on stream 1.
    expect(await peer.next(400)).toBeUndefined();
    // A deadline already past: answered without running the handler.
    const before = handled;
    peer.request(3, { service: NS, method: 'Get', payload, timeoutNano: -1n });
    expect(await peer.response()).toMatchObject({ streamId: 3, code: Code.DeadlineExceeded });
    expect(handled).toBe(before);
  });

  it('cancel a call locally (ttrpc has no cancel frame) and keep the connection for the next', async () => {
    let finished = 0;
    const server = await serve([
      service(NamespacesService, {
        get: async (req) => {
          if (req.name === 'slow') await sleep(150);
          finished++;
          return { namespace: { name: req.name } };
        },
      }),
    ]);
    const { client: c } = client(NamespacesService, server);
    const ctrl = new AbortController();
    const call = c.get({ name: 'slow' }, { signal: ctrl.signal });
    setTimeout(() => ctrl.abort(), 20);
    await expect(call).rejects.toThrow(Canceled);
    await expect(c.get({ name: 'x' }, { signal: AbortSignal.abort() })).rejects.toThrow(Canceled);
    await sleep(200);
    expect(finished).toBe(1);
    expect((await c.get({ name: 'after' })).namespace?.name).toBe('after');
    expect(server.connections()).toBe(1);
  });

  it('fail every pending call Unavailable when the connection is lost, and every later call', async () => {
    const signals: AbortSignal[] = [];
    const server = await serve([
      service(NamespacesService, {
        get: (_req, ctx) => {
          signals.push(ctx.signal);
          return new Promise(() => {});
        },
      }),
    ]);
    const { client: c } = client(NamespacesService, server);
    const pending = [c.get({ name: 'a' }), c.get({ name: 'b' })].map((p) => p.catch((e: unknown) => e));
    await sleep(50);
    expect(signals).toHaveLength(2);
    await server.close({ graceMs: 0 });
    for (const e of await Promise.all(pending)) {
      expect(e).toBeInstanceOf(Unavailable);
      expect((e as Error).message).toMatch(/^ttrpc: closed: the connection to .* was lost: unavailable$/);
    }
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect((signals[0]!.reason as ConnectError).rawMessage).toBe('server is shutting down');
    // A Go client is done once its connection is: so is ours, even with a server back on the path.
    const again = await serve([service(NamespacesService, namespacesImpl())]);
    await expect(c.get({ name: 'a' })).rejects.toThrow(/^ttrpc: closed: the connection to .* was lost/);
    expect(again.connections()).toBe(0);
  });

  it('tell the handler when the client goes away', async () => {
    let signal: AbortSignal | undefined;
    const server = await serve([
      service(NamespacesService, {
        get: (_req, ctx) => {
          signal = ctx.signal;
          return new Promise(() => {});
        },
      }),
    ]);
    const { client: c, transport } = client(NamespacesService, server);
    const call = c.get({ name: 'a' }).catch((e: unknown) => e);
    await sleep(50);
    transport.close();
    const e = await call;
    expect(e).toBeInstanceOf(Unavailable);
    expect((e as Error).message).toBe('ttrpc: closed: the client was closed: unavailable');
    await expect(c.get({ name: 'b' })).rejects.toThrow(Unavailable);
    await sleep(50);
    expect(signal?.aborted).toBe(true);
    expect((signal!.reason as ConnectError).rawMessage).toBe('the client went away');
  });

  it('say Unavailable with a hint when nothing listens, and dial again on the next call', async () => {
    const path = join(dir, 'ttrpc.sock');
    const transport = createTtrpcTransport({ address: path, namespace: 'default' });
    cleanups.push(() => transport.close());
    const c = createTtrpcClient(NamespacesService, { transport });
    const e = await c.get({ name: 'a' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(Unavailable);
    expect((e as Error).message).toMatch(/ENOENT.*is the server running at this address\?/);
    await serve([service(NamespacesService, namespacesImpl())]);
    expect((await c.get({ name: 'a' })).namespace?.name).toBe('a');
  });

  it('close gracefully: calls under way are answered, new ones refused, the socket file removed', async () => {
    const server = await createTtrpcServer({
      socketPath: join(dir, 'ttrpc.sock'),
      peerCheck: 'none',
      services: [
        service(NamespacesService, {
          get: async (req) => {
            if (req.name === 'slow') await sleep(200);
            return { namespace: { name: req.name } };
          },
        }),
      ],
    });
    expect(server.address).toBe(`unix://${join(dir, 'ttrpc.sock')}`);
    const { client: c } = client(NamespacesService, server);
    const slow = c.get({ name: 'slow' });
    await sleep(30);
    const closed = server.close({ graceMs: 5000 });
    const late = await c.get({ name: 'late' }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(Unavailable);
    expect((late as Error).message).toBe('server is shutting down: unavailable');
    expect((await slow).namespace?.name).toBe('slow');
    await closed;
    expect(existsSync(join(dir, 'ttrpc.sock'))).toBe(false);
  });

  it('take routes connect-es style, and refuse a path where a live server listens', async () => {
    const server = await serve(undefined, {
      routes: (router) => router.service(VersionService, { version: () => ({ version: 'routed' }) }),
    });
    expect((await client(VersionService, server).client.version({})).version).toBe('routed');
    await expect(createTtrpcServer({ socketPath: server.socketPath, peerCheck: 'none' })).rejects.toThrow(
      FailedPrecondition,
    );
    await expect(createTtrpcServer({ socketPath: `${dir}/${'x'.repeat(120)}` })).rejects.toThrow(
      InvalidArgument,
    );
  });
});
