import type { HandlerContext, Interceptor, StreamRequest, UnaryRequest } from '@connectrpc/connect';

// How a server of ours runs a handler inside Connect interceptors without Connect's own handler
// machinery: the gRPC fast path (grpc-server.ts) and the ttrpc server share it, so interceptors and
// handlers see the same request and context on every transport.

/** Wraps `fn` in `interceptors`, the first outermost, as Connect orders them. */
export function chain<T>(fn: T, interceptors: readonly Interceptor[]): T {
  let next = fn as unknown as Parameters<Interceptor>[0];
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next as unknown as T;
}

// The interceptors' view of the call; the signal is read through, not copied (a handler that never
// looks at its signal never makes one).
export function request(ctx: HandlerContext, stream: boolean, message: unknown) {
  return {
    stream,
    message,
    method: ctx.method,
    requestMethod: ctx.requestMethod,
    url: ctx.url,
    get signal() {
      return ctx.signal;
    },
    header: ctx.requestHeader,
    service: ctx.service,
    contextValues: ctx.values,
  };
}

// What an interceptor changed on the request reaches the handler, as in Connect.
export function merge(ctx: HandlerContext, req: UnaryRequest | StreamRequest): HandlerContext {
  // Spelled out rather than spread: a spread would read (and so create) the signal.
  return {
    method: ctx.method,
    timeoutMs: ctx.timeoutMs,
    requestMethod: ctx.requestMethod,
    responseHeader: ctx.responseHeader,
    responseTrailer: ctx.responseTrailer,
    protocolName: ctx.protocolName,
    url: ctx.url,
    service: req.service,
    requestHeader: req.header,
    values: req.contextValues,
    get signal() {
      return req.signal;
    },
  };
}
