import { connect as netConnect } from 'node:net';
import type { DescService } from '@bufbuild/protobuf';
import type { Client, Interceptor, Transport } from '@connectrpc/connect';
import { createClient as createConnectClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { withErrorClasses } from './error-interceptors.js';
import { createGrpcUnaryTransport } from './grpc-transport.js';
import { namespaceInterceptor } from './namespace-headers.js';
import { socketPath } from './socket-path.js';

export { MAX_SOCKET_PATH, socketPath } from './socket-path.js';

// Clients speak gRPC over HTTP/2 on a unix socket: that is what a stock containerd expects, and
// ctrd's own server answers it too. The socket is dialed through http2's createConnection, so
// the URL's host is only a placeholder for the :authority header.

/** containerd's default client and server limit for one message. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface UnixTransportOptions {
  /** `unix:///run/ctrd/ctrd.sock` or `/run/ctrd/ctrd.sock`. */
  address: string;
  /** Sent as `containerd-namespace` on every call that does not set its own. */
  namespace?: string | undefined;
  /** Sent as `containerd-lease` on every call that does not set its own. */
  lease?: string | undefined;
  /** Default deadline of each call, unless the call gives `timeoutMs`. */
  timeoutMs?: number | undefined;
  /** Run after the namespace interceptor, before the error mapping. */
  interceptors?: Interceptor[] | undefined;
}

export interface UnixTransport extends Transport {
  /** Closes the HTTP/2 connection; calls under way fail. The transport can't be reused. */
  close(): void;
}

export type ClientOptions =
  | UnixTransportOptions
  | {
      /** Share one connection between clients of several services (see createUnixTransport). */
      transport: Transport;
    };

/** A gRPC transport over one HTTP/2 connection to a unix socket. */
export function createUnixTransport(opts: UnixTransportOptions): UnixTransport {
  const path = socketPath(opts.address);
  const baseUrl = 'http://localhost';
  const sessionManager = new Http2SessionManager(baseUrl, undefined, {
    createConnection: () => netConnect(path),
    // nghttp2's default 10 MB session budget would reset a stream carrying a 16 MiB message.
    maxSessionMemory: 64,
  });
  const interceptors: Interceptor[] = [];
  if (opts.namespace !== undefined || opts.lease !== undefined) {
    interceptors.push(namespaceInterceptor({ namespace: opts.namespace, lease: opts.lease }));
  }
  interceptors.push(...(opts.interceptors ?? []));
  const streams = createGrpcTransport({
    baseUrl,
    sessionManager,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    ...(opts.timeoutMs !== undefined ? { defaultTimeoutMs: opts.timeoutMs } : {}),
    interceptors,
  });
  const transport = createGrpcUnaryTransport({
    sessionManager,
    streams,
    interceptors,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    defaultTimeoutMs: opts.timeoutMs,
  });
  return withErrorClasses({
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close: () => sessionManager.abort(),
  });
}

/**
 * A typed client of `service` on a unix socket:
 * `createClient(ContainersService, { address: '/run/ctrd/ctrd.sock', namespace: 'default' })`,
 * or on a shared transport: `createClient(TasksService, { transport })`.
 * Errors arrive as ctrd's classes (NotFound, AlreadyExists, ...).
 */
export function createClient<T extends DescService>(service: T, opts: ClientOptions): Client<T> {
  const transport = 'transport' in opts ? withErrorClasses(opts.transport) : createUnixTransport(opts);
  return createConnectClient(service, transport);
}
