import { create, createRegistry, type DescMessage } from '@bufbuild/protobuf';
import { type Any, AnySchema, ValueSchema } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgument } from '../src/errors.js';
import { CheckpointOptionsSchema, OptionsSchema, ProcessDetailsSchema } from '../src/runc-options.js';
import { typeRegistry, unpackAny } from '../src/type-registry.js';
import {
  MAX_JSON_DEPTH,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  OCI_SPEC_URL,
  unpackAnyAs,
  unpackJson,
} from '../src/typeurl.js';
import { fuzzParams, PROPERTY_TEST_TIMEOUT_MS, unexpected } from './tar-fuzz-support.js';

// Property tests of Any decoding, JSON (OCI types) and proto alike: whatever the type URL and the
// bytes, decoding returns a value or throws InvalidArgument, never another error, never pollutes
// Object.prototype, and valid JSON within the limits decodes exactly as JSON.parse would.

const encoder = new TextEncoder();
const params = fuzzParams(300);

afterEach(() => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeNames);
});
const prototypeNames = Object.getOwnPropertyNames(Object.prototype);

function anyOf(typeUrl: string, value: Uint8Array): Any {
  return create(AnySchema, { typeUrl, value });
}

/** Runs `decode`; an InvalidArgument is fine, anything else is thrown for fast-check to report. */
function decodes(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch (err) {
    if (err instanceof InvalidArgument) return false;
    throw unexpected(err);
  }
}

const registered = [...typeRegistry].filter((t) => t.kind === 'message').map((t) => t.typeName);
const typeUrl = fc.oneof(
  fc.constantFrom(...registered),
  fc.constantFrom(...registered).map((n) => `type.googleapis.com/${n}`),
  fc.constantFrom(OCI_SPEC_URL, OCI_PROCESS_URL, OCI_LINUX_RESOURCES_URL, '', '/', 'google.protobuf.Value'),
  fc.string({ maxLength: 60 }),
);

/** JSON text built by hand: duplicate and hostile keys, huge numbers, long strings, odd escapes. */
const hostileKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'polluted',
  'toString',
  '',
  'a',
  'a',
);
const hostileJson: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(
      'null',
      'true',
      'false',
      '0',
      '-0',
      '1e400',
      '-1e-400',
      '18446744073709551615',
      '1.5e308',
    ),
    fc.double().map((d) => (Number.isFinite(d) ? JSON.stringify(d) : '0')),
    fc.string({ unit: 'binary', maxLength: 30 }).map((s) => JSON.stringify(s)),
    fc.constantFrom('"\\ud800"', '"\\u0000"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"'),
    fc.integer({ min: 0, max: 200_000 }).map((n) => JSON.stringify('x'.repeat(n))),
    fc.array(tie('value'), { maxLength: 4 }).map((vs) => `[${vs.join(',')}]`),
    fc
      .array(fc.tuple(fc.oneof(hostileKey, fc.string({ maxLength: 8 })), tie('value')), { maxLength: 4 })
      .map((kvs) => `{${kvs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
    fc
      .record({ polluted: tie('value') })
      .map(
        ({ polluted }) => `{"__proto__":{"polluted":${polluted}},"constructor":{"prototype":{"polluted":1}}}`,
      ),
  ),
})).value;

describe('unpackJson', () => {
  it(
    'arbitrary bytes under any type URL: a value or InvalidArgument',
    () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2000 }),
          typeUrl,
          fc.option(typeUrl),
          (bytes, url, expected) => {
            decodes(() => unpackJson(anyOf(url, bytes), expected ?? undefined));
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'valid JSON within the limits decodes exactly as JSON.parse does',
    () => {
      fc.assert(
        fc.property(fc.oneof(fc.json({ maxDepth: 8 }), hostileJson), (text) => {
          fc.pre(text.length < 300_000);
          expect(unpackJson(anyOf(OCI_SPEC_URL, encoder.encode(text)), OCI_SPEC_URL)).toEqual(
            JSON.parse(text),
          );
        }),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'JSON text, broken or not, never pollutes Object.prototype',
    () => {
      fc.assert(
        fc.property(hostileJson, fc.nat(), fc.nat({ max: 3 }), (text, at, cut) => {
          // Cut or splice the text at a random point: mostly invalid JSON now.
          const i = at % (text.length + 1);
          const broken = [text, text.slice(0, i), text.slice(0, i) + text.slice(i + 1), `${text}${text}`][
            cut
          ]!;
          const ok = decodes(() => unpackJson(anyOf(OCI_SPEC_URL, encoder.encode(broken))));
          if (ok) {
            const v = unpackJson<unknown>(anyOf(OCI_SPEC_URL, encoder.encode(broken)));
            if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
              expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
            }
          }
        }),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'nesting is refused past MAX_JSON_DEPTH and accepted up to it, however it is built',
    () => {
      const level = fc.constantFrom<[string, string]>(
        ['[', ']'],
        ['{"a":', '}'],
        ['[1,', ']'],
        ['{"[":"{","b":', '}'],
      );
      fc.assert(
        fc.property(fc.array(level, { minLength: 1, maxLength: 3 * MAX_JSON_DEPTH }), (levels) => {
          const text =
            levels.map(([open]) => open).join('') +
            'null' +
            levels
              .map(([, close]) => close)
              .reverse()
              .join('');
          const ok = decodes(() => unpackJson(anyOf(OCI_SPEC_URL, encoder.encode(text))));
          expect(ok).toBe(levels.length <= MAX_JSON_DEPTH);
        }),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});

describe('unpackAny and unpackAnyAs', () => {
  const schemas: DescMessage[] = [OptionsSchema, CheckpointOptionsSchema, ProcessDetailsSchema, ValueSchema];

  it(
    'arbitrary bytes under any type URL: a message, undefined, or InvalidArgument',
    () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2000 }), typeUrl, (bytes, url) => {
          decodes(() => unpackAny(anyOf(url, bytes)));
        }),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'arbitrary bytes as runc options and friends: a message or InvalidArgument',
    () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2000 }),
          fc.constantFrom(...schemas),
          fc.boolean(),
          (bytes, schema, prefixed) => {
            const url = prefixed ? `type.googleapis.com/${schema.typeName}` : schema.typeName;
            decodes(() => unpackAnyAs(anyOf(url, bytes), schema));
          },
        ),
        params,
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );

  it(
    'deeply nested proto messages are refused with InvalidArgument, not a stack overflow',
    () => {
      // google.protobuf.Value{list_value: ListValue{values: [Value{...}]}}, `depth` levels.
      const varint = (n: number) => {
        const out: number[] = [];
        while (n > 0x7f) {
          out.push((n & 0x7f) | 0x80);
          n >>>= 7;
        }
        out.push(n);
        return out;
      };
      // Level i's headers wrap levels 0..i-1, so every depth is a suffix of the deepest one.
      const MAX = 3_000;
      const heads: number[][] = [];
      let length = 0;
      for (let i = 0; i < MAX; i++) {
        const list = [0x0a, ...varint(length)];
        length += list.length;
        const value = [0x32, ...varint(length)];
        length += value.length;
        heads.push([...value, ...list]);
      }
      const deepest = Uint8Array.from(heads.reverse().flat());
      const suffix: number[] = [0];
      for (const h of [...heads].reverse()) suffix.push(suffix[suffix.length - 1]! + h.length);
      const nested = (depth: number) => deepest.subarray(deepest.length - suffix[depth]!);
      const registry = createRegistry(ValueSchema);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: MAX }), (depth) => {
          const ok = decodes(() => unpackAny(anyOf('google.protobuf.Value', nested(depth)), registry));
          // protobuf-es refuses 100 or more nested messages; each level here is two.
          expect(ok).toBe(2 * depth < 100);
        }),
        { ...fuzzParams(200), examples: [[49], [50], [1]] },
      );
    },
    PROPERTY_TEST_TIMEOUT_MS,
  );
});
