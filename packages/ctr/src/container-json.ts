import { isJsonAny, typeNameFromUrl, unpackJson } from '@ctrd/api-proto/client';
import { unpackAny } from '@ctrd/api-proto/registry';
import { toJson } from '@bufbuild/protobuf';
import { typeRegistry } from '@ctrd/api-proto/registry';
import type { Any } from '@bufbuild/protobuf/wkt';
import type { Container } from '@ctrd/api-proto/containers';
import { sortedLabels } from './labels.js';
import { isoTime } from './time.js';

export interface ContainerJson {
  id: string;
  image: string;
  runtime: { name: string; options?: unknown };
  labels: Record<string, string>;
  snapshotter: string;
  snapshotKey: string;
  createdAt?: string;
  updatedAt?: string;
  /** Only in `containers info`: the OCI runtime spec, decoded. */
  spec?: unknown;
  /** Only in `containers info`: extension type URLs by name. */
  extensions?: Record<string, string>;
}

/** An Any as JSON: OCI JSON values parsed, known protos in proto3 JSON, others by type URL only. */
export function anyToJson(any: Any | undefined): unknown {
  if (!any || any.typeUrl === '') return undefined;
  if (isJsonAny(any)) return unpackJson(any);
  const message = unpackAny(any);
  const schema = typeRegistry.getMessage(typeNameFromUrl(any.typeUrl));
  if (message && schema) return toJson(schema, message as never, { registry: typeRegistry });
  return { typeUrl: any.typeUrl };
}

export function containerJson(c: Container, detail = false): ContainerJson {
  const options = anyToJson(c.runtime?.options);
  const out: ContainerJson = {
    id: c.id,
    image: c.image,
    runtime: { name: c.runtime?.name ?? '', ...(options === undefined ? {} : { options }) },
    labels: sortedLabels(c.labels),
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
  };
  const created = isoTime(c.createdAt);
  const updated = isoTime(c.updatedAt);
  if (created) out.createdAt = created;
  if (updated) out.updatedAt = updated;
  if (detail) {
    out.spec = c.spec ? anyToJson(c.spec) : undefined;
    out.extensions = Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, v.typeUrl]));
  }
  return out;
}
