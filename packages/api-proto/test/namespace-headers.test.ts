import { describe, expect, it } from 'vitest';
import { NamespacesService } from '../src/namespaces.js';
import { addressFromEnv, namespaceFromEnv } from '../src/defaults.js';
import { FailedPrecondition, InvalidArgument } from '../src/errors.js';
import { createInMemoryClient } from '../src/in-memory.js';
import {
  DEFAULT_NAMESPACE,
  LEASE_HEADER,
  leaseFromContext,
  leaseFromHeaders,
  NAMESPACE_HEADER,
  namespaceFromContext,
  namespaceFromHeaders,
  TTRPC_NAMESPACE_HEADER,
  withNamespace,
} from '../src/namespace-headers.js';
import { service } from '../src/server.js';

describe('namespace headers', () => {
  it('reads exactly one value and validates it', () => {
    expect(NAMESPACE_HEADER).toBe('containerd-namespace');
    expect(LEASE_HEADER).toBe('containerd-lease');
    expect(DEFAULT_NAMESPACE).toBe('default');
    expect(namespaceFromHeaders(new Headers({ 'containerd-namespace': 'k8s.io' }))).toBe('k8s.io');
    // Sent twice, or as a list: one request, one namespace (containerd would take the first).
    const h = new Headers();
    h.append('containerd-namespace', 'a');
    h.append('containerd-namespace', 'b');
    for (const headers of [
      h,
      new Headers({ 'containerd-namespace': 'a,b' }),
      new Headers({ 'containerd-namespace': 'a,' }),
    ]) {
      expect(() => namespaceFromHeaders(headers)).toThrow(InvalidArgument);
      expect(() => namespaceFromHeaders(headers)).toThrow(
        /^namespace: exactly one containerd-namespace header value must be sent, got "a,/,
      );
    }
    const twice = new Headers();
    twice.append('containerd-namespace', 'a');
    twice.append('containerd-namespace', 'a');
    expect(() => namespaceFromHeaders(twice)).toThrow(InvalidArgument);
    const leases = new Headers({ 'containerd-namespace': 'a' });
    leases.append('containerd-lease', 'l1');
    leases.append('containerd-lease', 'l2');
    expect(() => leaseFromHeaders(leases)).toThrow(/^lease: exactly one containerd-lease header value/);
    expect(() => leaseFromHeaders(new Headers({ 'containerd-lease': '../x' }))).toThrow(InvalidArgument);
    expect(leaseFromHeaders(new Headers({ 'containerd-lease': 'l1' }))).toBe('l1');
    // Generated lease ids are not identifiers: "--" and a trailing "_" are fine.
    expect(leaseFromHeaders(new Headers({ 'containerd-lease': '1700000000000000000--a_' }))).toBe(
      '1700000000000000000--a_',
    );
    expect(leaseFromHeaders(new Headers())).toBeUndefined();
    expect(() => namespaceFromHeaders(new Headers())).toThrow(FailedPrecondition);
    expect(() => namespaceFromHeaders(new Headers())).toThrow(/^namespace is required/);
    expect(() => namespaceFromHeaders(new Headers({ 'containerd-namespace': '' }))).toThrow(
      FailedPrecondition,
    );
    expect(() => namespaceFromHeaders(new Headers({ 'containerd-namespace': '../x' }))).toThrow(
      InvalidArgument,
    );
  });

  it('reads containerd-namespace-ttrpc on ttrpc and only there, as containerd does', () => {
    expect(TTRPC_NAMESPACE_HEADER).toBe('containerd-namespace-ttrpc');
    const both = new Headers({ 'containerd-namespace': 'grpc-ns', 'containerd-namespace-ttrpc': 'ttrpc-ns' });
    expect(namespaceFromContext({ requestHeader: both })).toBe('grpc-ns');
    expect(namespaceFromContext({ requestHeader: both, protocolName: 'grpc' })).toBe('grpc-ns');
    expect(namespaceFromContext({ requestHeader: both, protocolName: 'ttrpc' })).toBe('ttrpc-ns');
    const grpcOnly = new Headers({ 'containerd-namespace': 'grpc-ns' });
    expect(() => namespaceFromContext({ requestHeader: grpcOnly, protocolName: 'ttrpc' })).toThrow(
      /^namespace is required: set the containerd-namespace-ttrpc header/,
    );
    const ttrpcOnly = new Headers({ 'containerd-namespace-ttrpc': 'ttrpc-ns' });
    expect(() => namespaceFromContext({ requestHeader: ttrpcOnly, protocolName: 'grpc' })).toThrow(
      FailedPrecondition,
    );
    expect(namespaceFromHeaders(ttrpcOnly, TTRPC_NAMESPACE_HEADER)).toBe('ttrpc-ns');
  });

  it('travel from client interceptor and per-call options to the handler', async () => {
    const seen: { ns: string; lease: string | undefined }[] = [];
    const services = [
      service(NamespacesService, {
        get: (req, ctx) => {
          seen.push({ ns: namespaceFromContext(ctx), lease: leaseFromContext(ctx) });
          return { namespace: { name: req.name } };
        },
      }),
    ];
    const client = createInMemoryClient(NamespacesService, { namespace: 'one', lease: 'l1', services });
    await client.get({ name: 'x' });
    await client.get({ name: 'x' }, withNamespace('two', { lease: 'l2' }));
    expect(seen).toEqual([
      { ns: 'one', lease: 'l1' },
      { ns: 'two', lease: 'l2' },
    ]);
    const bare = createInMemoryClient(NamespacesService, { services });
    await expect(bare.get({ name: 'x' })).rejects.toThrow(FailedPrecondition);
  });
});

describe('defaults from the environment', () => {
  it('prefers CTRD_* over CONTAINERD_* over the defaults', () => {
    expect(addressFromEnv({})).toBe('/run/ctrd/ctrd.sock');
    expect(addressFromEnv({ CONTAINERD_ADDRESS: '/c.sock' })).toBe('/c.sock');
    expect(addressFromEnv({ CONTAINERD_ADDRESS: '/c.sock', CTRD_ADDRESS: '/d.sock' })).toBe('/d.sock');
    expect(namespaceFromEnv({})).toBe('default');
    expect(namespaceFromEnv({ CONTAINERD_NAMESPACE: 'k8s.io' })).toBe('k8s.io');
    expect(namespaceFromEnv({ CONTAINERD_NAMESPACE: 'k8s.io', CTRD_NAMESPACE: 'x' })).toBe('x');
    expect(namespaceFromEnv({ CTRD_NAMESPACE: '' })).toBe('default');
  });
});
