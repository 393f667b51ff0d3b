import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { FieldMaskSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { ContainerSchema, ContainersService, UpdateContainerRequestSchema } from '../src/containers.js';
import { TaskExitSchema, TaskOOMSchema } from '../src/event-types.js';
import { EnvelopeSchema } from '../src/events.js';
import { ImageCreateSchema } from '../src/images.js';
import { CreateTaskRequestSchema, TasksService } from '../src/tasks.js';
import { DescriptorSchema } from '../src/types.js';
import { VersionResponseSchema } from '../src/version.js';
import { ProcessSchema, Status } from '../src/task-types.js';
import { TaskService } from '../src/shim.js';
import { OptionsSchema } from '../src/runc-options.js';
import { MetricsSchema as V1Metrics } from '../src/cgroups/v1.js';
import { MetricsSchema as V2Metrics } from '../src/cgroups/v2.js';
import { EventHistoryService, ReplayRequestSchema } from '../src/eventhistory.js';
import { OCI_SPEC_URL, packAny, packJson } from '../src/typeurl.js';
import { toTimestamp } from '../src/timestamps.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('golden bytes', () => {
  it('VersionResponse', () => {
    const m = create(VersionResponseSchema, { version: 'v', revision: 'r' });
    expect(hex(toBinary(VersionResponseSchema, m))).toBe('0a0176120172');
  });

  it('Descriptor with a map (annotations = 5)', () => {
    const m = create(DescriptorSchema, { mediaType: 'm', digest: 'd', size: 3n, annotations: { k: 'v' } });
    // 1:"m" 2:"d" 3:3 5:{1:"k" 2:"v"}
    expect(hex(toBinary(DescriptorSchema, m))).toBe(
      ['0a016d', '120164', '1803', '2a060a016b120176'].join(''),
    );
  });

  it('Envelope with a bare-URL Any and a timestamp', () => {
    const oom = create(TaskOOMSchema, { containerId: 'c' });
    const env = create(EnvelopeSchema, {
      timestamp: { seconds: 1n, nanos: 2 },
      namespace: 'n',
      topic: '/t',
      event: packAny(TaskOOMSchema, oom),
    });
    const url = Buffer.from('containerd.events.TaskOOM').toString('hex');
    const any = ['0a19', url, '1203', '0a0163'].join('');
    expect(hex(toBinary(EnvelopeSchema, env))).toBe(
      ['0a0408011002', '12016e', '1a022f74', '2220', any].join(''),
    );
  });

  it('UpdateContainerRequest with a FieldMask', () => {
    const req = create(UpdateContainerRequestSchema, {
      container: { id: 'a' },
      updateMask: create(FieldMaskSchema, { paths: ['labels.x'] }),
    });
    // 1:{1:"a"} 2:{1:"labels.x"}
    expect(hex(toBinary(UpdateContainerRequestSchema, req))).toBe(
      `0a030a0161120a0a08${Buffer.from('labels.x').toString('hex')}`,
    );
  });

  it('Process: enum and exited_at = 10', () => {
    const p = create(ProcessSchema, { id: 'x', status: Status.STOPPED, exitedAt: { seconds: 5n, nanos: 0 } });
    expect(hex(toBinary(ProcessSchema, p))).toBe(['120178', '2003', '52020805'].join(''));
  });
});

describe('round trips', () => {
  it('Container with labels, runtime options Any, JSON spec Any, extensions and timestamps', () => {
    const c = create(ContainerSchema, {
      id: 'web',
      labels: { a: 'b', 'containerd.io/x': 'y' },
      image: 'docker.io/library/busybox:latest',
      runtime: {
        name: 'io.containerd.runc.v2',
        options: packAny(OptionsSchema, create(OptionsSchema, { binaryName: 'runc' })),
      },
      spec: packJson(OCI_SPEC_URL, { ociVersion: '1.0.2' }),
      snapshotter: 'overlayfs',
      snapshotKey: 'web',
      createdAt: toTimestamp(new Date('2024-01-02T03:04:05.678Z')),
      extensions: { e: packAny(TaskOOMSchema, create(TaskOOMSchema, { containerId: 'web' })) },
    });
    const back = fromBinary(ContainerSchema, toBinary(ContainerSchema, c));
    expect(back).toEqual(c);
    expect(back.runtime?.options?.typeUrl).toBe('containerd.runc.v1.Options');
    expect(back.spec?.typeUrl).toBe('types.containerd.io/opencontainers/runtime-spec/1/Spec');
    expect(back.updatedAt).toBeUndefined();
  });

  it('repeated fields, events and cgroups metrics', () => {
    const req = create(CreateTaskRequestSchema, {
      containerId: 'c',
      rootfs: [
        { type: 'overlay', source: 'overlay', options: ['lowerdir=/a', 'upperdir=/b'] },
        { type: 'bind', source: '/x', target: '/y', options: ['rbind'] },
      ],
      stdout: '/fifo/out',
      terminal: true,
      runtimePath: '/bin/shim',
    });
    expect(fromBinary(CreateTaskRequestSchema, toBinary(CreateTaskRequestSchema, req))).toEqual(req);

    const exit = create(TaskExitSchema, {
      containerId: 'c',
      id: 'c',
      pid: 42,
      exitStatus: 137,
      exitedAt: { seconds: 9n, nanos: 1 },
    });
    expect(fromBinary(TaskExitSchema, toBinary(TaskExitSchema, exit))).toEqual(exit);
    const img = create(ImageCreateSchema, { name: 'x', labels: { a: 'b' } });
    expect(fromBinary(ImageCreateSchema, toBinary(ImageCreateSchema, img))).toEqual(img);

    const v1 = create(V1Metrics, {
      memory: { usage: { usage: 10n, limit: 20n } },
      pids: { current: 3n, limit: 4n },
    });
    expect(fromBinary(V1Metrics, toBinary(V1Metrics, v1))).toEqual(v1);
    const v2 = create(V2Metrics, { memory: { usage: 10n }, cpu: { usageUsec: 5n } });
    expect(fromBinary(V2Metrics, toBinary(V2Metrics, v2))).toEqual(v2);
    const replay = create(ReplayRequestSchema, { filters: ['topic=="/tasks/exit"'], follow: true });
    expect(fromBinary(ReplayRequestSchema, toBinary(ReplayRequestSchema, replay))).toEqual(replay);
  });
});

describe('wire names', () => {
  it('packages, services and rpc kinds match containerd', () => {
    expect(ContainersService.typeName).toBe('containerd.services.containers.v1.Containers');
    expect(ContainersService.method.listStream.methodKind).toBe('server_streaming');
    expect(TasksService.typeName).toBe('containerd.services.tasks.v1.Tasks');
    expect(TaskService.typeName).toBe('containerd.task.v2.Task');
    expect(EventHistoryService.method.replay.output.typeName).toBe('containerd.services.events.v1.Envelope');
    expect(V1Metrics.typeName).toBe('io.containerd.cgroups.v1.Metrics');
    expect(V2Metrics.typeName).toBe('io.containerd.cgroups.v2.Metrics');
    expect(ImageCreateSchema.typeName).toBe('containerd.services.images.v1.ImageCreate');
  });

  it('field numbers from the reference', () => {
    const num = (schema: { fields: { name: string; number: number }[] }) =>
      Object.fromEntries(schema.fields.map((f) => [f.name, f.number]));
    expect(num(ContainerSchema)).toEqual({
      id: 1,
      labels: 2,
      image: 3,
      runtime: 4,
      spec: 5,
      snapshotter: 6,
      snapshot_key: 7,
      created_at: 8,
      updated_at: 9,
      extensions: 10,
    });
    expect(num(CreateTaskRequestSchema)).toEqual({
      container_id: 1,
      rootfs: 3,
      stdin: 4,
      stdout: 5,
      stderr: 6,
      terminal: 7,
      checkpoint: 8,
      options: 9,
      runtime_path: 10,
    });
    expect(num(DescriptorSchema)).toEqual({ media_type: 1, digest: 2, size: 3, annotations: 5 });
    expect(num(EnvelopeSchema)).toEqual({ timestamp: 1, namespace: 2, topic: 3, event: 4 });
    expect(num(ReplayRequestSchema)).toEqual({ since: 1, filters: 2, follow: 3 });
  });
});
