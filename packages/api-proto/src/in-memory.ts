import type { DescService } from '@bufbuild/protobuf';
import type { Client, ConnectRouter, Interceptor, Transport } from '@connectrpc/connect';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { serverErrorInterceptor, withErrorClasses } from './error-interceptors.js';
import { namespaceInterceptor } from './namespace-headers.js';
import type { ServiceRegistration } from './server.js';

// Services run in memory with the same error mapping and headers as over a socket: the way to
// unit-test the daemon's services and the CLI without sockets.

export interface InMemoryOptions {
  routes?: ((router: ConnectRouter) => void) | undefined;
  services?: ServiceRegistration[] | undefined;
  namespace?: string | undefined;
  lease?: string | undefined;
  serverInterceptors?: Interceptor[] | undefined;
  clientInterceptors?: Interceptor[] | undefined;
}

export function createInMemoryTransport(opts: InMemoryOptions): Transport {
  const clientInterceptors: Interceptor[] = [];
  if (opts.namespace !== undefined || opts.lease !== undefined) {
    clientInterceptors.push(namespaceInterceptor({ namespace: opts.namespace, lease: opts.lease }));
  }
  clientInterceptors.push(...(opts.clientInterceptors ?? []));
  return withErrorClasses(
    createRouterTransport(
      (router) => {
        for (const s of opts.services ?? []) router.service(s.service, s.impl);
        opts.routes?.(router);
      },
      {
        router: { interceptors: [serverErrorInterceptor, ...(opts.serverInterceptors ?? [])] },
        transport: { interceptors: clientInterceptors },
      },
    ),
  );
}

/** A client of `service` served in memory by `opts.services` / `opts.routes`. */
export function createInMemoryClient<T extends DescService>(service: T, opts: InMemoryOptions): Client<T> {
  return createClient(service, createInMemoryTransport(opts));
}
