import type { HandlerContext, Interceptor } from '@connectrpc/connect';
import { FailedPrecondition } from './errors.js';
import { validateIdentifier } from './identifiers.js';

// The namespace and lease travel in gRPC metadata under containerd's names, so stock clients
// and servers understand ours.

export const NAMESPACE_HEADER = 'containerd-namespace';
/** The namespace's metadata key on ttrpc (containerd's namespaces.TTRPCHeader). */
export const TTRPC_NAMESPACE_HEADER = 'containerd-namespace-ttrpc';
export const LEASE_HEADER = 'containerd-lease';
export const DEFAULT_NAMESPACE = 'default';

// Headers joins repeated values with ", "; containerd takes the first value. Neither a
// namespace nor a lease id can contain a comma.
function firstValue(headers: Headers, name: string): string | undefined {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  const first = raw.split(',')[0]?.trim() ?? '';
  return first === '' ? undefined : first;
}

/**
 * The request's namespace, from `header` (default `containerd-namespace`). Throws
 * FailedPrecondition "namespace is required" when missing or empty, InvalidArgument when it is not
 * a valid identifier.
 */
export function namespaceFromHeaders(headers: Headers, header: string = NAMESPACE_HEADER): string {
  const ns = firstValue(headers, header);
  if (ns === undefined) {
    throw new FailedPrecondition(
      `namespace is required: set the ${header} header (clients: --namespace or CTRD_NAMESPACE)`,
    );
  }
  validateIdentifier(ns, 'namespace');
  return ns;
}

/**
 * namespaceFromHeaders on a handler's request headers: `containerd-namespace` on gRPC and
 * Connect, `containerd-namespace-ttrpc` on ttrpc (whose server puts the call's metadata in
 * `requestHeader`), as containerd reads each transport's own key. So one implementation serves both.
 */
export function namespaceFromContext(
  ctx: Pick<HandlerContext, 'requestHeader'> & { readonly protocolName?: string | undefined },
): string {
  return namespaceFromHeaders(
    ctx.requestHeader,
    ctx.protocolName === 'ttrpc' ? TTRPC_NAMESPACE_HEADER : NAMESPACE_HEADER,
  );
}

/** The request's lease id, if any. */
export function leaseFromHeaders(headers: Headers): string | undefined {
  return firstValue(headers, LEASE_HEADER);
}

export function leaseFromContext(ctx: Pick<HandlerContext, 'requestHeader'>): string | undefined {
  return leaseFromHeaders(ctx.requestHeader);
}

export interface NamespaceOptions {
  namespace?: string | undefined;
  lease?: string | undefined;
}

/**
 * Client interceptor that sets the namespace (and lease) header on every call, unless the call
 * already set its own (per-call override through `withNamespace`).
 */
export function namespaceInterceptor(opts: NamespaceOptions | (() => NamespaceOptions)): Interceptor {
  return (next) => async (req) => {
    const { namespace, lease } = typeof opts === 'function' ? opts() : opts;
    if (namespace && !req.header.has(NAMESPACE_HEADER)) req.header.set(NAMESPACE_HEADER, namespace);
    if (lease && !req.header.has(LEASE_HEADER)) req.header.set(LEASE_HEADER, lease);
    return next(req);
  };
}

/** Per-call options (`client.get(req, withNamespace('k8s.io'))`) carrying the headers. */
export function withNamespace(
  namespace: string,
  extra: {
    lease?: string | undefined;
    signal?: AbortSignal | undefined;
    timeoutMs?: number | undefined;
  } = {},
): { headers: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } {
  const headers: Record<string, string> = { [NAMESPACE_HEADER]: namespace };
  if (extra.lease) headers[LEASE_HEADER] = extra.lease;
  const out: { headers: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = { headers };
  if (extra.signal) out.signal = extra.signal;
  if (extra.timeoutMs !== undefined) out.timeoutMs = extra.timeoutMs;
  return out;
}
