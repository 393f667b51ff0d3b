import { chmod, unlink } from 'node:fs/promises';
import { createServer as createNetServer, type Socket } from 'node:net';
import { create, type DescMethod, type DescService, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { serverErrorInterceptor } from '../error-interceptors.js';
import { Canceled, FailedPrecondition, Unavailable } from '../errors.js';
import {
  type KeyValue,
  type Request,
  RequestSchema,
  ResponseSchema,
} from '../gen/github.com/containerd/ttrpc/request_pb.js';
import type { Status } from '../gen/google/rpc/status_pb.js';
import { StatusSchema } from '../gen/google/rpc/status_pb.js';
import { chain, merge, request } from '../handler-chain.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { type CloseOptions, logUnexpected, removeStaleSocket, type ServiceRegistration } from '../serving.js';
import { socketPath as parseSocketPath } from '../socket-path.js';
import {
  encodeFrame,
  type FrameEvent,
  FrameReader,
  MAX_MESSAGE_LENGTH,
  MessageType,
  oversizeMessage,
} from './frame.js';
import {
  isSameUser,
  loadPeerCredentialsReader,
  type PeerCredentials,
  type PeerCredentialsReader,
} from './peer-credentials.js';
import { statusFromError } from './status.js';

// A ttrpc server on a unix socket, driven by the same service descriptors and implementations as
// createServer (gRPC and Connect): a handler gets the request message and a HandlerContext whose
// protocolName is 'ttrpc', whose requestHeader holds the call's metadata (so namespaceFromContext
// finds `containerd-namespace-ttrpc`), whose signal is aborted at the deadline (timeout_nano), when
// the client goes away or when the server shuts down. Interceptors run around handlers as on gRPC.
//
// What the Go server (containerd/ttrpc server.go, channel.go, services.go) does, and so do we:
// many calls at once on one connection, answered as each finishes; an even stream id answered
// InvalidArgument; a frame over 4 MiB answered ResourceExhausted on its stream id and its bytes
// skipped, the connection kept; unknown service or method answered Unimplemented ("service X",
// "method X"); frames of unknown types ignored; a Request that does not parse answered
// InvalidArgument. Like ttrpc 1.2, stream ids must grow, and a Data frame for no live call is
// answered InvalidArgument ("StreamID is no longer active").
//
// Where we differ, and why:
// - Only unary methods are served (containerd 1.6 uses nothing else). A streaming method is
//   answered Unimplemented; a Data frame on a live unary call is ignored.
// - At the deadline the call is answered DeadlineExceeded right away and the handler's late answer
//   dropped (Go waits for the handler, which normally returns ctx.Err()).
// - A response over 4 MiB is answered ResourceExhausted; Go's server fails the write and drops the
//   whole connection.
// - While closing, new calls on open connections are answered Unavailable, as a GOAWAY would.

/** Raw ttrpc metadata of the call, keys and values as sent (Headers folds case and repeats). */
export const TTRPC_METADATA = createContextKey<readonly KeyValue[]>([], { description: 'ttrpc metadata' });

/**
 * Who may connect. `'same-user'` (the default, containerd's UnixSocketRequireSameUser): the peer's
 * SO_PEERCRED uid and gid are this process's effective ones. `'none'`: anyone who can open the
 * socket file. A function decides for itself.
 */
export type PeerCheck = 'same-user' | 'none' | ((cred: PeerCredentials) => boolean);

export interface TtrpcServerOptions {
  /** Where to listen: `/run/ctrd/ctrd.sock.ttrpc` or `unix:///...`. */
  socketPath: string;
  /** Services (see `service()`), as for createServer. */
  services?: ServiceRegistration[] | undefined;
  /** Or route registrations, connect-es style (router options such as jsonOptions are ignored). */
  routes?: ((router: ConnectRouter) => void) | undefined;
  /** Extra interceptors, run inside the error mapping. */
  interceptors?: Interceptor[] | undefined;
  /** Socket file mode, e.g. 0o600. Default: whatever the umask leaves. */
  mode?: number | undefined;
  peerCheck?: PeerCheck | undefined;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

export interface TtrpcServer {
  /** `unix://<path>`, ready for createTtrpcClient. */
  readonly address: string;
  readonly socketPath: string;
  /**
   * Stops accepting connections, lets calls under way finish (up to graceMs, default 10 s), then
   * cancels what is left, closes every connection and removes the socket file.
   */
  close(opts?: CloseOptions): Promise<void>;
}

/** Serves `services`/`routes` over ttrpc on a unix socket. */
export async function createTtrpcServer(opts: TtrpcServerOptions): Promise<TtrpcServer> {
  const log = opts.logger ?? silentLogger;
  const path = parseSocketPath(opts.socketPath);
  opts.signal?.throwIfAborted();
  const admit = await admission(opts.peerCheck ?? 'same-user', path);
  const methods = new MethodTable();
  for (const s of opts.services ?? []) methods.addService(s.service, s.impl);
  opts.routes?.(methods.router());
  const core = new ServerCore(
    methods,
    [serverErrorInterceptor, logUnexpected(log), ...(opts.interceptors ?? [])],
    log,
  );

  const server = createNetServer((socket) => {
    const refusal = admit(socket);
    if (refusal !== undefined) {
      // As Go's Serve after a failed handshake: a log line, and the connection closed unanswered.
      log.warn(refusal, 'ttrpc: refusing connection');
      socket.destroy();
      return;
    }
    core.serve(socket);
  });
  await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      server.close();
      reject(new Canceled(`ttrpc server on ${path}: listen cancelled`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new Unavailable(`ttrpc server on ${path}: cannot listen: ${err.message}`, { cause: err }));
    });
    server.listen(path, () => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'ttrpc server error'));
  if (opts.mode !== undefined) await chmod(path, opts.mode);
  log.debug({ socket: path }, 'serving ttrpc');

  let closing: Promise<void> | undefined;
  return {
    address: `unix://${path}`,
    socketPath: path,
    close(closeOpts) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await core.close(closeOpts?.graceMs ?? 10_000);
        await closed;
        await unlink(path).catch(() => {});
      })();
      return closing;
    },
  };
}

type Admit = (socket: Socket) => Record<string, unknown> | undefined;

async function admission(check: PeerCheck, path: string): Promise<Admit> {
  if (check === 'none') return () => undefined;
  let read: PeerCredentialsReader;
  try {
    read = await loadPeerCredentialsReader();
  } catch (e) {
    throw new FailedPrecondition(
      `ttrpc server on ${path}: cannot check peer credentials (SO_PEERCRED through koffi): ${e instanceof Error ? e.message : String(e)}: pass peerCheck: 'none' to serve without the check`,
      { cause: e },
    );
  }
  const allowed = check === 'same-user' ? (c: PeerCredentials) => isSameUser(c) : check;
  return (socket) => {
    let cred: PeerCredentials;
    try {
      cred = read(socket);
    } catch (err) {
      return { err, reason: 'peer credentials unreadable' };
    }
    try {
      return allowed(cred) ? undefined : { peer: cred, reason: 'credential check failed' };
    } catch (err) {
      // A check that throws refuses: it runs in the accept callback, where a throw would be fatal.
      return { peer: cred, err, reason: 'credential check threw' };
    }
  };
}

interface MethodEntry {
  kind: DescMethod['methodKind'];
  method: DescMethod;
  impl: unknown;
}

// Methods by service name, then method name: ttrpc's Request names them apart, and Go answers an
// unknown service and an unknown method differently.
class MethodTable {
  private readonly services = new Map<string, Map<string, MethodEntry>>();

  addService(service: DescService, impl: Partial<ServiceImpl<DescService>>): void {
    // Methods the implementation leaves out answer Unimplemented, as on gRPC (Connect's stubs).
    const spec = createServiceImplSpec(service, impl);
    const byName = this.of(service.typeName);
    for (const m of service.methods) byName.set(m.name, spec.methods[m.localName] as unknown as MethodEntry);
  }

  addMethod(method: DescMethod, impl: unknown): void {
    this.of(method.parent.typeName).set(method.name, { kind: method.methodKind, method, impl });
  }

  resolve(service: string, method: string): MethodEntry | ConnectError {
    const byName = this.services.get(service);
    if (byName === undefined) return new ConnectError(`service ${service}`, Code.Unimplemented);
    const entry = byName.get(method);
    if (entry === undefined) return new ConnectError(`method ${method}`, Code.Unimplemented);
    if (entry.kind !== 'unary') {
      return new ConnectError(
        `method ${method}: streaming is not supported over ttrpc here (unary calls only)`,
        Code.Unimplemented,
      );
    }
    return entry;
  }

  /** A ConnectRouter that records registrations here. */
  router(): ConnectRouter {
    const table = this;
    const router: ConnectRouter = {
      handlers: [],
      service(service, impl) {
        table.addService(service, impl as Partial<ServiceImpl<DescService>>);
        return router as never;
      },
      rpc(method, impl) {
        table.addMethod(method, impl);
        return router as never;
      },
    };
    return router;
  }

  private of(service: string): Map<string, MethodEntry> {
    let byName = this.services.get(service);
    if (byName === undefined) {
      byName = new Map();
      this.services.set(service, byName);
    }
    return byName;
  }
}

// The reason a finished call's signal is aborted with, as on gRPC: work tied to it stops. Made on
// first use: a ConnectError makes a Headers, whose first use loads undici (and http2 with it).
let callComplete: ConnectError | undefined;
const CALL_COMPLETE = (): ConnectError => {
  callComplete ??= new ConnectError('the call is complete', Code.Canceled);
  return callComplete;
};
// setTimeout fires at once beyond this (2^31 - 1 ms, ~24.8 days): longer deadlines get no timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

class ServerCore {
  readonly connections = new Set<Connection>();
  closing = false;

  constructor(
    readonly methods: MethodTable,
    readonly interceptors: readonly Interceptor[],
    readonly log: Logger,
  ) {}

  serve(socket: Socket): void {
    const conn = new Connection(this, socket);
    this.connections.add(conn);
    if (this.closing) conn.drain();
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const all = [...this.connections].map((c) => c.closed);
    for (const c of this.connections) c.drain();
    const timer = setTimeout(() => {
      const reason = new ConnectError('server is shutting down', Code.Canceled);
      for (const c of this.connections) c.destroy(reason);
    }, graceMs);
    timer.unref();
    await Promise.all(all);
    clearTimeout(timer);
  }
}

class Connection {
  readonly calls = new Map<number, Call>();
  readonly closed: Promise<void>;
  private readonly reader = new FrameReader();
  private lastStreamId = 0;
  private draining = false;
  private writePaused = false;
  isClosed = false;

  constructor(
    readonly core: ServerCore,
    readonly socket: Socket,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.reader.push(chunk)) {
        if (this.isClosed) return;
        this.onFrame(ev);
      }
    });
    // A peer that vanishes mid-call must not take the server down.
    socket.on('error', (err) => core.log.debug({ err }, 'ttrpc connection error'));
    socket.once('close', () => this.onClose());
  }

  /** No new calls; the connection ends once the calls under way have answered. */
  drain(): void {
    this.draining = true;
    if (this.calls.size === 0) this.socket.end();
  }

  destroy(reason: unknown): void {
    for (const c of this.calls.values()) c.cancel(reason);
    this.calls.clear();
    this.socket.destroy();
  }

  finished(call: Call): void {
    this.calls.delete(call.id);
    if (this.draining && this.calls.size === 0) this.socket.end();
  }

  /** Sends a Response frame; no status means OK. */
  respond(streamId: number, status: Status | undefined, payload?: Uint8Array): void {
    if (this.isClosed) return;
    let data = encodeResponse(status, payload);
    if (data.byteLength > MAX_MESSAGE_LENGTH) {
      data = encodeResponse(
        create(StatusSchema, { code: Code.ResourceExhausted, message: oversizeMessage(data.byteLength) }),
      );
    }
    if (!this.socket.write(encodeFrame(streamId, MessageType.Response, 0, data)) && !this.writePaused) {
      // The peer reads slower than we answer: read no more calls until it catches up.
      this.writePaused = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.writePaused = false;
        if (!this.isClosed) this.socket.resume();
      });
    }
  }

  private respondError(streamId: number, code: Code, message: string): void {
    this.respond(streamId, create(StatusSchema, { code, message }));
  }

  private onFrame(ev: FrameEvent): void {
    const { streamId, type } = ev.header;
    if (ev.kind === 'oversize') {
      this.respondError(streamId, Code.ResourceExhausted, oversizeMessage(ev.header.length));
      return;
    }
    if (streamId % 2 !== 1) {
      this.respondError(streamId, Code.InvalidArgument, 'StreamID must be odd for client initiated streams');
      return;
    }
    if (type === MessageType.Data) {
      if (this.calls.has(streamId)) {
        this.core.log.debug({ streamId }, 'ttrpc: data frame on a unary call ignored');
        return;
      }
      this.respondError(streamId, Code.InvalidArgument, 'StreamID is no longer active');
      return;
    }
    // Other types are ignored for compatibility with later versions, as Go does.
    if (type !== MessageType.Request) return;
    if (streamId <= this.lastStreamId) {
      this.respondError(streamId, Code.InvalidArgument, 'StreamID cannot be re-used and must increment');
      return;
    }
    this.lastStreamId = streamId;
    let req: Request;
    try {
      req = fromBinary(RequestSchema, ev.data);
    } catch (e) {
      this.respondError(
        streamId,
        Code.InvalidArgument,
        `unmarshal request error: ${e instanceof Error ? e.message : String(e)}`,
      );
      return;
    }
    if (this.draining) {
      this.respondError(streamId, Code.Unavailable, 'server is shutting down');
      return;
    }
    const entry = this.core.methods.resolve(req.service, req.method);
    if (entry instanceof ConnectError) {
      this.respondError(streamId, entry.code, entry.rawMessage);
      return;
    }
    const call = new Call(this, streamId, entry, req);
    this.calls.set(streamId, call);
    call.start();
  }

  private onClose(): void {
    this.isClosed = true;
    this.core.connections.delete(this);
    // Go cancels the connection's context: every handler still running learns it through ctx.signal.
    const reason = new ConnectError('the client went away', Code.Canceled);
    for (const c of this.calls.values()) c.cancel(reason);
    this.calls.clear();
  }
}

type UnaryImpl = (req: unknown, ctx: HandlerContext) => Promise<unknown> | unknown;

class Call {
  // Made on first use, as on gRPC: most handlers never look at the signal.
  private ctrl: AbortController | undefined;
  private aborted = false;
  private abortReason: unknown;
  private timer: NodeJS.Timeout | undefined;
  private deadline: number | undefined;
  private done = false;

  constructor(
    private readonly conn: Connection,
    readonly id: number,
    private readonly entry: MethodEntry,
    private readonly req: Request,
  ) {}

  get signal(): AbortSignal {
    if (this.ctrl === undefined) {
      this.ctrl = new AbortController();
      if (this.aborted) this.ctrl.abort(this.abortReason);
    }
    return this.ctrl.signal;
  }

  start(): void {
    const t = this.req.timeoutNano;
    if (t < 0n) {
      // Go's context.WithTimeout with a negative duration is done before the handler runs.
      this.expire();
      return;
    }
    if (t > 0n) {
      const ms = Number(t) / 1e6;
      this.deadline = Date.now() + ms;
      if (ms <= MAX_TIMER_MS) this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms)));
    }
    void this.run();
  }

  /** The connection is gone (or the server gave up waiting): the handler is told, nothing is sent. */
  cancel(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.abort(reason);
  }

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.ctrl?.abort(reason);
  }

  private expire(): void {
    if (this.done) return;
    this.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded));
    // The text of Go's context.DeadlineExceeded, which a Go handler would have returned.
    this.finish(create(StatusSchema, { code: Code.DeadlineExceeded, message: 'context deadline exceeded' }));
  }

  private finish(status: Status | undefined, payload?: Uint8Array): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.abort(CALL_COMPLETE());
    // Answer first: a draining connection ends once its last call is finished.
    this.conn.respond(this.id, status, payload);
    this.conn.finished(this);
  }

  private async run(): Promise<void> {
    const method = this.entry.method;
    try {
      let message: unknown;
      try {
        message = fromBinary(method.input, this.req.payload);
      } catch (e) {
        throw new ConnectError(
          `ttrpc: error unmarshalling payload: ${e instanceof Error ? e.message : String(e)}`,
          Code.Internal,
        );
      }
      const ctx = this.context();
      const impl = this.entry.impl as UnaryImpl;
      const invoke = async (r: UnaryRequest): Promise<UnaryResponse> =>
        ({
          stream: false,
          message: create(method.output, (await impl(r.message, merge(ctx, r))) as never),
          method,
          service: method.parent,
          header: ctx.responseHeader,
          trailer: ctx.responseTrailer,
        }) as unknown as UnaryResponse;
      const res = await chain(invoke, this.conn.core.interceptors)(request(ctx, false, message) as never);
      if (this.done) {
        this.conn.core.log.debug({ method: ctx.url }, 'ttrpc: answer after the call ended dropped');
        return;
      }
      let out: Uint8Array;
      try {
        out = toBinary(method.output, res.message as never);
      } catch (e) {
        throw new ConnectError(
          `serialize binary: ${e instanceof Error ? e.message : String(e)}`,
          Code.Internal,
        );
      }
      this.finish(undefined, out);
    } catch (e) {
      this.finish(statusFromError(e));
    }
  }

  private context(): HandlerContext {
    const call = this;
    const deadline = this.deadline;
    const method = this.entry.method;
    return {
      method,
      service: method.parent,
      get signal() {
        return call.signal;
      },
      timeoutMs: deadline === undefined ? () => undefined : () => deadline - Date.now(),
      requestMethod: 'POST',
      requestHeader: headersOf(this.req.metadata, this.conn.core.log),
      responseHeader: new Headers(),
      responseTrailer: new Headers(),
      protocolName: 'ttrpc',
      values: createContextValues().set(TTRPC_METADATA, this.req.metadata),
      url: `ttrpc://localhost/${this.req.service}/${this.req.method}`,
    };
  }
}

// ttrpc metadata is any strings; Headers refuses some (names with spaces, characters beyond
// Latin-1). Those stay readable through TTRPC_METADATA only.
function headersOf(metadata: readonly KeyValue[], log: Logger): Headers {
  const h = new Headers();
  for (const kv of metadata) {
    try {
      h.append(kv.key, kv.value);
    } catch {
      log.debug({ key: kv.key }, 'ttrpc: metadata entry not representable as a header');
    }
  }
  return h;
}

// On success Go sends no Status at all (services.go: status.FromError(nil) is a nil Status), so an
// empty answer is an empty frame; so do we.
function encodeResponse(status: Status | undefined, payload?: Uint8Array): Uint8Array {
  const init: { status?: Status; payload?: Uint8Array } = {};
  if (status !== undefined) init.status = status;
  if (payload !== undefined) init.payload = payload;
  return toBinary(ResponseSchema, create(ResponseSchema, init));
}
