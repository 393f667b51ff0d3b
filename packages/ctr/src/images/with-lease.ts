import { randomBytes } from 'node:crypto';
import type { CallOptions } from '@connectrpc/connect';
import { LeasesService } from '@ctrd/api-proto/leases';
import type { Clients } from '../clients.js';

// Content and snapshots made during an import, unpack or container create are unreferenced until
// the image or container record that uses them exists: a lease holds them against the garbage
// collector meanwhile, as containerd's client does (leases.WithRandomID + a 24-hour gc.expire, so
// a crashed ctr's lease still expires).

export const LEASE_HEADER = 'containerd-lease';
const EXPIRE_LABEL = 'containerd.io/gc.expire';
const DAY_MS = 24 * 60 * 60 * 1000;

/** Options for one call: the lease header when there is a lease, and the caller's signal. */
export function callOptions(lease?: string, signal?: AbortSignal): CallOptions {
  const opts: CallOptions = {};
  if (lease) opts.headers = { [LEASE_HEADER]: lease };
  if (signal) opts.signal = signal;
  return opts;
}

/** `<nanoseconds>-<6 hex>`: unique enough and always a valid containerd identifier. */
export function randomLeaseId(): string {
  const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  return `${nanos}-${randomBytes(3).toString('hex')}`;
}

/**
 * Runs `fn` under a new lease and deletes the lease afterwards, whether `fn` succeeded or not. The
 * lease id is passed to `fn`, which sends it with every call that creates something.
 */
export async function withLease<T>(
  clients: Clients,
  fn: (lease: string) => Promise<T>,
  opts: { signal?: AbortSignal } = {},
): Promise<T> {
  const leases = clients.get(LeasesService);
  const id = randomLeaseId();
  const expire = new Date(Date.now() + DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await leases.create({ id, labels: { [EXPIRE_LABEL]: expire } }, callOptions(undefined, opts.signal));
  try {
    return await fn(id);
  } finally {
    // The lease must go even when the caller gave up; an expired lease is collected anyway.
    await leases.delete({ id, sync: false }).catch(() => undefined);
  }
}
