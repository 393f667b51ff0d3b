import { connect as netConnect, type Socket } from 'node:net';
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from '@bufbuild/protobuf';
import {
  type Client,
  Code,
  ConnectError,
  type ContextValues,
  createClient as createConnectClient,
  createContextValues,
  type Interceptor,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { withErrorClasses } from '../error-interceptors.js';
import {
  type KeyValue,
  RequestSchema,
  ResponseSchema,
} from '../gen/github.com/containerd/ttrpc/request_pb.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { NAMESPACE_HEADER, TTRPC_NAMESPACE_HEADER } from '../namespace-headers.js';
import { socketPath } from '../socket-path.js';
import {
  encodeFrame,
  type FrameEvent,
  FrameReader,
  MAX_MESSAGE_LENGTH,
  MessageType,
  oversizeMessage,
} from './frame.js';
import { errorFromStatus } from './status.js';

// A Connect Transport that sends unary calls as ttrpc requests on one unix connection, so
// Connect's createClient gives a typed client for any DescService (createTtrpcClient). As Go's
// ttrpc client (client.go): calls are multiplexed on odd, growing stream ids and answered in any
// order; `timeout_nano` carries the time left; the namespace goes as `containerd-namespace-ttrpc`;
// a Status is an error with its code, turned into ctrd's classes by withErrorClasses as on gRPC.
//
// ttrpc has no cancel frame: a call cancelled through its AbortSignal (or past its deadline) fails
// at once here and its late answer is dropped; the server learns only from timeout_nano.
//
// The connection is dialed on the first call. A dial that fails fails the calls waiting on it, and
// the next call dials again. A connection that was up and is lost ends the transport, as it ends a
// Go client (containerd reads that as the shim being gone): every call then fails Unavailable
// ("ttrpc: closed"); make a new transport to reconnect. An idle connection does not keep the
// process alive.

export interface TtrpcTransportOptions {
  /** `unix:///run/containerd/s/<hash>` or a plain socket path. */
  address: string;
  /** Sent as `containerd-namespace-ttrpc` on every call that sets no namespace of its own. */
  namespace?: string | undefined;
  /** Default deadline of each call, unless the call gives `timeoutMs`. */
  timeoutMs?: number | undefined;
  /** Connect interceptors, run before the call goes out (inside the error mapping). */
  interceptors?: Interceptor[] | undefined;
  logger?: Logger | undefined;
}

export interface TtrpcTransport extends Transport {
  /** Closes the connection: calls under way and later calls fail Unavailable. */
  close(): void;
}

export type TtrpcClientOptions = TtrpcTransportOptions | { transport: Transport };

/**
 * A typed client of `service` over ttrpc:
 * `createTtrpcClient(TaskService, { address: 'unix:///run/containerd/s/…', namespace: 'default' })`,
 * or on a shared transport (`{ transport }`, see createTtrpcTransport, which can be closed).
 * Errors arrive as ctrd's classes (NotFound, ...). Streaming methods fail NotImplemented.
 */
export function createTtrpcClient<T extends DescService>(service: T, opts: TtrpcClientOptions): Client<T> {
  const transport = 'transport' in opts ? withErrorClasses(opts.transport) : createTtrpcTransport(opts);
  return createConnectClient(service, transport);
}

/** A Transport over one ttrpc connection to a unix socket. */
export function createTtrpcTransport(opts: TtrpcTransportOptions): TtrpcTransport {
  const path = socketPath(opts.address);
  const log = opts.logger ?? silentLogger;
  const interceptors = opts.interceptors ?? [];
  let conn: ClientConnection | undefined;
  let closed: ConnectError | undefined;

  const onEnd = (c: ClientConnection, wasUp: boolean): void => {
    if (c !== conn) return;
    conn = undefined;
    if (wasUp)
      closed ??= new ConnectError(`ttrpc: closed: the connection to ${path} was lost`, Code.Unavailable);
  };
  const connection = (): ClientConnection => {
    if (closed) throw closed;
    if (conn === undefined || conn.exhausted) {
      conn?.retire();
      conn = new ClientConnection(path, log, onEnd);
    }
    return conn;
  };

  const transport: TtrpcTransport = {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const timeout = timeoutMs === undefined ? opts.timeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
      const h = new Headers(header);
      if (opts.namespace && !h.has(TTRPC_NAMESPACE_HEADER) && !h.has(NAMESPACE_HEADER))
        h.set(TTRPC_NAMESPACE_HEADER, opts.namespace);
      const req = {
        stream: false,
        service: method.parent,
        method,
        requestMethod: 'POST',
        url: `ttrpc://localhost/${method.parent.typeName}/${method.name}`,
        header: h,
        signal: signal ?? NEVER,
        contextValues: contextValues ?? createContextValues(),
        message: create(method.input, input),
      } as unknown as UnaryRequest<I, O>;
      const send = (r: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => {
        if (r.signal.aborted) return Promise.reject(abortError(r.signal));
        const data = encodeRequest(method, r, timeout);
        return connection().call(data, method, r.signal, timeout) as Promise<UnaryResponse<I, O>>;
      };
      let next = send as unknown as Parameters<Interceptor>[0];
      for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
      return (await next(req as never)) as unknown as UnaryResponse<I, O>;
    },
    async stream(method) {
      throw new ConnectError(
        `method ${method.parent.typeName}/${method.name}: streaming is not supported over ttrpc here (unary calls only)`,
        Code.Unimplemented,
      );
    },
    close() {
      closed ??= new ConnectError('ttrpc: closed: the client was closed', Code.Unavailable);
      const c = conn;
      conn = undefined;
      c?.fail(closed);
    },
  };
  return withErrorClasses(transport);
}

const NEVER = new AbortController().signal;
const LAST_STREAM_ID = 0xffff_ffff;

// The Request frame's data; the limit is checked before anything is sent, as Go's client does
// (OversizedMessageError), so the connection stays usable.
function encodeRequest(
  method: DescMethodUnary,
  req: UnaryRequest,
  timeoutMs: number | undefined,
): Uint8Array {
  let payload: Uint8Array;
  try {
    payload = toBinary(method.input, req.message);
  } catch (e) {
    throw new ConnectError(`serialize binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
  }
  const metadata: { key: string; value: string }[] = [];
  const ownKey = req.header.has(TTRPC_NAMESPACE_HEADER);
  req.header.forEach((value, key) => {
    // withNamespace() and namespaceInterceptor() name the gRPC key; on ttrpc the namespace has its own.
    if (key === NAMESPACE_HEADER) {
      if (!ownKey) metadata.push({ key: TTRPC_NAMESPACE_HEADER, value });
      return;
    }
    metadata.push({ key, value });
  });
  const data = toBinary(
    RequestSchema,
    create(RequestSchema, {
      service: method.parent.typeName,
      method: method.name,
      payload,
      timeoutNano: timeoutMs === undefined ? 0n : BigInt(Math.max(1, Math.round(timeoutMs * 1e6))),
      metadata: metadata as KeyValue[],
    }),
  );
  if (data.byteLength > MAX_MESSAGE_LENGTH) {
    throw new ConnectError(oversizeMessage(data.byteLength), Code.ResourceExhausted);
  }
  return data;
}

interface Pending {
  method: DescMethodUnary;
  settle(res: UnaryResponse | undefined, err: ConnectError | undefined): void;
}

class ClientConnection {
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private up = false;
  private ended = false;
  private retired = false;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly onEnd: (c: ClientConnection, wasUp: boolean) => void,
  ) {
    this.socket = netConnect(path);
    this.socket.once('connect', () => {
      this.up = true;
    });
    this.socket.on('data', (chunk: Buffer) => {
      for (const ev of this.reader.push(chunk)) this.onFrame(ev);
    });
    this.socket.on('error', (err) => this.end(err));
    this.socket.once('close', () => this.end(undefined));
  }

  /** Stream ids are used up (2^31 calls): the transport moves to a new connection. */
  get exhausted(): boolean {
    return this.nextId > LAST_STREAM_ID;
  }

  /** No more calls here; the connection closes once the ones under way are answered. */
  retire(): void {
    this.retired = true;
    if (this.pending.size === 0) this.socket.end();
  }

  call(
    data: Uint8Array,
    method: DescMethodUnary,
    signal: AbortSignal,
    timeoutMs: number | undefined,
  ): Promise<UnaryResponse> {
    const id = this.nextId;
    this.nextId += 2;
    return new Promise<UnaryResponse>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const listens = signal !== NEVER;
      const onAbort = (): void => p.settle(undefined, abortError(signal));
      const p: Pending = {
        method,
        settle: (res, err) => {
          if (this.pending.get(id) !== p) return;
          this.pending.delete(id);
          if (timer !== undefined) clearTimeout(timer);
          if (listens) signal.removeEventListener('abort', onAbort);
          if (this.pending.size === 0) {
            if (this.retired) this.socket.end();
            else this.socket.unref();
          }
          if (err) reject(err);
          else resolve(res!);
        },
      };
      if (this.pending.size === 0) this.socket.ref();
      this.pending.set(id, p);
      if (listens) signal.addEventListener('abort', onAbort);
      // setTimeout fires at once beyond 2^31 - 1 ms (~24.8 days): longer deadlines get no timer.
      if (timeoutMs !== undefined && timeoutMs <= 2 ** 31 - 1) {
        timer = setTimeout(
          () => p.settle(undefined, new ConnectError('the operation timed out', Code.DeadlineExceeded)),
          timeoutMs,
        );
      }
      // Written at once; before the connection is up, Node queues it.
      this.socket.write(encodeFrame(id, MessageType.Request, 0, data));
    });
  }

  /** Fails every call under way with `err` and closes the connection. */
  fail(err: ConnectError): void {
    if (this.ended) return;
    this.ended = true;
    for (const p of [...this.pending.values()]) p.settle(undefined, err);
    this.socket.destroy();
    this.onEnd(this, this.up);
  }

  private end(cause: Error | undefined): void {
    if (this.ended) return;
    // A socket that never connected reports the dial error (ENOENT, ECONNREFUSED...), which
    // withErrorClasses words as Unavailable with a hint; a lost one reads like Go's ErrClosed.
    const err = this.up
      ? new ConnectError(
          `ttrpc: closed: the connection to ${this.path} was lost`,
          Code.Unavailable,
          undefined,
          undefined,
          cause,
        )
      : new ConnectError(
          cause?.message ?? `connect ${this.path}: the connection closed before it was up`,
          Code.Unavailable,
          undefined,
          undefined,
          cause,
        );
    this.fail(err);
  }

  private onFrame(ev: FrameEvent): void {
    const id = ev.header.streamId;
    const p = this.pending.get(id);
    if (p === undefined) {
      // An answer to a call given up (cancelled, past its deadline), or a stray frame.
      this.log.debug({ streamId: id }, 'ttrpc: frame for no pending call ignored');
      return;
    }
    if (ev.kind === 'oversize') {
      p.settle(undefined, new ConnectError(oversizeMessage(ev.header.length), Code.ResourceExhausted));
      return;
    }
    if (ev.header.type === MessageType.Data) {
      p.settle(undefined, new ConnectError('ttrpc: data frame received for a unary call', Code.Internal));
      return;
    }
    // Types this version does not know are ignored, as the protocol asks.
    if (ev.header.type !== MessageType.Response) return;
    try {
      const resp = fromBinary(ResponseSchema, ev.data);
      const err = errorFromStatus(resp.status);
      if (err) {
        p.settle(undefined, err);
        return;
      }
      const message = fromBinary(p.method.output, resp.payload);
      p.settle(
        {
          stream: false,
          service: p.method.parent,
          method: p.method,
          header: new Headers(),
          message,
          trailer: new Headers(),
        } as unknown as UnaryResponse,
        undefined,
      );
    } catch (e) {
      p.settle(
        undefined,
        new ConnectError(
          `ttrpc: cannot parse the response: ${e instanceof Error ? e.message : String(e)}`,
          Code.Internal,
        ),
      );
    }
  }
}

// An aborted call: DeadlineExceeded for AbortSignal.timeout(), Canceled otherwise.
function abortError(signal: AbortSignal): ConnectError {
  const reason = signal.reason as unknown;
  if (reason instanceof ConnectError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError')
    return new ConnectError(reason.message, Code.DeadlineExceeded, undefined, undefined, reason);
  return ConnectError.from(reason ?? new Error('the operation was aborted'), Code.Canceled);
}
