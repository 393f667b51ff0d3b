import type { DescMessage, Message, Registry } from '@bufbuild/protobuf';
import { createRegistry } from '@bufbuild/protobuf';
import type { Any } from '@bufbuild/protobuf/wkt';
import * as cgroupsV1 from './gen/github.com/containerd/cgroups/stats/v1/metrics_pb.js';
import * as cgroupsV2 from './gen/github.com/containerd/cgroups/v2/stats/metrics_pb.js';
import * as containerEvents from './gen/github.com/containerd/containerd/api/events/container_pb.js';
import * as contentEvents from './gen/github.com/containerd/containerd/api/events/content_pb.js';
import * as imageEvents from './gen/github.com/containerd/containerd/api/events/image_pb.js';
import * as namespaceEvents from './gen/github.com/containerd/containerd/api/events/namespace_pb.js';
import * as snapshotEvents from './gen/github.com/containerd/containerd/api/events/snapshot_pb.js';
import * as taskEvents from './gen/github.com/containerd/containerd/api/events/task_pb.js';
import * as runcOptions from './gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js';
import { decode, isJsonAny, typeNameFromUrl } from './typeurl.js';

// The registry of every message type containerd carries in an Any. It loads the event, runc-option
// and cgroups schemas, so it lives apart from typeurl.ts: a client that only packs and unpacks known
// types (the ctr CLI) does not pay for loading them at start-up.

function schemasOf(mod: Record<string, unknown>): DescMessage[] {
  return Object.values(mod).filter(
    (v): v is DescMessage =>
      typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'message',
  );
}

/** Every message containerd puts in an Any that ctr decodes: events, runc options, cgroups metrics. */
export const typeRegistry: Registry = createRegistry(
  ...[
    taskEvents,
    containerEvents,
    namespaceEvents,
    contentEvents,
    snapshotEvents,
    imageEvents,
    runcOptions,
    cgroupsV1,
    cgroupsV2,
  ].flatMap((m) => schemasOf(m as Record<string, unknown>)),
);

/**
 * Decodes a proto Any by looking its type up in `registry` (default: typeRegistry). Returns
 * undefined for an unknown type or an empty Any; throws InvalidArgument for undecodable bytes.
 */
export function unpackAny(any: Any | undefined, registry: Registry = typeRegistry): Message | undefined {
  if (!any || any.typeUrl === '' || isJsonAny(any)) return undefined;
  const schema = registry.getMessage(typeNameFromUrl(any.typeUrl));
  if (!schema) return undefined;
  return decode(schema, any);
}
