import { create, toBinary } from '@bufbuild/protobuf';
import { AnySchema, anyPack } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { MetricsSchema as V1Metrics } from '../src/cgroups/v1.js';
import { MetricsSchema as V2Metrics } from '../src/cgroups/v2.js';
import { InvalidArgument } from '../src/errors.js';
import { TaskExitSchema } from '../src/event-types.js';
import { ImageDeleteSchema } from '../src/images.js';
import { CheckpointOptionsSchema, ProcessDetailsSchema } from '../src/runc-options.js';
import {
  anyIs,
  isJsonAny,
  jsonNestsDeeperThan,
  MAX_JSON_DEPTH,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  OCI_SPEC_URL,
  packAny,
  packJson,
  typeNameFromUrl,
  unpackAnyAs,
  unpackJson,
} from '../src/typeurl.js';
import { unpackAny } from '../src/type-registry.js';

describe('typeurl', () => {
  it('packs with bare type URLs', () => {
    const exit = create(TaskExitSchema, { containerId: 'c', exitStatus: 3 });
    const any = packAny(TaskExitSchema, exit);
    expect(any.typeUrl).toBe('containerd.events.TaskExit');
    expect(any.value).toEqual(toBinary(TaskExitSchema, exit));
    expect(packAny(ImageDeleteSchema, create(ImageDeleteSchema, { name: 'x' })).typeUrl).toBe(
      'containerd.services.images.v1.ImageDelete',
    );
  });

  it('unpacks by registry, accepting both URL forms', () => {
    const exit = create(TaskExitSchema, { containerId: 'c', pid: 7 });
    const bare = unpackAny(packAny(TaskExitSchema, exit));
    expect(bare?.$typeName).toBe('containerd.events.TaskExit');
    const google = anyPack(TaskExitSchema, exit);
    expect(google.typeUrl).toBe('type.googleapis.com/containerd.events.TaskExit');
    expect(unpackAny(google)).toEqual(exit);
    expect(unpackAnyAs(google, TaskExitSchema).pid).toBe(7);
    expect(anyIs(google, TaskExitSchema)).toBe(true);
    for (const schema of [V1Metrics, V2Metrics, CheckpointOptionsSchema, ProcessDetailsSchema]) {
      expect(unpackAny(packAny(schema, create(schema)))?.$typeName).toBe(schema.typeName);
    }
    expect(
      unpackAny(create(AnySchema, { typeUrl: 'unknown.Type', value: new Uint8Array() })),
    ).toBeUndefined();
    expect(unpackAny(undefined)).toBeUndefined();
    expect(typeNameFromUrl('a.b.C')).toBe('a.b.C');
  });

  it('rejects corrupt or mismatched values with InvalidArgument', () => {
    const bad = create(AnySchema, {
      typeUrl: 'containerd.events.TaskExit',
      value: new Uint8Array([0xff, 0xff]),
    });
    expect(() => unpackAny(bad)).toThrow(InvalidArgument);
    expect(() => unpackAnyAs(packAny(V1Metrics, create(V1Metrics)), V2Metrics)).toThrow(
      /expected io.containerd.cgroups.v2.Metrics, got "io.containerd.cgroups.v1.Metrics"/,
    );
  });

  it('carries OCI types as JSON', () => {
    const spec = { ociVersion: '1.0.2', process: { args: ['sh'] } };
    const any = packJson(OCI_SPEC_URL, spec);
    expect(any.typeUrl).toBe('types.containerd.io/opencontainers/runtime-spec/1/Spec');
    expect(Buffer.from(any.value).toString()).toBe(JSON.stringify(spec));
    expect(isJsonAny(any)).toBe(true);
    expect(unpackAny(any)).toBeUndefined();
    expect(unpackJson(any, OCI_SPEC_URL)).toEqual(spec);
    expect(() => unpackJson(any, OCI_PROCESS_URL)).toThrow(InvalidArgument);
    expect(OCI_LINUX_RESOURCES_URL).toBe('types.containerd.io/opencontainers/runtime-spec/1/LinuxResources');
    const broken = create(AnySchema, { typeUrl: OCI_SPEC_URL, value: new Uint8Array([0x7b]) });
    expect(() => unpackJson(broken)).toThrow(InvalidArgument);
  });
});

describe('unpackJson limits', () => {
  const json = (text: string | Uint8Array) =>
    create(AnySchema, {
      typeUrl: OCI_SPEC_URL,
      value: typeof text === 'string' ? new TextEncoder().encode(text) : text,
    });

  it('measures nesting by the brackets outside strings', () => {
    expect(jsonNestsDeeperThan('{}', 0)).toBe(true);
    expect(jsonNestsDeeperThan('{}', 1)).toBe(false);
    expect(jsonNestsDeeperThan('[[],[[]],{"a":[]}]', 2)).toBe(true);
    expect(jsonNestsDeeperThan('[[],[[]],{"a":[]}]', 3)).toBe(false);
    expect(jsonNestsDeeperThan('["[[[[", "{{{{"]', 1)).toBe(false);
    // JSON text ["\\", "\\\"[[[[", "[["]: escaped backslashes and quotes stay inside strings.
    expect(jsonNestsDeeperThan(String.raw`["\\", "\\\"[[[[", "[["]`, 1)).toBe(false);
    expect(jsonNestsDeeperThan(String.raw`"\\"[[`, 1)).toBe(true);
  });

  it('refuses JSON nested deeper than MAX_JSON_DEPTH before parsing it', () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(unpackJson(json(deep(MAX_JSON_DEPTH)))).toHaveLength(1);
    expect(() => unpackJson(json(deep(MAX_JSON_DEPTH + 1)))).toThrow(InvalidArgument);
    // 100k levels: V8 parses it, but the first recursive walk of the result overflows the stack.
    const started = performance.now();
    expect(() => unpackJson(json(deep(100_000)))).toThrow(/nests deeper than 100 levels/);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(() => unpackJson(json('{"a":{"b":[1]}}'), undefined, { maxDepth: 2 })).toThrow(InvalidArgument);
  });

  it('refuses a value over the size limit, and bytes that are not UTF-8', () => {
    expect(() => unpackJson(json('"0123456789"'), undefined, { maxBytes: 8 })).toThrow(
      /value is 12 bytes, over the limit of 8/,
    );
    expect(unpackJson(json('"01234567"'), undefined, { maxBytes: 10 })).toBe('01234567');
    expect(() => unpackJson(json(new Uint8Array([0x22, 0xff, 0x22])))).toThrow(/not UTF-8/);
  });
});
