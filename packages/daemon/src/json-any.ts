import {
  create,
  createRegistry,
  fromBinary,
  type JsonValue,
  type Registry,
  toBinary,
} from '@bufbuild/protobuf';
import { type Any, AnySchema, ValueSchema } from '@bufbuild/protobuf/wkt';
import type { Interceptor } from '@connectrpc/connect';
import { isJsonAny, OCI_SPEC_URL, typeRegistry } from '@ctrd/api-proto';

// Connect JSON (curl) needs every Any's type in a registry. Proto payloads (events, runc options,
// cgroups metrics) are in api-proto's registry. OCI specs are JSON bytes under a URL that names no
// proto type, so on the JSON path only they travel as google.protobuf.Value Anys holding the same
// JSON: readable in responses, and accepted in requests, where they become OCI JSON again. The
// gRPC path never sees this: stock clients get the bytes they sent.

export const VALUE_URL = 'type.googleapis.com/google.protobuf.Value';

export const jsonRegistry: Registry = createRegistry(typeRegistry, ValueSchema);

function isJsonRequest(header: Headers): boolean {
  const ct = header.get('content-type') ?? '';
  return ct.startsWith('application/json') || ct.startsWith('application/connect+json');
}

type Visit = (any: Any) => Any;

// Messages are plain objects; walk fields, lists and maps and rewrite Anys in place.
function walk(value: unknown, visit: Visit): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = walk(value[i], visit);
    return value;
  }
  const obj = value as Record<string, unknown>;
  if (obj.$typeName === 'google.protobuf.Any') return visit(obj as unknown as Any);
  for (const k of Object.keys(obj)) if (k !== '$typeName' && k !== '$unknown') obj[k] = walk(obj[k], visit);
  return obj;
}

function ociToValue(any: Any): Any {
  if (!isJsonAny(any)) return any;
  try {
    const json = JSON.parse(new TextDecoder().decode(any.value)) as JsonValue;
    return create(AnySchema, { typeUrl: VALUE_URL, value: toBinary(ValueSchema, valueFromJson(json)) });
  } catch {
    return any;
  }
}

function valueToOci(any: Any): Any {
  if (any.typeUrl !== VALUE_URL && any.typeUrl !== 'google.protobuf.Value') return any;
  const v = fromBinary(ValueSchema, any.value);
  return create(AnySchema, {
    typeUrl: OCI_SPEC_URL,
    value: new TextEncoder().encode(JSON.stringify(valueToJson(v))),
  });
}

function valueFromJson(json: JsonValue): ReturnType<typeof create<typeof ValueSchema>> {
  if (json === null) return create(ValueSchema, { kind: { case: 'nullValue', value: 0 } });
  if (typeof json === 'number') return create(ValueSchema, { kind: { case: 'numberValue', value: json } });
  if (typeof json === 'string') return create(ValueSchema, { kind: { case: 'stringValue', value: json } });
  if (typeof json === 'boolean') return create(ValueSchema, { kind: { case: 'boolValue', value: json } });
  if (Array.isArray(json)) {
    return create(ValueSchema, { kind: { case: 'listValue', value: { values: json.map(valueFromJson) } } });
  }
  const fields = Object.fromEntries(Object.entries(json).map(([k, v]) => [k, valueFromJson(v)]));
  return create(ValueSchema, { kind: { case: 'structValue', value: { fields } } });
}

function valueToJson(v: ReturnType<typeof create<typeof ValueSchema>>): JsonValue {
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
