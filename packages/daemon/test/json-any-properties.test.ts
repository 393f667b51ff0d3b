import { create, type JsonValue } from '@bufbuild/protobuf';
import { type Any, AnySchema } from '@bufbuild/protobuf/wkt';
import { InvalidArgument, OCI_LINUX_RESOURCES_URL, OCI_PROCESS_URL, OCI_SPEC_URL } from '@ctrd/api-proto';
import { ContainerSchema, CreateContainerRequestSchema } from '@ctrd/api-proto/containers';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { BYTES_VALUE_URL, jsonAnyInterceptor, VALUE_MAX_DEPTH, VALUE_URL } from '../src/json-any.js';
import { anyOf, jsonAnyRig, seen, valueAny } from './json-any-support.js';

// Property tests of the Connect JSON rewrite of OCI Anys: whatever a stored spec holds, a JSON
// Get answers (with the JSON as a Value when a Value can carry it, else the exact bytes); whatever
// a JSON request carries becomes OCI JSON of its field's type or an InvalidArgument; nothing
// pollutes Object.prototype.

const RUNS = Number(process.env.CTRD_FUZZ_RUNS) || 150;
const params = { numRuns: RUNS, timeout: 5_000 };
const TEST_TIMEOUT_MS = 60_000;
const encoder = new TextEncoder();

const prototypeNames = Object.getOwnPropertyNames(Object.prototype);
afterEach(() => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeNames);
});

/** JSON text with hostile keys, duplicates, huge and tiny numbers, escapes and long strings. */
const hostileJson: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(
      'null',
      'true',
      '0',
      '-0',
      '1e400',
      '-1e400',
      '1e-400',
      '18446744073709551615',
      '1.5e308',
    ),
    fc.string({ unit: 'binary', maxLength: 20 }).map((s) => JSON.stringify(s)),
    fc.constantFrom('"\\ud800"', '"\\u0000"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"'),
    fc.integer({ min: 0, max: 50_000 }).map((n) => JSON.stringify('x'.repeat(n))),
    fc.array(tie('value'), { maxLength: 4 }).map((vs) => `[${vs.join(',')}]`),
    fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', '', 'a'),
            fc.string(),
          ),
          tie('value'),
        ),
        { maxLength: 4 },
      )
      .map((kvs) => `{${kvs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
})).value;

const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 3 * VALUE_MAX_DEPTH }), fc.constantFrom('[', '{"k":'))
  .map(([n, open]) => `${open.repeat(n)}1${(open === '[' ? ']' : '}').repeat(n)}`);

const specBytes = fc.oneof(
  fc.uint8Array({ maxLength: 500 }),
  fc.json({ maxDepth: 6 }).map((t) => encoder.encode(t)),
  hostileJson.map((t) => encoder.encode(t)),
  deepJson.map((t) => encoder.encode(t)),
);

/**
 * What a Value carries exactly: JSON at most VALUE_MAX_DEPTH deep, with finite numbers, well-formed
 * strings and no __proto__ key.
 */
function valueCarries(bytes: Uint8Array): { json: unknown } | undefined {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  const loneSurrogate = /\p{Cs}/u;
  const fits = (v: unknown, depth: number): boolean => {
    if (typeof v === 'number') return Number.isFinite(v);
    if (typeof v === 'string') return !loneSurrogate.test(v);
    if (v === null || typeof v !== 'object') return true;
    if (depth >= VALUE_MAX_DEPTH) return false;
    if (Array.isArray(v)) return v.every((x) => fits(x, depth + 1));
    if (Object.hasOwn(v, '__proto__')) return false;
    return Object.entries(v).every(([k, x]) => !loneSurrogate.test(k) && fits(x, depth + 1));
  };
  return fits(json, 0) ? { json } : undefined;
}

/** JSON as it reads back after the trip through a double: -0 is 0. */
const normal = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

describe('Connect JSON responses', () => {
  it(
    'a stored spec of any bytes reads as its JSON in a Value, or as its exact bytes',
    async () => {
      const rig = jsonAnyRig();
      await fc.assert(
        fc.asyncProperty(specBytes, async (bytes) => {
          rig.spec = anyOf(OCI_SPEC_URL, bytes);
          const res = await rig.containers.get({ id: 'c' });
          const carried = valueCarries(bytes);
          if (carried) expect(normal(seen(res.container?.spec))).toEqual({ json: normal(carried.json) });
          else expect(seen(res.container?.spec)).toEqual({ bytes: Buffer.from(bytes).toString('hex') });
        }),
        params,
      );
    },
    TEST_TIMEOUT_MS,
  );
});

describe('Connect JSON requests', () => {
  // Keys named __proto__ are dropped by protobuf-es when the client builds the Value, before
  // the daemon sees anything; nothing here can bring them back.
  const jsonValue = fc
    .jsonValue({ maxDepth: 8 })
    .filter((v) => !JSON.stringify(v).includes('"__proto__":'))
    .map((v) => v as JsonValue);

  it(
    'a Value in an OCI field becomes OCI JSON of that field type with the same content',
    async () => {
      const rig = jsonAnyRig();
      await fc.assert(
        fc.asyncProperty(jsonValue, fc.constantFrom('spec', 'exec', 'update'), async (value, where) => {
          let got: Any | undefined;
          if (where === 'spec') {
            await rig.containers.create({ container: { id: 'c', spec: valueAny(value) } });
            got = rig.created?.spec;
            expect(got?.typeUrl).toBe(OCI_SPEC_URL);
          } else if (where === 'exec') {
            await rig.tasks.exec({ containerId: 'c', execId: 'e', spec: valueAny(value) });
            got = rig.exec?.spec;
            expect(got?.typeUrl).toBe(OCI_PROCESS_URL);
          } else {
            await rig.tasks.update({ containerId: 'c', resources: valueAny(value) });
            got = rig.update?.resources;
            expect(got?.typeUrl).toBe(OCI_LINUX_RESOURCES_URL);
          }
          expect(JSON.parse(Buffer.from(got!.value).toString())).toEqual(normal(value));
        }),
        params,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'any bytes in a Value or BytesValue Any, in any field: rewritten or InvalidArgument',
    async () => {
      const call = jsonAnyInterceptor(async (req) => ({ stream: false, message: req.message }) as never);
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 500 }),
          fc.constantFrom(VALUE_URL, 'google.protobuf.Value', BYTES_VALUE_URL),
          fc.boolean(),
          async (bytes, typeUrl, inSpec) => {
            const any = create(AnySchema, { typeUrl, value: bytes });
            const container = create(
              ContainerSchema,
              inSpec ? { id: 'c', spec: any } : { id: 'c', extensions: { x: any } },
            );
            const message = create(CreateContainerRequestSchema, { container });
            const req = {
              header: new Headers({ 'content-type': 'application/json' }),
              stream: false,
              message,
            } as unknown as Parameters<typeof call>[0];
            try {
              await call(req);
            } catch (err) {
              if (!(err instanceof InvalidArgument)) throw err;
            }
          },
        ),
        params,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
