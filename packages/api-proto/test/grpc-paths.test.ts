import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer as createHttp2Server,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient as createConnectClient, type Interceptor } from '@connectrpc/connect';
import { compressionGzip, createGrpcTransport } from '@connectrpc/connect-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentService } from '../src/content.js';
import {
  Canceled,
  DeadlineExceeded,
  NotImplemented,
  ResourceExhausted,
  Unavailable,
  Unknown,
} from '../src/errors.js';
import { EventsService } from '../src/events.js';
import { NamespacesService } from '../src/namespaces.js';
import type { Server } from '../src/server.js';
import { createServer, service } from '../src/server.js';
import { createClient } from '../src/unix-transport.js';
import { VersionService } from '../src/version.js';

// The server's own gRPC path (grpc-server.ts) and the client's unary path (grpc-transport.ts), one
// behaviour at a time, over real unix sockets: streaming kinds, deadlines, cancellation,
// interceptors, back-pressure, compressed requests (which go to Connect), and the odd answers a
// client must read (trailers-only, HTTP errors, resets).

/** Resolves once `value()` has stayed the same for `ms`; throws if it still changes after `deadlineMs`. */
async function quiet(value: () => number, ms = 300, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (let last = value(); ; ) {
    await sleep(ms);
    const now = value();
    if (now === last) return;
    if (Date.now() > end) throw new Error(`still changing after ${deadlineMs} ms (now ${now})`);
    last = now;
  }
}

let dir: string;
let server: Server | undefined;
let rawServer: Http2Server | undefined;
const rawSessions = new Set<Http2Session>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-proto-grpc-'));
});
afterEach(async () => {
  await server?.close({ graceMs: 100 });
  server = undefined;
  if (rawServer) {
    // Our clients keep their connection open; close() would wait for them.
    for (const s of rawSessions) s.destroy();
    await new Promise((r) => rawServer!.close(r));
  }
  rawSessions.clear();
  rawServer = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('server: gRPC calls served on HTTP/2 streams', () => {
  it('bidi streams answer message by message, before the client half-closes', async () => {
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(ContentService, {
          async *write(reqs) {
            for await (const r of reqs)
              yield { offset: r.offset + BigInt(r.data.byteLength), action: r.action };
          },
        }),
      ],
    });
    const content = createClient(ContentService, { address: server.address, namespace: 'default' });
    let release: (() => void) | undefined;
    const gate = (): Promise<void> =>
      new Promise((r) => {
        release = r;
      });
    const seen: bigint[] = [];
    async function* requests() {
      for (let i = 0; i < 3; i++) {
        yield { ref: 'r', offset: BigInt(i * 10), data: new Uint8Array(5) };
        // The next request goes only after the answer to this one came back.
        await gate();
      }
    }
    for await (const res of content.write(requests())) {
      seen.push(res.offset);
      release?.();
    }
    expect(seen).toEqual([5n, 15n, 25n]);
  });

  /**
   * A Version service whose one call waits for its signal; `entered` resolves once the call reached
   * the handler, `aborted()` says whether its signal fired.
   */
  async function serveWaitingVersion(): Promise<{
    address: string;
    entered: Promise<void>;
    aborted: () => boolean;
  }> {
    let fired = false;
    let enter!: () => void;
    const entered = new Promise<void>((resolve) => {
      enter = resolve;
    });
    const s = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(VersionService, {
          version: async (_req, ctx) => {
            enter();
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
            fired = true;
            if (ctx.timeoutMs() !== undefined) throw new DeadlineExceeded('version: deadline passed');
            return { version: 'late' };
          },
        }),
      ],
    });
    server = s;
    return { address: s.address, entered, aborted: () => fired };
  }

  it('a deadline (grpc-timeout) aborts the handler and answers DeadlineExceeded', async () => {
    const handler = await serveWaitingVersion();
    const version = createClient(VersionService, { address: handler.address, timeoutMs: 150 });
    const t0 = Date.now();
    const err = await version.version({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceeded);
    // The 150 ms deadline ended the call, not the handler (it never answers): a generous bound.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expect.poll(() => handler.aborted()).toBe(true);
  });

  it("a client's abort resets the stream, and the handler's signal fires", async () => {
    const handler = await serveWaitingVersion();
    const version = createClient(VersionService, { address: handler.address });
    const ac = new AbortController();
    const call = version.version({}, { signal: ac.signal }).catch((e: unknown) => e);
    await handler.entered;
    ac.abort();
    expect(await call).toBeInstanceOf(Canceled);
    await expect.poll(() => handler.aborted()).toBe(true);
  });

  it('runs interceptors around handlers, and sends the headers and trailers they set', async () => {
    const calls: string[] = [];
    const tag: Interceptor = (next) => async (req) => {
      calls.push(`${req.method.name} ns=${req.header.get('containerd-namespace')}`);
      req.header.set('x-tag', 'from-interceptor');
      const res = await next(req);
      res.trailer.set('x-done', 'yes');
      return res;
    };
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      interceptors: [tag],
      services: [
        service(NamespacesService, {
          get: (req, ctx) => {
            ctx.responseHeader.set('x-handler', 'h');
            return { namespace: { name: req.name, labels: { tag: ctx.requestHeader.get('x-tag') ?? '' } } };
          },
        }),
      ],
    });
    const client = createClient(NamespacesService, { address: server.address, namespace: 'n1' });
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await client.get(
      { name: 'a' },
      {
        onHeader: (h) => {
          header = h;
        },
        onTrailer: (t) => {
          trailer = t;
        },
      },
    );
    expect(res.namespace?.labels).toEqual({ tag: 'from-interceptor' });
    expect(calls).toEqual(['Get ns=n1']);
    expect(header?.get('x-handler')).toBe('h');
    expect(trailer?.get('x-done')).toBe('yes');
    expect(trailer?.get('grpc-status')).toBe('0');
  });

  it('holds a server stream back while the client does not read (flow control), losing nothing', async () => {
    const total = 40;
    let produced = 0;
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(EventsService, {
          async *subscribe() {
            for (let i = 0; i < total; i++) {
              produced++;
              yield { topic: `/${i}`, event: { typeUrl: 'x', value: new Uint8Array(1024 * 1024) } };
            }
          },
        }),
      ],
    });
    const events = createClient(EventsService, { address: server.address, namespace: 'default' });
    const it = events.subscribe({})[Symbol.asyncIterator]();
    expect((await it.next()).value?.topic).toBe('/0');
    // The handler runs ahead until the HTTP/2 windows are full (a few MiB at most), then waits for
    // the reader: wait until it has stopped producing.
    await quiet(() => produced);
    expect(produced).toBeLessThan(total);
    let n = 1;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      expect(r.value.topic).toBe(`/${n}`);
      expect(r.value.event?.value.byteLength).toBe(1024 * 1024);
      n++;
    }
    expect(n).toBe(total);
  });

  it('a gzip-compressed request is served too (through Connect)', async () => {
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [service(VersionService, { version: () => ({ version: 'v', revision: 'r' }) })],
    });
    const path = server.socketPath;
    const transport = createGrpcTransport({
      baseUrl: 'http://localhost',
      nodeOptions: { createConnection: () => netConnect(path) },
      sendCompression: compressionGzip,
      compressMinBytes: 0,
    });
    const version = createConnectClient(VersionService, transport);
    expect((await version.version({})).version).toBe('v');
  });

  it('a handler error reaches a Connect client and a gRPC client with the same code and message', async () => {
    server = await createServer({
      socketPath: join(dir, 's.sock'),
      services: [
        service(VersionService, {
          version: () => {
            throw new ResourceExhausted('version: too many');
          },
        }),
      ],
    });
    const ours = createClient(VersionService, { address: server.address });
    const e1 = await ours.version({}).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ResourceExhausted);
    expect((e1 as Error).message).toBe('version: too many: resource exhausted');
    const path = server.socketPath;
    const connect = createConnectClient(
      VersionService,
      createGrpcTransport({
        baseUrl: 'http://localhost',
        nodeOptions: { createConnection: () => netConnect(path) },
      }),
    );
    const e2 = (await connect.version({}).catch((e: unknown) => e)) as { code: number; rawMessage: string };
    expect(e2.code).toBe(new ResourceExhausted('x').code);
    expect(e2.rawMessage).toBe('version: too many');
  });
});

describe('client: unary calls read every kind of answer', () => {
  async function rawServe(onStream: (stream: ServerHttp2Stream) => void): Promise<string> {
    const path = join(dir, 'raw.sock');
    rawServer = createHttp2Server();
    rawServer.on('session', (s) => rawSessions.add(s));
    rawServer.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.resume();
      onStream(stream);
    });
    await new Promise<void>((r) => rawServer!.listen(path, r));
    return path;
  }

  it('a trailers-only error (status in the headers, as Go servers send it)', async () => {
    const path = await rawServe((s) =>
      s.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '12',
          'grpc-message': 'no%20such',
        },
        { endStream: true },
      ),
    );
    const err = await createClient(VersionService, { address: path })
      .version({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotImplemented);
    expect((err as Error).message).toBe('no such: not implemented');
  });

  it('an HTTP error status', async () => {
    const path = await rawServe((s) => s.respond({ ':status': 503 }, { endStream: true }));
    const err = await createClient(VersionService, { address: path })
      .version({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Unavailable);
  });

  it('a stream reset by the server', async () => {
    const path = await rawServe((s) => s.close(2 /* INTERNAL_ERROR */));
    const err = await createClient(VersionService, { address: path })
      .version({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/error code/);
  });

  it('an answer without a grpc-status', async () => {
    const path = await rawServe((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    const err = await createClient(VersionService, { address: path })
      .version({})
      .catch((e: unknown) => e);
    expect(String(err)).toMatch(/missing status/);
    expect(err).toBeInstanceOf(Unknown);
  });

  it('the server going away mid-call', async () => {
    const path = await rawServe((s) => {
      s.session?.destroy();
    });
    const err = await createClient(VersionService, { address: path })
      .version({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
  });
});
