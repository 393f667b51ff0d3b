import { chmod, unlink } from 'node:fs/promises';
import type {
  Http2ServerRequest,
  Http2ServerResponse,
  Http2Session,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttp2Server } from 'node:http2';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { MAX_MESSAGE_BYTES, socketPath as parseSocketPath } from './unix-transport.js';
import { type CloseOptions, logUnexpected, removeStaleSocket, type ServiceRegistration } from './serving.js';
import { serverErrorInterceptor } from './error-interceptors.js';
import { GrpcMethods, GrpcServer, isPlainGrpc } from './grpc-server.js';
import { Canceled, classify, Unavailable } from './errors.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';

export type { CloseOptions, ServiceRegistration } from './serving.js';
export { service } from './serving.js';

// One HTTP/2 cleartext server on a unix socket answers both gRPC (stock ctr, nerdctl, Go
// clients, ctrd's own clients) and the Connect protocol with JSON (curl --http2-prior-knowledge).

export interface ServerOptions {
  /** Where to listen: `/run/ctrd/ctrd.sock` or `unix:///run/ctrd/ctrd.sock`. */
  socketPath: string;
  /** Route registrations, connect-es style. */
  routes?: ((router: ConnectRouter) => void) | undefined;
  /** Or a list of services (see `service()`); both may be given. */
  services?: ServiceRegistration[] | undefined;
  /** Socket file mode, e.g. 0o660. Default: whatever the umask leaves. */
  mode?: number | undefined;
  /** Extra server interceptors, run inside the error mapping. */
  interceptors?: Interceptor[] | undefined;
  /** Largest request message; beyond it the call fails with ResourceExhausted. Default 16 MiB. */
  readMaxBytes?: number | undefined;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

export interface Server {
  /** `unix://<path>`, ready for createClient. */
  readonly address: string;
  readonly socketPath: string;
  /**
   * Stops accepting connections and calls, waits for in-flight calls (up to graceMs; with `now`,
   * cancels them first), then resolves.
   */
  close(opts?: CloseOptions): Promise<void>;
}

/**
 * Serves `services`/`routes` on a unix socket. Unknown methods get gRPC Unimplemented (HTTP 200,
 * grpc-status 12 in trailers) for gRPC requests, because stock ctr branches on that code (e.g.
 * ListStream falls back to List) and an HTTP 404 would break it.
 */
export async function createServer(opts: ServerOptions): Promise<Server> {
  const log = opts.logger ?? silentLogger;
  const path = parseSocketPath(opts.socketPath);
  opts.signal?.throwIfAborted();
  const shutdown = new AbortController();
  const interceptors = [
    serverErrorInterceptor,
    logUnexpected(log),
    cutShortUnavailable(shutdown.signal),
    ...(opts.interceptors ?? []),
  ];
  const readMaxBytes = opts.readMaxBytes ?? MAX_MESSAGE_BYTES;
  const methods = new GrpcMethods();
  const handler = connectNodeAdapter({
    grpc: true,
    connect: true,
    grpcWeb: false,
    readMaxBytes,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    shutdownSignal: shutdown.signal,
    interceptors,
    routes: (connectRouter) => {
      const router = methods.recording(connectRouter);
      for (const s of opts.services ?? []) router.service(s.service, s.impl);
      opts.routes?.(router);
    },
    fallback: (req, res) => unimplemented(req as Http2ServerRequest, res as Http2ServerResponse),
  });
  const grpc = new GrpcServer({ methods, interceptors, readMaxBytes, writeMaxBytes: MAX_MESSAGE_BYTES });
  shutdown.signal.addEventListener('abort', () => grpc.shutdown(shutdown.signal.reason), { once: true });

  const sessions = new Set<Http2Session>();
  // nghttp2 resets a session that buffers more than maxSessionMemory (default 10 MB), which would
  // cut off a legitimate 16 MiB message before our ResourceExhausted check can answer it.
  const server = createHttp2Server({ maxSessionMemory: 64 }, handler);
  // Plain gRPC calls are taken before Node's compatibility layer turns the stream into a request
  // and a response object for Connect (see grpc-server.ts): that layer listens on the same
  // 'stream' event, and only the emit can keep a stream from it.
  const emit = server.emit.bind(server);
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'stream' && isPlainGrpc(args[1] as IncomingHttpHeaders)) {
      grpc.handle(args[0] as ServerHttp2Stream, args[1] as IncomingHttpHeaders);
      return true;
    }
    return emit(event, ...args);
  }) as typeof server.emit;
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    // A peer that vanishes mid-call must not take the server down.
    session.on('error', (err) => log.debug({ err }, 'http2 session error'));
  });
  server.on('sessionError', (err) => log.debug({ err }, 'http2 session error'));

  await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      server.close();
      reject(new Canceled(`server on ${path}: listen cancelled`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new Unavailable(`server on ${path}: cannot listen: ${err.message}`, { cause: err }));
    });
    server.listen(path, () => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http2 server error'));
  if (opts.mode !== undefined) await chmod(path, opts.mode);
  log.debug({ socket: path }, 'serving');

  let closing: Promise<void> | undefined;
  return {
    address: `unix://${path}`,
    socketPath: path,
    close(closeOpts) {
      closing ??= closeServer(closeOpts?.graceMs ?? 10_000, closeOpts?.now ?? false);
      return closing;
    },
  };

  async function closeServer(graceMs: number, now: boolean): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Handlers see Canceled (the reason their signal carries); their callers get Unavailable.
    if (now) shutdown.abort(new Canceled('server is shutting down'));
    // GOAWAY: clients open no new streams; sessions end when their streams are done.
    for (const s of sessions) s.close();
    const timer = setTimeout(() => {
      // Grace is over: cancel handlers (long Subscribe streams notice through ctx.signal), then
      // drop whatever is still connected.
      shutdown.abort(new Canceled('server is shutting down'));
      setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, 100).unref();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    shutdown.abort(new Canceled('server is shutting down'));
    await unlink(path).catch(() => {});
  }
}

// A call the shutdown cut short answers Unavailable, which is what a grpc-go client sees of a
// server that stopped (the transport closing): clients retry it or wait for the server to come
// back. It is never Canceled, which clients read as their own doing: dockerd, for one, stops
// following events for good when its subscription ends Canceled. A stream that ends cleanly after
// the cut was ended by it (Subscribe returns when its signal aborts), so it fails too; a call that
// fails with an error of its own (NotFound...) keeps it.
function cutShortUnavailable(shutdown: AbortSignal): Interceptor {
  const cut = (cause?: unknown): Unavailable => new Unavailable('server is shutting down', { cause });
  const map = (e: unknown): unknown => (shutdown.aborted && classify(e) === 'Canceled' ? cut(e) : e);
  async function* streamed<T>(source: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* source;
    } catch (e) {
      throw map(e);
    }
    if (shutdown.aborted) throw cut();
  }
  return (next) => async (req) => {
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (e) {
      throw map(e);
    }
    return res.stream ? { ...res, message: streamed(res.message) } : res;
  };
}

function unimplemented(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const contentType = String(req.headers['content-type'] ?? '');
  const what = `method ${req.url}`;
  if (contentType.startsWith('application/grpc')) {
    // Drain the request so the stream can end cleanly, then answer trailers-style.
    req.resume();
    res.writeHead(200, { 'content-type': 'application/grpc' });
    res.addTrailers({ 'grpc-status': '12', 'grpc-message': encodeURIComponent(`${what}: not implemented`) });
    res.end();
    return;
  }
  req.resume();
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code: 'unimplemented', message: `${what}: not implemented` }));
}
