import type { Interceptor } from '@connectrpc/connect';

/** What the interceptor needs of the store (MetaStore). */
export interface Durable {
  readonly changeCount: number;
  durable(): Promise<void>;
}

/**
 * A call that changed the metadata store answers only once the change is on disk (MetaStore's group
 * commit). Unary calls wait before their answer; client and bidi streams (Content.Write commits
 * there) before each message they send after a change. Server streams (Subscribe, List...) never
 * write, and are not held up by other calls' commits.
 */
export function durableInterceptor(store: Durable): Interceptor {
  return (next) => async (req) => {
    const before = store.changeCount;
    const res = await next(req);
    if (!res.stream) {
      if (store.changeCount !== before) await store.durable();
      return res;
    }
    const kind = req.method.methodKind;
    if (kind !== 'client_streaming' && kind !== 'bidi_streaming') return res;
    return { ...res, message: afterChanges(res.message, store, before) };
  };
}

async function* afterChanges<T>(
  messages: AsyncIterable<T>,
  store: Durable,
  before: number,
): AsyncIterable<T> {
  for await (const m of messages) {
    if (store.changeCount !== before) await store.durable();
    yield m;
  }
}
