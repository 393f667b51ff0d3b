import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { constants as h2 } from 'node:http2';
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  toBinary,
} from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { parseTimeout, setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { EnvelopeReader, envelope, webHeaders } from './grpc-envelope.js';
import { chain, merge, request } from './handler-chain.js';

// The gRPC protocol (application/grpc, uncompressed protobuf: what stock ctr, Go clients and
// ctrd's own clients send) served straight on Node's HTTP/2 streams. Connect's generic handler
// runs every call through Node's request/response compatibility objects and a chain of async
// generators (framing, decompression, parsing, invocation, serialization), and it costs several
// times the work of the call itself: ~0.9 ms of CPU for an empty unary call against ~0.15 ms
// here. Everything else (the Connect protocol with JSON for curl, gRPC with compression or JSON)
// still goes to Connect. The service implementations, interceptors and HandlerContext are
// Connect's, so the same code serves both paths and behaves the same on each.

const CONTENT_TYPE_PROTO = 'application/grpc+proto';
// Compressed requests go to Connect, which decompresses; advertising what it accepts is true.
const ACCEPT_ENCODING = 'gzip,br';
// A client stream's messages waiting for the handler; beyond this the HTTP/2 stream is paused so
// the peer's flow control, not our memory, absorbs a fast writer.
const INPUT_HIGH_WATER = 8;

interface AnyMethodSpec {
  kind: DescMethod['methodKind'];
  method: DescMethod;
  impl: unknown;
}

/** Methods by gRPC path (`/containerd.services.tasks.v1.Tasks/Create`). */
export class GrpcMethods {
  private readonly byPath = new Map<string, AnyMethodSpec>();

  addService(service: DescService, impl: Partial<ServiceImpl<DescService>>): void {
    const spec = createServiceImplSpec(service, impl);
    for (const m of service.methods)
      this.byPath.set(
        `/${service.typeName}/${m.name}`,
        spec.methods[m.localName] as unknown as AnyMethodSpec,
      );
  }

  addMethod(method: DescMethod, impl: unknown): void {
    this.byPath.set(`/${method.parent.typeName}/${method.name}`, {
      kind: method.methodKind,
      method,
      impl,
    });
  }

  get(path: string): AnyMethodSpec | undefined {
    return this.byPath.get(path);
  }

  /** A router that registers with Connect's router and records each method here as well. */
  recording(router: ConnectRouter): ConnectRouter {
    const self = this;
    const rec: ConnectRouter = {
      get handlers() {
        return router.handlers;
      },
      service(service, impl, options) {
        self.addService(service, impl as Partial<ServiceImpl<DescService>>);
        router.service(service, impl, options);
        return rec as never;
      },
      rpc(method, impl, options) {
        self.addMethod(method, impl);
        router.rpc(method, impl, options);
        return rec as never;
      },
    };
    return rec;
  }
}

export interface GrpcServeOptions {
  methods: GrpcMethods;
  interceptors: readonly Interceptor[];
  readMaxBytes: number;
  writeMaxBytes: number;
}

/**
 * True when this request is ours to serve (gRPC, protobuf, no compression); Connect gets the
 * rest.
 */
export function isPlainGrpc(headers: IncomingHttpHeaders): boolean {
  if (headers[':method'] !== 'POST') return false;
  const ct = headers['content-type'];
  if (ct !== 'application/grpc' && ct !== CONTENT_TYPE_PROTO) return false;
  const enc = headers['grpc-encoding'];
  return enc === undefined || enc === 'identity';
}

/** Serves gRPC calls on raw HTTP/2 streams; `shutdown` cancels every call still running. */
export class GrpcServer {
  private readonly calls = new Set<GrpcCall>();
  private shutdownReason: unknown;

  constructor(readonly options: GrpcServeOptions) {}

  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const call = new GrpcCall(this, stream, headers);
    if (this.shutdownReason !== undefined) {
      call.finish(new ConnectError('server is shutting down', Code.Unavailable));
      return;
    }
    this.calls.add(call);
    call.start();
  }

  /** Aborts the signal of every running call (their handlers end), as Connect's shutdownSignal. */
  shutdown(reason: unknown): void {
    this.shutdownReason = reason;
    for (const c of this.calls) c.abort(reason);
  }

  done(call: GrpcCall): void {
    this.calls.delete(call);
  }
}

// The reason a finished call's signal is aborted with (Connect aborts it too, so work tied to the
// signal stops with the call). One shared object: building a DOMException per call is not free.
const CALL_COMPLETE = new ConnectError('the call is complete', Code.Canceled);

class GrpcCall {
  // The call's AbortSignal is made on first use: most handlers never look at it, and an
  // AbortController per call, aborted at its end, is a good part of a small call's cost.
  private ctrl: AbortController | undefined;
  private aborted = false;
  private abortReason: unknown;
  private readonly spec: AnyMethodSpec | undefined;
  private readonly reader: EnvelopeReader;
  private readonly responseHeader: Headers;
  private readonly responseTrailer = new Headers();
  private timer: NodeJS.Timeout | undefined;
  private deadline: number | undefined;
  private headersSent = false;
  private finished = false;
  private input: InputQueue | undefined;
  private readonly unaryInput: Uint8Array[] = [];

  constructor(
    private readonly server: GrpcServer,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
  ) {
    this.spec = server.options.methods.get(headers[':path'] ?? '');
    this.reader = new EnvelopeReader(server.options.readMaxBytes);
    // The content type is echoed, as a Go server does (application/grpc or application/grpc+proto).
    this.responseHeader = new Headers({
      'content-type': headers['content-type'] ?? CONTENT_TYPE_PROTO,
      'grpc-accept-encoding': ACCEPT_ENCODING,
    });
    // A peer that resets or drops the stream must not raise an unhandled 'error'.
    stream.on('error', () => {});
    stream.once('close', () => this.onClose());
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.ctrl?.abort(reason);
  }

  get signal(): AbortSignal {
    if (this.ctrl === undefined) {
      this.ctrl = new AbortController();
      if (this.aborted) this.ctrl.abort(this.abortReason);
    }
    return this.ctrl.signal;
  }

  start(): void {
    const spec = this.spec;
    if (spec === undefined) {
      this.stream.resume();
      this.finish(new ConnectError(`method ${this.headers[':path']}: not implemented`, Code.Unimplemented));
      return;
    }
    const timeout = parseTimeout(
      (this.headers['grpc-timeout'] as string | undefined) ?? null,
      Number.MAX_SAFE_INTEGER,
    );
    if (timeout.error) {
      this.stream.resume();
      this.finish(timeout.error);
      return;
    }
    if (timeout.timeoutMs !== undefined) {
      this.deadline = Date.now() + timeout.timeoutMs;
      this.timer = setTimeout(
        () => this.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)),
        timeout.timeoutMs,
      );
    }
    const unaryInput = spec.kind === 'unary' || spec.kind === 'server_streaming';
    if (!unaryInput) this.input = new InputQueue(this.stream);
    this.stream.on('data', (chunk: Buffer) => {
      try {
        const msgs = this.reader.push(chunk);
        if (this.input) for (const m of msgs) this.input.push(this.parse(spec.method.input, m));
        else for (const m of msgs) this.unaryInput.push(m);
      } catch (e) {
        this.stream.removeAllListeners('data');
        this.stream.resume();
        if (this.input) this.input.fail(e);
        else this.finish(e);
      }
    });
    this.stream.once('end', () => {
      if (this.input) {
        if (this.reader.pending) this.input.fail(incomplete());
        else this.input.end();
      } else if (!this.finished) {
        if (this.reader.pending) this.finish(incomplete());
        else void this.runSingleInput(spec);
      }
    });
    if (this.input) void this.runStreamInput(spec, this.input);
  }

  private parse(schema: DescMessage, bytes: Uint8Array): unknown {
    try {
      return fromBinary(schema, bytes);
    } catch (e) {
      throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
    }
  }

  private context(): HandlerContext {
    const deadline = this.deadline;
    const call = this;
    return {
      method: this.spec!.method,
      service: this.spec!.method.parent,
      get signal() {
        return call.signal;
      },
      timeoutMs: deadline === undefined ? () => undefined : () => deadline - Date.now(),
      requestMethod: 'POST',
      requestHeader: webHeaders(this.headers),
      responseHeader: this.responseHeader,
      responseTrailer: this.responseTrailer,
      protocolName: 'grpc',
      values: createContextValues(),
      url: `http://${this.headers[':authority'] ?? 'localhost'}${this.headers[':path']}`,
    };
  }

  // Unary and server-streaming calls: exactly one request message.
  private async runSingleInput(spec: AnyMethodSpec): Promise<void> {
    try {
      const kindName = spec.kind === 'unary' ? 'unary' : 'server-streaming';
      if (this.unaryInput.length === 0)
        throw new ConnectError(
          `protocol error: missing input message for ${kindName} method`,
          Code.Unimplemented,
        );
      if (this.unaryInput.length > 1)
        throw new ConnectError(
          `protocol error: received extra input message for ${kindName} method`,
          Code.Unimplemented,
        );
      const message = this.parse(spec.method.input, this.unaryInput[0]!);
      const ctx = this.context();
      if (spec.kind === 'unary') {
        const anyFn = async (req: UnaryRequest): Promise<UnaryResponse> =>
          ({
            stream: false,
            message: create(
              spec.method.output,
              (await (spec.impl as UnaryImpl)(req.message, merge(ctx, req))) as never,
            ),
            method: spec.method,
            service: spec.method.parent,
            header: ctx.responseHeader,
            trailer: ctx.responseTrailer,
          }) as unknown as UnaryResponse;
        const next = chain(anyFn, this.server.options.interceptors);
        const res = (await next(request(ctx, false, message) as unknown as UnaryRequest)) as UnaryResponse;
        copyHeaders(res.header, this.responseHeader);
        copyHeaders(res.trailer, this.responseTrailer);
        const out = this.serialize(spec.method.output, res.message);
        if (this.finished) return;
        this.sendHeaders();
        this.stream.write(out);
        this.finish(undefined);
        return;
      }
      const anyFn = async (req: StreamRequest): Promise<StreamResponse> => {
        const first = await single(req.message);
        return streamResponse(ctx, spec, (spec.impl as StreamOutImpl)(first, merge(ctx, req)));
      };
      await this.runStream(ctx, anyFn, oneMessage(message));
    } catch (e) {
      this.finish(e);
    }
  }

  // Client-streaming and bidi calls.
  private async runStreamInput(spec: AnyMethodSpec, input: InputQueue): Promise<void> {
    try {
      const ctx = this.context();
      const anyFn = async (req: StreamRequest): Promise<StreamResponse> => {
        if (spec.kind === 'client_streaming') {
          const res = await (spec.impl as ClientStreamImpl)(req.message, merge(ctx, req));
          return streamResponse(ctx, spec, oneMessage(res));
        }
        return streamResponse(ctx, spec, (spec.impl as StreamOutImpl)(req.message, merge(ctx, req)));
      };
      await this.runStream(ctx, anyFn, input);
    } catch (e) {
      this.finish(e);
    }
  }

  private async runStream(
    ctx: HandlerContext,
    anyFn: (req: StreamRequest) => Promise<StreamResponse>,
    input: AsyncIterable<unknown>,
  ): Promise<void> {
    const spec = this.spec!;
    const next = chain(anyFn, this.server.options.interceptors);
    const res = (await next(request(ctx, true, input) as unknown as StreamRequest)) as StreamResponse;
    copyHeaders(res.header, this.responseHeader);
    const it = res.message[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        if (this.finished) return;
        const out = this.serialize(spec.method.output, r.value);
        this.sendHeaders();
        if (!this.stream.write(out)) await this.drained();
        if (this.finished) return;
      }
    } finally {
      // The peer went away or the call failed: let the handler's generator clean up.
      if (this.finished) await it.return?.().catch(() => {});
    }
    copyHeaders(res.trailer, this.responseTrailer);
    this.finish(undefined);
  }

  private serialize(schema: DescMessage, message: unknown): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = toBinary(schema, message as never);
    } catch (e) {
      throw new ConnectError(
        `serialize binary: ${e instanceof Error ? e.message : String(e)}`,
        Code.Internal,
      );
    }
    if (bytes.byteLength > this.server.options.writeMaxBytes) {
      throw new ConnectError(
        `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${this.server.options.writeMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    return envelope(bytes);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    const out: Record<string, string> = { ':status': '200' };
    this.responseHeader.forEach((v, k) => {
      out[k] = v;
    });
    this.stream.respond(out, { waitForTrailers: true });
  }

  /** Ends the call: trailers with the status of `err` (none: OK). */
  finish(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const status = err === undefined ? undefined : asConnectError(err);
    if (status !== undefined) setTrailerStatus(this.responseTrailer, status);
    else if (!this.responseTrailer.has('grpc-status')) this.responseTrailer.set('grpc-status', '0');
    const trailers: Record<string, string> = {};
    this.responseTrailer.forEach((v, k) => {
      trailers[k] = v;
    });
    try {
      this.sendHeaders();
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
    } catch {
      stream.destroy();
    }
    // A peer still sending after the answer (a too-large message, an unknown method) is drained.
    if (!stream.readableEnded) stream.resume();
  }

  private onClose(): void {
    if (!this.finished) {
      // The peer reset the stream (or the session died) before the answer was complete.
      const rst = this.stream.rstCode;
      this.finished = true;
      this.cleanup(
        new ConnectError(
          rst === h2.NGHTTP2_CANCEL || rst === h2.NGHTTP2_NO_ERROR
            ? 'the client cancelled the call'
            : `http/2 stream closed with error code ${rst}`,
          Code.Canceled,
        ),
      );
      this.input?.fail(new ConnectError('the client cancelled the call', Code.Canceled));
    }
  }

  private cleanup(reason: unknown = CALL_COMPLETE): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.server.done(this);
    this.abort(reason);
  }
}

type UnaryImpl = (req: unknown, ctx: HandlerContext) => Promise<unknown> | unknown;
type StreamOutImpl = (req: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;
type ClientStreamImpl = (req: AsyncIterable<unknown>, ctx: HandlerContext) => Promise<unknown>;

function streamResponse(
  ctx: HandlerContext,
  spec: AnyMethodSpec,
  out: AsyncIterable<unknown>,
): StreamResponse {
  const schema = spec.method.output;
  return {
    stream: true,
    message: mapIterable(out, (m) => create(schema, m as never)),
    method: spec.method,
    service: spec.method.parent,
    header: ctx.responseHeader,
    trailer: ctx.responseTrailer,
  } as StreamResponse;
}

function mapIterable<T, U>(src: AsyncIterable<T>, f: (t: T) => U): AsyncIterable<U> {
  return {
    [Symbol.asyncIterator]() {
      const it = src[Symbol.asyncIterator]();
      return {
        next: async () => {
          const r = await it.next();
          return r.done ? r : { done: false, value: f(r.value) };
        },
        return: async (v?: unknown) => {
          await it.return?.(v as never);
          return { done: true, value: undefined };
        },
      };
    },
  };
}

async function* oneMessage<T>(m: T): AsyncIterable<T> {
  yield m;
}

async function single(src: AsyncIterable<unknown>): Promise<unknown> {
  for await (const m of src) return m;
  throw new ConnectError('protocol error: missing input message', Code.Unimplemented);
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const k of [...to.keys()]) to.delete(k);
  for (const [k, v] of from) to.set(k, v);
}

function asConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  return new ConnectError('internal error', Code.Internal, undefined, undefined, e);
}

function incomplete(): ConnectError {
  return new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument);
}

// Messages of a client stream, handed to the handler as an AsyncIterable.
class InputQueue implements AsyncIterable<unknown> {
  private readonly items: unknown[] = [];
  private ended = false;
  private error: unknown;
  private waiter: (() => void) | undefined;
  private paused = false;

  constructor(private readonly stream: ServerHttp2Stream) {}

  push(m: unknown): void {
    this.items.push(m);
    if (this.items.length >= INPUT_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(e: unknown): void {
    if (this.error === undefined) this.error = e;
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    for (;;) {
      if (this.items.length > 0) {
        const m = this.items.shift();
        if (this.paused && this.items.length < INPUT_HIGH_WATER / 2) {
          this.paused = false;
          this.stream.resume();
        }
        yield m;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}
