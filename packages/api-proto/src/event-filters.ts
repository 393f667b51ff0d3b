import type { DescMessage, Message, Registry } from '@bufbuild/protobuf';
import { ScalarType } from '@bufbuild/protobuf';
import type { Envelope } from './gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js';
import type { Adaptor, FieldValue } from './filters.js';
import { typeRegistry, unpackAny } from './type-registry.js';

// The fields Events.Subscribe filters see, as containerd's event adaptors define them:
// `namespace`, `topic`, and `event.<field>` inside the decoded payload, by proto field name
// (`event.container_id`). Like containerd's generated fieldpath code, only string and bool
// fields, string maps (`event.labels.<key>`, rest of the path joined with dots) and nested
// messages answer; numbers and Any fields are never present.

const ABSENT: FieldValue = { value: '', present: false };

/** An adaptor over any protobuf-es message, by proto field names. */
export function messageAdaptor(message: Message, schema: DescMessage): Adaptor {
  return (fieldpath) => lookup(message, schema, fieldpath);
}

function lookup(message: Message, schema: DescMessage, fieldpath: readonly string[]): FieldValue {
  const [head, ...rest] = fieldpath;
  if (head === undefined) return ABSENT;
  const field = schema.fields.find((f) => f.name === head);
  if (!field) return ABSENT;
  const value = (message as unknown as Record<string, unknown>)[field.localName];
  switch (field.fieldKind) {
    case 'scalar':
      if (rest.length > 0) return ABSENT;
      if (field.scalar === ScalarType.STRING)
        return { value: value as string, present: (value as string) !== '' };
      if (field.scalar === ScalarType.BOOL) return { value: String(value), present: true };
      return ABSENT;
    case 'map': {
      if (rest.length === 0 || field.mapKind !== 'scalar' || field.scalar !== ScalarType.STRING)
        return ABSENT;
      const map = value as Record<string, string>;
      const key = rest.join('.');
      return Object.hasOwn(map, key) ? { value: map[key]!, present: true } : ABSENT;
    }
    case 'message':
      if (rest.length === 0 || value === undefined || field.message.typeName === 'google.protobuf.Any')
        return ABSENT;
      return lookup(value as Message, field.message, rest);
    default:
      return ABSENT;
  }
}

/**
 * The adaptor for one Envelope. The payload is decoded lazily, only when a filter asks for an
 * `event.*` field; a payload of an unknown type has no event fields.
 */
export function envelopeAdaptor(envelope: Envelope, registry: Registry = typeRegistry): Adaptor {
  let decoded: { message: Message; schema: DescMessage } | null | undefined;
  return (fieldpath) => {
    const [head, ...rest] = fieldpath;
    if (fieldpath.length === 1 && head === 'namespace') {
      return { value: envelope.namespace, present: envelope.namespace !== '' };
    }
    if (fieldpath.length === 1 && head === 'topic')
      return { value: envelope.topic, present: envelope.topic !== '' };
    if (head !== 'event' || rest.length === 0) return ABSENT;
    if (decoded === undefined) {
      decoded = null;
      try {
        const message = unpackAny(envelope.event, registry);
        const schema = message && registry.getMessage(message.$typeName);
        if (message && schema) decoded = { message, schema };
      } catch {
        // An undecodable payload simply has no fields to match.
      }
    }
    return decoded ? lookup(decoded.message, decoded.schema, rest) : ABSENT;
  };
}
