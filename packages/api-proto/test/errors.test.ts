import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { ContainersService } from '../src/containers.js';
import {
  AlreadyExists,
  Canceled,
  CtrdError,
  classify,
  codeFromKind,
  DeadlineExceeded,
  FailedPrecondition,
  fromConnectError,
  InvalidArgument,
  isAlreadyExists,
  isCanceled,
  isNotFound,
  isResourceExhausted,
  kindFromCode,
  NotFound,
  NotImplemented,
  ResourceExhausted,
  toConnectError,
  toCtrdError,
  Unavailable,
  Unknown,
} from '../src/errors.js';
import { createInMemoryClient } from '../src/in-memory.js';
import { service } from '../src/server.js';
import { ContainerSchema } from '../src/containers.js';

describe('error classes', () => {
  it('carry kind, code, message and cause', () => {
    const cause = new Error('disk');
    const e = new NotFound('container "web" in namespace "default": not found', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(CtrdError);
    expect(e).toBeInstanceOf(NotFound);
    expect(e).not.toBeInstanceOf(AlreadyExists);
    expect(e.kind).toBe('NotFound');
    expect(e.name).toBe('NotFound');
    expect(e.code).toBe(Code.NotFound);
    expect(e.cause).toBe(cause);
    expect(isNotFound(e)).toBe(true);
    expect(isAlreadyExists(e)).toBe(false);
  });

  it('instanceof works for an error from another copy of the package (same Symbol.for brand)', () => {
    // What a duplicated install produces: a different class, the same registered symbol.
    class Foreign extends Error {}
    const foreign = new Foreign('x');
    Object.defineProperty(foreign, Symbol.for('@ctrd/api-proto/error-kind'), { value: 'AlreadyExists' });
    expect(foreign instanceof AlreadyExists).toBe(true);
    expect(foreign instanceof CtrdError).toBe(true);
    expect(foreign instanceof NotFound).toBe(false);
    expect(isAlreadyExists(foreign)).toBe(true);
    expect({} instanceof CtrdError).toBe(false);
    expect((null as unknown as object) instanceof CtrdError).toBe(false);
  });

  it('map to gRPC codes like containerd errdefs', () => {
    const cases: [CtrdError, Code][] = [
      [new InvalidArgument('x'), Code.InvalidArgument],
      [new NotFound('x'), Code.NotFound],
      [new AlreadyExists('x'), Code.AlreadyExists],
      [new FailedPrecondition('x'), Code.FailedPrecondition],
      [new Unavailable('x'), Code.Unavailable],
      [new NotImplemented('x'), Code.Unimplemented],
      [new ResourceExhausted('x'), Code.ResourceExhausted],
      [new Canceled('x'), Code.Canceled],
      [new DeadlineExceeded('x'), Code.DeadlineExceeded],
      [new Unknown('x'), Code.Unknown],
    ];
    for (const [e, code] of cases) {
      const ce = toConnectError(e);
      expect(ce.code).toBe(code);
      expect(ce.rawMessage).toBe('x');
      expect(kindFromCode(code)).toBe(e.kind);
      expect(codeFromKind(e.kind)).toBe(code);
    }
    expect(toConnectError(new Error('boom')).code).toBe(Code.Unknown);
    expect(toConnectError('str').code).toBe(Code.Unknown);
    expect(kindFromCode(Code.Internal)).toBe('Unknown');
    expect(classify(new DOMException('a', 'AbortError'))).toBe('Canceled');
    expect(isCanceled(new DOMException('a', 'AbortError'))).toBe(true);
    const passthrough = new ConnectError('p', Code.PermissionDenied);
    expect(toConnectError(passthrough)).toBe(passthrough);
  });

  it('client side strips a trailing ": <class>" and says it once (FromGRPC)', () => {
    const a = fromConnectError(new ConnectError('container "x" in namespace "y": not found', Code.NotFound));
    expect(a).toBeInstanceOf(NotFound);
    expect(a.message).toBe('container "x" in namespace "y": not found');
    const b = fromConnectError(new ConnectError('task x', Code.NotFound));
    expect(b.message).toBe('task x: not found');
    const c = fromConnectError(new ConnectError('not found', Code.NotFound));
    expect(c.message).toBe('not found');
    const d = fromConnectError(
      new ConnectError('task must be stopped: running: failed precondition', Code.FailedPrecondition),
    );
    expect(d.message).toBe('task must be stopped: running: failed precondition');
    expect(fromConnectError(new ConnectError('x', Code.Unimplemented))).toBeInstanceOf(NotImplemented);
    expect(fromConnectError(new ConnectError('x', Code.DataLoss))).toBeInstanceOf(Unknown);
    expect(toCtrdError(new ConnectError('y', Code.AlreadyExists))).toBeInstanceOf(AlreadyExists);
    // unconverted ConnectErrors are still recognised by the predicates
    expect(isResourceExhausted(new ConnectError('big', Code.ResourceExhausted))).toBe(true);
  });

  it('survive a round trip through interceptors, unary and streaming', async () => {
    const client = createInMemoryClient(ContainersService, {
      namespace: 'default',
      services: [
        service(ContainersService, {
          get: (req) => {
            throw new NotFound(`container ${JSON.stringify(req.id)} in namespace "default"`);
          },
          create: () => {
            throw new Error('plain failure');
          },
          async *listStream() {
            yield { container: create(ContainerSchema, { id: 'a' }) };
            throw new FailedPrecondition('stream broke');
          },
        }),
      ],
    });
    const err = await client.get({ id: 'web' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFound);
    expect((err as Error).message).toBe('container "web" in namespace "default": not found');

    const err2 = await client.create({ container: { id: 'a' } }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(Unknown);
    expect((err2 as Error).message).toBe('plain failure: unknown');

    const seen: string[] = [];
    const err3 = await (async () => {
      for await (const m of client.listStream({})) seen.push(m.container?.id ?? '');
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['a']);
    expect(err3).toBeInstanceOf(FailedPrecondition);

    const err4 = await client.delete({ id: 'x' }).catch((e: unknown) => e);
    expect(err4).toBeInstanceOf(NotImplemented);
  });
});
