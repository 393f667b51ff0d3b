import type { Interceptor, StreamResponse, Transport, UnaryResponse } from '@connectrpc/connect';
import { ConnectError } from '@connectrpc/connect';
import { errorKind, fromConnectError, toConnectError, Unavailable } from './errors.js';

// Streaming responses fail lazily, while the caller iterates, so the mapping also wraps the
// message iterable, not only the call.

async function* mapStreamErrors<T>(source: AsyncIterable<T>, map: (e: unknown) => unknown): AsyncIterable<T> {
  try {
    yield* source;
  } catch (e) {
    throw map(e);
  }
}

function mapErrors(map: (e: unknown) => unknown): Interceptor {
  return (next) => async (req) => {
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (e) {
      throw map(e);
    }
    if (res.stream) return { ...res, message: mapStreamErrors(res.message, map) };
    return res;
  };
}

// connect re-wraps whatever a transport interceptor throws into a ConnectError (keeping the
// original as `cause`), so a class converted inside an interceptor is found again there.
function toClass(e: unknown): unknown {
  if (errorKind(e)) return e;
  if (e instanceof ConnectError) {
    if (errorKind(e.cause)) return e.cause;
    const dial = dialError(e.cause);
    if (dial) return dial;
    return fromConnectError(e);
  }
  return e;
}

// connect reports a socket that cannot be dialed as Unknown; for a caller it is the server
// being unavailable, which is also what a gRPC Go client would say.
const DIAL_ERRORS = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EACCES', 'ENOTSOCK']);
function dialError(cause: unknown): Unavailable | undefined {
  if (!(cause instanceof Error)) return undefined;
  const { code, syscall } = cause as NodeJS.ErrnoException;
  if (syscall !== 'connect' || code === undefined || !DIAL_ERRORS.has(code)) return undefined;
  const hint =
    code === 'EACCES'
      ? 'permission denied: run as a user that may use the socket'
      : 'is the server running at this address?';
  return new Unavailable(`${cause.message}: ${hint}`, { cause });
}

/**
 * Client interceptor: ConnectError → ctrd error class. connect hands interceptor errors back as
 * a ConnectError whose `cause` is the class (the predicates such as isNotFound see through it);
 * to get the class itself thrown from every call, wrap the transport with withErrorClasses, as
 * createClient and createInMemoryClient do.
 */
export const clientErrorInterceptor: Interceptor = mapErrors(toClass);

/** Server interceptor: thrown ctrd error classes (and anything else) → ConnectError with the right code. */
export const serverErrorInterceptor: Interceptor = mapErrors(toConnectError);

/** A transport whose calls throw ctrd error classes (NotFound, ...) instead of ConnectError. */
export function withErrorClasses<T extends Transport>(transport: T): T {
  return {
    ...transport,
    async unary(...args: Parameters<Transport['unary']>) {
      try {
        return await transport.unary(...args);
      } catch (e) {
        throw toClass(e);
      }
    },
    async stream(...args: Parameters<Transport['stream']>) {
      let res: StreamResponse;
      try {
        res = await transport.stream(...args);
      } catch (e) {
        throw toClass(e);
      }
      return { ...res, message: mapStreamErrors(res.message, toClass) };
    },
  } as T;
}
