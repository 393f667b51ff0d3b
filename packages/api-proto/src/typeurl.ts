import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Any } from '@bufbuild/protobuf/wkt';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { InvalidArgument } from './errors.js';

// containerd 1.6 resolves an Any by its exact type URL, and its URLs are bare proto names
// (`containerd.events.TaskExit`); the `type.googleapis.com/` prefix protobuf-es's anyPack adds
// would not resolve in a stock ctr. So we pack by hand and accept both forms when unpacking.
// OCI runtime-spec values are not protos at all: containerd carries them as JSON.

const OCI_PREFIX = 'types.containerd.io/opencontainers/runtime-spec/1/';
export const OCI_SPEC_URL = `${OCI_PREFIX}Spec`;
export const OCI_PROCESS_URL = `${OCI_PREFIX}Process`;
export const OCI_LINUX_RESOURCES_URL = `${OCI_PREFIX}LinuxResources`;
export const OCI_WINDOWS_RESOURCES_URL = `${OCI_PREFIX}WindowsResources`;
export type OciTypeUrl =
  | typeof OCI_SPEC_URL
  | typeof OCI_PROCESS_URL
  | typeof OCI_LINUX_RESOURCES_URL
  | typeof OCI_WINDOWS_RESOURCES_URL;

/** The proto type name in a type URL: `a.b.C` for both `a.b.C` and `type.googleapis.com/a.b.C`. */
export function typeNameFromUrl(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

/** Packs a message into an Any with containerd's bare type URL. */
export function packAny<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Any {
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, message) });
}

/** Packs a JSON value (an OCI Spec, Process or LinuxResources) the way containerd does. */
export function packJson(typeUrl: OciTypeUrl | string, value: unknown): Any {
  return create(AnySchema, { typeUrl, value: new TextEncoder().encode(JSON.stringify(value)) });
}

/** True when the Any holds JSON (an OCI runtime-spec type), not a proto message. */
export function isJsonAny(any: Any | undefined): boolean {
  return !!any && any.typeUrl.startsWith(OCI_PREFIX);
}

/** True when the Any holds `schema`, whichever URL form it uses. */
export function anyIs(any: Any | undefined, schema: DescMessage): boolean {
  return !!any && typeNameFromUrl(any.typeUrl) === schema.typeName && !isJsonAny(any);
}

/** Decodes an Any that must hold `schema`; throws InvalidArgument otherwise. */
export function unpackAnyAs<Desc extends DescMessage>(
  any: Any | undefined,
  schema: Desc,
): MessageShape<Desc> {
  if (!any) throw new InvalidArgument(`any: expected ${schema.typeName}, got nothing`);
  if (!anyIs(any, schema))
    throw new InvalidArgument(`any: expected ${schema.typeName}, got ${JSON.stringify(any.typeUrl)}`);
  return decode(schema, any);
}

/**
 * Largest OCI JSON value decoded: the largest message ctrd takes over the wire, so only an
 * in-process caller can reach it.
 */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;
/**
 * Deepest nesting of arrays and objects accepted. OCI documents nest about six levels; V8 parses
 * any depth, but walking the result (JSON.stringify, structuredClone, a recursive validator)
 * overflows the stack somewhere past a few thousand.
 */
export const MAX_JSON_DEPTH = 100;

export interface JsonLimits {
  /** Largest value in bytes (default MAX_JSON_BYTES). */
  maxBytes?: number;
  /** Deepest nesting of arrays and objects (default MAX_JSON_DEPTH). */
  maxDepth?: number;
}

/**
 * True when JSON text nests arrays and objects deeper than `max`: one linear pass over the
 * brackets outside strings, so a deep document is refused before it is parsed.
 */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses the JSON in an OCI Any (Spec, Process, LinuxResources); throws InvalidArgument when the
 * URL is not the expected one, or the value is over `limits`, not UTF-8 or not JSON.
 */
export function unpackJson<T = unknown>(
  any: Any | undefined,
  expectedUrl?: OciTypeUrl | string,
  limits: JsonLimits = {},
): T {
  if (!any) throw new InvalidArgument(`any: expected ${expectedUrl ?? 'an OCI JSON value'}, got nothing`);
  if (expectedUrl !== undefined && any.typeUrl !== expectedUrl) {
    throw new InvalidArgument(`any: expected ${expectedUrl}, got ${JSON.stringify(any.typeUrl)}`);
  }
  const what = `any ${JSON.stringify(any.typeUrl)}`;
  const maxBytes = limits.maxBytes ?? MAX_JSON_BYTES;
  if (any.value.length > maxBytes) {
    throw new InvalidArgument(`${what}: value is ${any.value.length} bytes, over the limit of ${maxBytes}`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(any.value);
  } catch (e) {
    throw new InvalidArgument(`${what}: value is not valid JSON: not UTF-8`, { cause: e });
  }
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  if (jsonNestsDeeperThan(text, maxDepth)) {
    throw new InvalidArgument(`${what}: value nests deeper than ${maxDepth} levels`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InvalidArgument(`${what}: value is not valid JSON`, { cause: e });
  }
}

export function decode<Desc extends DescMessage>(schema: Desc, any: Any): MessageShape<Desc> {
  try {
    return fromBinary(schema, any.value);
  } catch (e) {
    throw new InvalidArgument(`any ${JSON.stringify(any.typeUrl)}: cannot decode ${schema.typeName}`, {
      cause: e,
    });
  }
}
