import { connect } from 'node:net';
import type { Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { socketPath } from './address.js';

/** ctr speaks plain gRPC (not Connect) so it can drive a stock containerd as well as ctrd. */
export function unixTransport(address: string): Transport {
  const path = socketPath(address);
  return createGrpcTransport({
    baseUrl: 'http://localhost',
    nodeOptions: { createConnection: () => connect(path) },
    // containerd's ctr allows 16 MiB messages; container specs and image indexes can be large.
    readMaxBytes: 16 << 20,
    writeMaxBytes: 16 << 20,
  });
}

export interface CallDefaults {
  namespace: string;
  timeoutMs?: number;
  /** Receives one line per call when --debug is on. */
  trace?: (line: string) => void;
}

/**
 * Every call carries the namespace in containerd's `containerd-namespace` header and the --timeout
 * deadline; wrapping the transport does that in one place for every service client.
 */
export function withCallDefaults(inner: Transport, defaults: CallDefaults): Transport {
  const header = (init: ConstructorParameters<typeof Headers>[0]): Headers => {
    const headers = new Headers(init);
    if (!headers.has('containerd-namespace')) headers.set('containerd-namespace', defaults.namespace);
    return headers;
  };
  const trace = defaults.trace;
  const traced = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    if (!trace) return call();
    const started = performance.now();
    trace(`-> ${name} (namespace ${defaults.namespace})`);
    try {
      const result = await call();
      trace(`<- ${name} ok ${(performance.now() - started).toFixed(1)}ms`);
      return result;
    } catch (err) {
      trace(`<- ${name} failed ${(performance.now() - started).toFixed(1)}ms: ${(err as Error).message}`);
      throw err;
    }
  };
  const path = (method: { parent: { typeName: string }; name: string }) =>
    `/${method.parent.typeName}/${method.name}`;
  return {
    unary: (method, signal, timeoutMs, init, input, contextValues) =>
      traced(path(method), () =>
        inner.unary(method, signal, timeoutMs ?? defaults.timeoutMs, header(init), input, contextValues),
      ),
    stream: (method, signal, timeoutMs, init, input, contextValues) =>
      traced(path(method), () =>
        inner.stream(method, signal, timeoutMs ?? defaults.timeoutMs, header(init), input, contextValues),
      ),
  };
}
