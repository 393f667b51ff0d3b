import type { ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { constants as h2 } from 'node:http2';
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { findTrailerError } from '@connectrpc/connect/protocol-grpc';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import { EnvelopeReader, envelope, webHeaders } from './grpc-envelope.js';

// Unary gRPC calls straight on an HTTP/2 stream of Connect's session manager (which keeps the
// connection: dialing, GOAWAY, reconnecting). Connect's own transport runs each call through a
// chain of async generators (framing, compression, parsing) and an abort controller linked to a
// deadline signal; for the small calls that make up a container's life (daemon→shim Create,
// Start, Wait; shim→daemon Events.Forward) that machinery costs more CPU than the call. Streaming
// calls, rare and long, stay with Connect's transport (`streams`), on the same connection.

const USER_AGENT = 'grpc-node-ctrd/1';

export interface GrpcUnaryTransportOptions {
  sessionManager: Http2SessionManager;
  /** Where streaming calls go: Connect's gRPC transport on the same session manager. */
  streams: Transport;
  interceptors: readonly Interceptor[];
  readMaxBytes: number;
  writeMaxBytes: number;
  defaultTimeoutMs?: number | undefined;
}

export function createGrpcUnaryTransport(opts: GrpcUnaryTransportOptions): Transport {
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const timeout =
        timeoutMs === undefined ? opts.defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
      const h = new Headers(header);
      h.set('content-type', 'application/grpc+proto');
      if (!h.has('user-agent')) h.set('user-agent', USER_AGENT);
      if (timeout !== undefined) h.set('grpc-timeout', `${timeout}m`);
      h.set('te', 'trailers');
      const path = `/${method.parent.typeName}/${method.name}`;
      const req = {
        stream: false,
        service: method.parent,
        method,
        requestMethod: 'POST',
        url: `http://localhost${path}`,
        header: h,
        signal: signal ?? NEVER,
        contextValues: contextValues ?? createContextValues(),
        message: create(method.input, input),
      } as unknown as UnaryRequest<I, O>;
      const call = (r: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> =>
        send(opts, method, path, timeout, r);
      let next = call as unknown as Parameters<Interceptor>[0];
      for (let i = opts.interceptors.length - 1; i >= 0; i--) next = opts.interceptors[i]!(next);
      return (await next(req as never)) as unknown as UnaryResponse<I, O>;
    },
    stream: opts.streams.stream.bind(opts.streams),
  };
}

const NEVER = new AbortController().signal;

async function send<I extends DescMessage, O extends DescMessage>(
  opts: GrpcUnaryTransportOptions,
  method: DescMethodUnary<I, O>,
  path: string,
  timeoutMs: number | undefined,
  req: UnaryRequest<I, O>,
): Promise<UnaryResponse<I, O>> {
  const signal = req.signal;
  if (signal.aborted) throw abortError(signal);
  let bytes: Uint8Array;
  try {
    bytes = toBinary(method.input, req.message);
  } catch (e) {
    throw new ConnectError(`serialize binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
  }
  if (bytes.byteLength > opts.writeMaxBytes) {
    throw new ConnectError(
      `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${opts.writeMaxBytes}`,
      Code.ResourceExhausted,
    );
  }
  const headers: OutgoingHttpHeaders = {};
  req.header.forEach((v, k) => {
    headers[k] = v;
  });
  let stream: ClientHttp2Stream;
  try {
    stream = await opts.sessionManager.request('POST', path, headers, {});
  } catch (e) {
    throw fromNodeError(e);
  }
  return new Promise<UnaryResponse<I, O>>((resolve, reject) => {
    const reader = new EnvelopeReader(opts.readMaxBytes);
    const messages: Uint8Array[] = [];
    let status = 0;
    let respHeader: Headers | undefined;
    let trailer: Headers | undefined;
    let failure: ConnectError | undefined;
    let timer: NodeJS.Timeout | undefined;
    const fail = (e: ConnectError): void => {
      failure ??= e;
      if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
    };
    const onAbort = (): void => fail(abortError(signal));
    // Calls without a signal share NEVER, which must not collect a listener per call.
    const listens = signal !== NEVER;
    if (listens) signal.addEventListener('abort', onAbort);
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => fail(new ConnectError('the operation timed out', Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
    stream.on('response', (hs: IncomingHttpHeaders) => {
      status = Number(hs[':status']);
      respHeader = webHeaders(hs);
    });
    stream.on('data', (chunk: Buffer) => {
      opts.sessionManager.notifyResponseByteRead(stream);
      try {
        for (const m of reader.push(chunk)) messages.push(m);
      } catch (e) {
        fail(e as ConnectError);
      }
    });
    stream.on('trailers', (hs: IncomingHttpHeaders) => {
      trailer = webHeaders(hs);
    });
    stream.on('error', (e: Error) => fail(fromNodeError(e)));
    stream.once('close', () => {
      if (listens) signal.removeEventListener('abort', onAbort);
      if (timer !== undefined) clearTimeout(timer);
      try {
        resolve(finish());
      } catch (e) {
        reject(e);
      }
    });
    stream.end(envelope(bytes));

    function finish(): UnaryResponse<I, O> {
      if (failure) throw failure;
      if (respHeader === undefined) {
        throw (
          resetError(stream.rstCode) ??
          new ConnectError('protocol error: the stream closed without a response', Code.Unavailable)
        );
      }
      if (status !== 200) throw new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), respHeader);
      // A trailers-only answer carries the status in the headers.
      const tr = trailer ?? new Headers();
      const err = findTrailerError(trailer ?? respHeader);
      if (err) {
        for (const [k, v] of respHeader) err.metadata.append(k, v);
        throw err;
      }
      if (!tr.has('grpc-status') && !respHeader.has('grpc-status')) {
        throw resetError(stream.rstCode) ?? new ConnectError('protocol error: missing status', Code.Internal);
      }
      if (reader.pending > 0) throw new ConnectError('protocol error: incomplete envelope', Code.Internal);
      if (messages.length !== 1) {
        throw new ConnectError(
          messages.length === 0
            ? 'protocol error: missing output message for unary method'
            : 'protocol error: received extra output message for unary method',
          Code.Unimplemented,
        );
      }
      let message: O extends DescMessage ? ReturnType<typeof fromBinary<O>> : never;
      try {
        message = fromBinary(method.output, messages[0]!) as never;
      } catch (e) {
        throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
      }
      return {
        stream: false,
        service: method.parent,
        method,
        header: respHeader,
        message,
        trailer: tr,
      } as unknown as UnaryResponse<I, O>;
    }
  });
}

function abortError(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason ?? new Error('the operation was aborted'), Code.Canceled);
}

// What a socket error means to a caller; the node error stays as `cause` (error-interceptors reads
// a dial failure from it).
function fromNodeError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const c =
    code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ETIMEDOUT'
      ? Code.Unavailable
      : code === 'ECONNRESET' ||
          code === 'EPIPE' ||
          code === 'ERR_STREAM_DESTROYED' ||
          code === 'ERR_HTTP2_INVALID_STREAM'
        ? Code.Aborted
        : Code.Internal;
  return new ConnectError(e instanceof Error ? e.message : String(e), c, undefined, undefined, e);
}

function resetError(rst: number | undefined): ConnectError | undefined {
  switch (rst) {
    case undefined:
    case h2.NGHTTP2_NO_ERROR:
      return undefined;
    case h2.NGHTTP2_REFUSED_STREAM:
      return new ConnectError(`http/2 stream closed with error code ${rst}`, Code.Unavailable);
    case h2.NGHTTP2_CANCEL:
      return new ConnectError(`http/2 stream closed with error code CANCEL (0x8)`, Code.Canceled);
    case h2.NGHTTP2_ENHANCE_YOUR_CALM:
      return new ConnectError(`http/2 stream closed with error code ${rst}`, Code.ResourceExhausted);
    default:
      return new ConnectError(`http/2 stream closed with error code ${rst}`, Code.Internal);
  }
}

// gRPC's mapping of HTTP status codes (PROTOCOL-HTTP2.md), for answers that are not gRPC.
function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}
