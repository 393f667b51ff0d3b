import { ConnectError, type Transport } from '@connectrpc/connect';
import { createUnixTransport, toCtrdError } from '@ctrd/api-proto/client';

export type { UnixTransport } from '@ctrd/api-proto/client';

/** ctr speaks plain gRPC (not Connect) so it drives a stock containerd as well as ctrd. */
export function unixTransport(address: string) {
  return createUnixTransport({ address });
}

export interface CallDefaults {
  namespace: string;
  timeoutMs?: number;
  /** Receives one line per call when --debug is on. */
  trace?: (line: string) => void;
}

const toClass = (err: unknown): unknown => (err instanceof ConnectError ? toCtrdError(err) : err);

async function* mapStreamErrors<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* source;
  } catch (err) {
    throw toClass(err);
  }
}

/**
 * Every call carries the namespace in containerd's `containerd-namespace` header and the --timeout
 * deadline, and fails with @ctrd/api-proto's error classes whatever the transport (socket or in-memory);
 * wrapping the transport does that in one place for every service client.
 */
export function withCallDefaults(inner: Transport, defaults: CallDefaults): Transport {
  const header = (init: ConstructorParameters<typeof Headers>[0]): Headers => {
    const headers = new Headers(init);
    if (!headers.has('containerd-namespace')) headers.set('containerd-namespace', defaults.namespace);
    return headers;
  };
  const trace = defaults.trace;
  const traced = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    trace?.(`-> ${name} (namespace ${defaults.namespace})`);
    try {
      const result = await call();
      trace?.(`<- ${name} ok ${(performance.now() - started).toFixed(1)}ms`);
      return result;
    } catch (err) {
      const mapped = toClass(err);
      trace?.(
        `<- ${name} failed ${(performance.now() - started).toFixed(1)}ms: ${(mapped as Error).message}`,
      );
      throw mapped;
    }
  };
  const path = (method: { parent: { typeName: string }; name: string }) =>
    `/${method.parent.typeName}/${method.name}`;
  return {
    unary: (method, signal, timeoutMs, init, input, contextValues) =>
      traced(path(method), () =>
        inner.unary(method, signal, timeoutMs ?? defaults.timeoutMs, header(init), input, contextValues),
      ),
    stream: async (method, signal, timeoutMs, init, input, contextValues) => {
      const res = await traced(path(method), () =>
        inner.stream(method, signal, timeoutMs ?? defaults.timeoutMs, header(init), input, contextValues),
      );
      return { ...res, message: mapStreamErrors(res.message) };
    },
  };
}
