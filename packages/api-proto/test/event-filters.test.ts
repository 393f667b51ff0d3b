import { create } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { ContainerCreateSchema, TaskCreateSchema, TaskExitSchema } from '../src/event-types.js';
import { envelopeAdaptor } from '../src/event-filters.js';
import { EnvelopeSchema } from '../src/events.js';
import { parseFilters } from '../src/filters.js';
import { ImageCreateSchema } from '../src/images.js';
import { packAny } from '../src/typeurl.js';

const envelopes = [
  create(EnvelopeSchema, {
    namespace: 'default',
    topic: '/tasks/exit',
    event: packAny(
      TaskExitSchema,
      create(TaskExitSchema, { containerId: 'web', id: 'web', pid: 9, exitStatus: 1 }),
    ),
  }),
  create(EnvelopeSchema, {
    namespace: 'other',
    topic: '/tasks/create',
    event: packAny(
      TaskCreateSchema,
      create(TaskCreateSchema, { containerId: 'db', io: { stdin: '/fifo/in', terminal: true } }),
    ),
  }),
  create(EnvelopeSchema, {
    namespace: 'default',
    topic: '/containers/create',
    event: packAny(
      ContainerCreateSchema,
      create(ContainerCreateSchema, {
        id: 'web',
        image: 'busybox',
        runtime: { name: 'io.containerd.runc.v2' },
      }),
    ),
  }),
  create(EnvelopeSchema, {
    namespace: 'default',
    topic: '/images/create',
    event: packAny(ImageCreateSchema, create(ImageCreateSchema, { name: 'busybox', labels: { 'a.b': 'c' } })),
  }),
  create(EnvelopeSchema, {
    namespace: 'default',
    topic: '/odd',
    event: create(AnySchema, { typeUrl: 'containerd.events.TaskExit', value: new Uint8Array([0xff]) }),
  }),
];

const pick = (...filters: string[]) =>
  envelopes.flatMap((e, i) => (parseFilters(filters).match(envelopeAdaptor(e)) ? [i] : []));

describe('envelope filters', () => {
  it('namespace and topic', () => {
    expect(pick('namespace==default')).toEqual([0, 2, 3, 4]);
    expect(pick('topic=="/tasks/exit"')).toEqual([0]);
    expect(pick('namespace==default,topic~="^/tasks/"')).toEqual([0]);
    expect(pick('topic=="/tasks/exit"', 'namespace==other')).toEqual([0, 1]);
  });

  it('event.<field> by proto name, nested messages and maps; numbers never match', () => {
    expect(pick('event.container_id==web')).toEqual([0]);
    expect(pick('event.id==web')).toEqual([0, 2]);
    expect(pick('event.io.stdin=="/fifo/in"')).toEqual([1]);
    expect(pick('event.io.terminal==true')).toEqual([1]);
    expect(pick('event.runtime.name==io.containerd.runc.v2')).toEqual([2]);
    expect(pick('event.labels.a.b==c')).toEqual([3]);
    expect(pick('event.pid==9')).toEqual([]);
    expect(pick('event.containerId==web')).toEqual([]);
    expect(pick('event')).toEqual([]);
  });
});
