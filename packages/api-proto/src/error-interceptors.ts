import type { Interceptor, StreamResponse, UnaryResponse } from '@connectrpc/connect';
import { ConnectError } from '@connectrpc/connect';
import { fromConnectError, toConnectError } from './errors.js';

// Streaming responses fail lazily, while the caller iterates, so both interceptors also wrap
// the message iterable, not only the call.

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

const toClass = (e: unknown): unknown => (e instanceof ConnectError ? fromConnectError(e) : e);

/** Client interceptor: ConnectError → ctrd error class (NotFound, AlreadyExists, ...). */
export const clientErrorInterceptor: Interceptor = mapErrors(toClass);

/** Server interceptor: thrown ctrd error classes (and anything else) → ConnectError with the right code. */
export const serverErrorInterceptor: Interceptor = mapErrors(toConnectError);
