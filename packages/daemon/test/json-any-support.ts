import { clone, create, fromBinary, fromJson, type JsonValue, toBinary, toJson } from '@bufbuild/protobuf';
import { type Any, AnySchema, BytesValueSchema, ValueSchema } from '@bufbuild/protobuf/wkt';
import { type Client, createClient, createRouterTransport } from '@connectrpc/connect';
import { OCI_SPEC_URL, serverErrorInterceptor } from '@ctrd/api-proto';
import { type Container, ContainerSchema, ContainersService } from '@ctrd/api-proto/containers';
import {
  type ExecProcessRequest,
  ExecProcessRequestSchema,
  TasksService,
  type UpdateTaskRequest,
  UpdateTaskRequestSchema,
} from '@ctrd/api-proto/tasks';
import { jsonAnyInterceptor, jsonRegistry } from '../src/json-any.js';

// The JSON-Any rewrite served in memory over Connect JSON, as curl reaches the daemon: fake
// Containers and Tasks services that return a container with a given spec and record what
// requests arrive with.

export interface JsonAnyRig {
  containers: Client<typeof ContainersService>;
  tasks: Client<typeof TasksService>;
  /** The spec Containers.Get returns. */
  spec: Any;
  /** The last request each fake received, after the interceptor. */
  created?: Container | undefined;
  exec?: ExecProcessRequest | undefined;
  update?: UpdateTaskRequest | undefined;
}

export function jsonAnyRig(): JsonAnyRig {
  const rig = { spec: anyOf(OCI_SPEC_URL, '{}') } as JsonAnyRig;
  const jsonOptions = { registry: jsonRegistry };
  const transport = createRouterTransport(
    (router) => {
      router.service(
        ContainersService,
        {
          get: (req) => ({ container: { id: req.id, spec: rig.spec } }),
          create: (req) => {
            // A copy: the response rewrite changes the returned message in place.
            rig.created = req.container && clone(ContainerSchema, req.container);
            return { container: req.container };
          },
        },
        { jsonOptions },
      );
      router.service(
        TasksService,
        {
          exec: (req) => {
            rig.exec = clone(ExecProcessRequestSchema, req);
            return {};
          },
          update: (req) => {
            rig.update = clone(UpdateTaskRequestSchema, req);
            return {};
          },
        },
        { jsonOptions },
      );
    },
    {
      router: { interceptors: [serverErrorInterceptor, jsonAnyInterceptor] },
      transport: { useBinaryFormat: false, jsonOptions },
    },
  );
  rig.containers = createClient(ContainersService, transport);
  rig.tasks = createClient(TasksService, transport);
  return rig;
}

export function anyOf(typeUrl: string, value: string | Uint8Array): Any {
  return create(AnySchema, {
    typeUrl,
    value: typeof value === 'string' ? new TextEncoder().encode(value) : value,
  });
}

/** A google.protobuf.Value Any of `json`, as a Connect JSON client sends it. */
export function valueAny(json: JsonValue): Any {
  return anyOf(
    'type.googleapis.com/google.protobuf.Value',
    toBinary(ValueSchema, fromJson(ValueSchema, json)),
  );
}

export function bytesValueAny(bytes: Uint8Array): Any {
  return anyOf(
    'type.googleapis.com/google.protobuf.BytesValue',
    toBinary(BytesValueSchema, create(BytesValueSchema, { value: bytes })),
  );
}

/** What a Connect JSON client sees in an Any the rewrite produced: JSON, raw bytes, or neither. */
export function seen(any: Any | undefined): { json: JsonValue } | { bytes: string } | { typeUrl: string } {
  if (!any) throw new Error('no Any');
  if (any.typeUrl.endsWith('/google.protobuf.Value')) {
    return { json: toJson(ValueSchema, fromBinary(ValueSchema, any.value)) };
  }
  if (any.typeUrl.endsWith('/google.protobuf.BytesValue')) {
    return { bytes: Buffer.from(fromBinary(BytesValueSchema, any.value).value).toString('hex') };
  }
  return { typeUrl: any.typeUrl };
}
