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
