import {
  create,
  createRegistry,
  fromBinary,
  type JsonValue,
  type Registry,
  toBinary,
} from '@bufbuild/protobuf';
import { type Any, AnySchema, BytesValueSchema, type Value, ValueSchema } from '@bufbuild/protobuf/wkt';
import type { Interceptor } from '@connectrpc/connect';
import {
  InvalidArgument,
  isJsonAny,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  OCI_SPEC_URL,
  typeRegistry,
  unpackJson,
} from '@ctrd/api-proto';

// Connect JSON (curl) needs every Any's type in a registry. Proto payloads (events, runc options,
// cgroups metrics) are in api-proto's registry. OCI specs are JSON bytes under a URL that names no
// proto type, so on the JSON path only they travel as google.protobuf.Value Anys holding the same
// JSON: readable in responses, and accepted in requests, where they become OCI JSON again. The
// gRPC path never sees this: stock clients get the bytes they sent.
//
// A stored value a Value cannot carry exactly (not JSON; nested past what protobuf-es decodes;
// numbers past a double's range, lone surrogates, "__proto__" keys) goes out as a
// google.protobuf.BytesValue of its exact bytes instead, so one odd spec never fails a whole List;
// sent back in an OCI field, it becomes those bytes again.

export const VALUE_URL = 'type.googleapis.com/google.protobuf.Value';
export const BYTES_VALUE_URL = 'type.googleapis.com/google.protobuf.BytesValue';

export const jsonRegistry: Registry = createRegistry(typeRegistry, ValueSchema, BytesValueSchema);

/**
 * Deepest JSON a Value Any may hold: protobuf-es refuses 100 nested messages when it decodes one,
 * and each JSON level is a Value and a Struct or ListValue, with one more Value for the leaf.
 */
export const VALUE_MAX_DEPTH = 49;

/** Which OCI type each request field holding one carries; any other Value becomes a Spec. */
const OCI_FIELDS: Readonly<Record<string, string>> = {
  'containerd.services.containers.v1.Container.spec': OCI_SPEC_URL,
  'containerd.services.tasks.v1.ExecProcessRequest.spec': OCI_PROCESS_URL,
  'containerd.services.tasks.v1.UpdateTaskRequest.resources': OCI_LINUX_RESOURCES_URL,
};

function isJsonRequest(header: Headers): boolean {
  const ct = header.get('content-type') ?? '';
  return ct.startsWith('application/json') || ct.startsWith('application/connect+json');
}

/** Rewrites one Any; `field` is `<message type>.<field>` of where it was found. */
type Visit = (any: Any, field: string) => Any;

// Messages are plain objects; walk fields, lists and maps and rewrite Anys in place.
function walk(value: unknown, visit: Visit, field = ''): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = walk(value[i], visit, field);
    return value;
  }
  const obj = value as Record<string, unknown>;
  if (obj.$typeName === 'google.protobuf.Any') return visit(obj as unknown as Any, field);
  // A map (no $typeName) keeps the field it belongs to.
  const type = typeof obj.$typeName === 'string' ? obj.$typeName : undefined;
  for (const k of Object.keys(obj)) {
    if (k !== '$typeName' && k !== '$unknown') obj[k] = walk(obj[k], visit, type ? `${type}.${k}` : field);
  }
  return obj;
}

function ociToValue(any: Any): Any {
  if (!isJsonAny(any)) return any;
  let value: Value;
  try {
    value = valueFromJson(unpackJson<JsonValue>(any, undefined, { maxDepth: VALUE_MAX_DEPTH }));
  } catch (e) {
    if (!(e instanceof InvalidArgument)) throw e;
    return create(AnySchema, {
      typeUrl: BYTES_VALUE_URL,
      value: toBinary(BytesValueSchema, create(BytesValueSchema, { value: any.value })),
    });
  }
  return create(AnySchema, { typeUrl: VALUE_URL, value: toBinary(ValueSchema, value) });
}

function valueToOci(any: Any, field: string): Any {
  const oci = OCI_FIELDS[field];
  const isValue = any.typeUrl === VALUE_URL || any.typeUrl === 'google.protobuf.Value';
  const isBytes =
    oci !== undefined && (any.typeUrl === BYTES_VALUE_URL || any.typeUrl === 'google.protobuf.BytesValue');
  if (!isValue && !isBytes) return any;
  const what = field === '' ? any.typeUrl : `${field}: ${any.typeUrl}`;
  let bytes: Uint8Array;
  try {
    bytes = isBytes
      ? fromBinary(BytesValueSchema, any.value).value
      : new TextEncoder().encode(JSON.stringify(valueToJson(fromBinary(ValueSchema, any.value))));
  } catch (e) {
    if (e instanceof InvalidArgument) throw e;
    throw new InvalidArgument(`${what}: cannot decode: ${(e as Error).message}`, { cause: e });
  }
  return create(AnySchema, { typeUrl: oci ?? OCI_SPEC_URL, value: bytes });
}

// A lone surrogate (JSON may escape one, "\ud800") has no UTF-8 form: proto strings would
// turn it into U+FFFD.
const LONE_SURROGATE = /\p{Cs}/u;

function cannotCarry(why: string): InvalidArgument {
  return new InvalidArgument(`json: ${why} cannot be carried in a google.protobuf.Value`);
}

/** The Value holding `json`; throws InvalidArgument for what a Value cannot carry exactly. */
function valueFromJson(json: JsonValue): Value {
  if (json === null) return create(ValueSchema, { kind: { case: 'nullValue', value: 0 } });
  if (typeof json === 'number') {
    // JSON.parse gives Infinity for 1e400; the Value JSON mapping has no such number.
    if (!Number.isFinite(json)) throw cannotCarry(`the number ${json}`);
    return create(ValueSchema, { kind: { case: 'numberValue', value: json } });
  }
  if (typeof json === 'string') {
    if (LONE_SURROGATE.test(json)) throw cannotCarry('a lone surrogate');
    return create(ValueSchema, { kind: { case: 'stringValue', value: json } });
  }
  if (typeof json === 'boolean') return create(ValueSchema, { kind: { case: 'boolValue', value: json } });
  if (Array.isArray(json)) {
    return create(ValueSchema, { kind: { case: 'listValue', value: { values: json.map(valueFromJson) } } });
  }
  // protobuf-es keeps a Struct's fields in a plain object, where "__proto__" sets the prototype.
  if (Object.hasOwn(json, '__proto__')) throw cannotCarry('a "__proto__" key');
  const fields: Record<string, Value> = {};
  for (const [k, v] of Object.entries(json)) {
    if (LONE_SURROGATE.test(k)) throw cannotCarry('a lone surrogate');
    fields[k] = valueFromJson(v);
  }
  return create(ValueSchema, { kind: { case: 'structValue', value: { fields } } });
}

// fromBinary refuses 100 nested messages, so this recursion is at most 50 deep.
function valueToJson(v: Value): JsonValue {
  switch (v.kind.case) {
    case 'numberValue':
    case 'stringValue':
    case 'boolValue':
      return v.kind.value;
    case 'listValue':
      return v.kind.value.values.map(valueToJson);
    case 'structValue':
      return Object.fromEntries(Object.entries(v.kind.value.fields).map(([k, x]) => [k, valueToJson(x)]));
    default:
      return null;
  }
}

/** Server interceptor doing the rewrite for Connect JSON calls only. */
export const jsonAnyInterceptor: Interceptor = (next) => async (req) => {
  if (!isJsonRequest(req.header)) return next(req);
  if (!req.stream) walk(req.message, valueToOci);
  const res = await next(req);
  if (!res.stream) {
    walk(res.message, ociToValue);
    return res;
  }
  const source = res.message;
  return {
    ...res,
    message: (async function* () {
      for await (const m of source) yield walk(m, ociToValue) as typeof m;
    })(),
  };
};
