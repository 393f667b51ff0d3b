import type { HandlerContext, Interceptor } from '@connectrpc/connect';
import { FailedPrecondition, InvalidArgument } from './errors.js';
import { validateIdentifier, validateLeaseId } from './identifiers.js';

// The namespace and lease travel in gRPC metadata under containerd's names, so stock clients
// and servers understand ours.

export const NAMESPACE_HEADER = 'containerd-namespace';
/** The namespace's metadata key on ttrpc (containerd's namespaces.TTRPCHeader). */
export const TTRPC_NAMESPACE_HEADER = 'containerd-namespace-ttrpc';
export const LEASE_HEADER = 'containerd-lease';
export const DEFAULT_NAMESPACE = 'default';

// Exactly one value. containerd takes the first of several, so `a` and `a, b` (or the header sent
// twice: HTTP/2 and Headers join repeated values with ", ") would name the same namespace while
// a proxy or a logger in front may well read the last one. A request is served in one namespace:
// anything else is InvalidArgument. No namespace or lease id contains a comma.
function singleValue(headers: Headers, name: string, what: string): string | undefined {
  const raw = headers.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw.includes(',')) {
    const shown = JSON.stringify(raw.length > 100 ? `${raw.slice(0, 100)}...` : raw);
    throw new InvalidArgument(
      `${what}: exactly one ${name} header value must be sent, got ${shown} (the header repeated, or a list)`,
    );
  }
  return raw;
}

/**
 * The request's namespace, from `header` (default `containerd-namespace`). Throws
 * FailedPrecondition "namespace is required" when missing or empty, InvalidArgument when it is not
 * a valid identifier.
 */
export function namespaceFromHeaders(headers: Headers, header: string = NAMESPACE_HEADER): string {
  const ns = singleValue(headers, header, 'namespace');
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

/** The request's lease id, if any; InvalidArgument unless it is one valid lease id. */
export function leaseFromHeaders(headers: Headers): string | undefined {
  const lease = singleValue(headers, LEASE_HEADER, 'lease');
  if (lease !== undefined) validateLeaseId(lease, 'lease');
  return lease;
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
