import { InvalidArgument } from './errors.js';

// containerd's identifier rule (identifiers/validate.go): letters and digits, with single
// '.', '_' or '-' between runs, at most 76 characters. It guards namespaces, container, task and
// snapshot ids and event topic components, all of which end up in paths and bucket names.

export const MAX_IDENTIFIER_LENGTH = 76;
/** containerd's limit on len(key) + len(value) of one label, in bytes. */
export const MAX_LABEL_SIZE = 4096;

const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;

export function isValidIdentifier(id: string): boolean {
  return id.length > 0 && id.length <= MAX_IDENTIFIER_LENGTH && IDENTIFIER.test(id);
}

/**
 * Throws InvalidArgument unless `id` is a valid identifier. `what` names the object in the
 * message, e.g. `container` or `namespace`.
 */
export function validateIdentifier(id: string, what = 'identifier'): void {
  if (id === '') throw new InvalidArgument(`${what}: identifier must not be empty`);
  if (id.length > MAX_IDENTIFIER_LENGTH) {
    throw new InvalidArgument(
      `${what} ${quote(id.slice(0, 20))}...: identifier is ${id.length} characters, longer than the maximum of ${MAX_IDENTIFIER_LENGTH}`,
    );
  }
  if (!IDENTIFIER.test(id)) {
    throw new InvalidArgument(
      `${what} ${quote(id)}: identifier must be letters and digits separated by single '.', '_' or '-' (${IDENTIFIER.source})`,
    );
  }
}

// Lease ids are not identifiers: containerd accepts any non-empty lease id, and the ids it (and
// ctrd) generates, `<unix nanos>-<3 random bytes, url-safe base64>`, may hold "--" or end in "_".
// Still bounded and free of separators: they travel in a header and in logs.
const LEASE_ID = /^[A-Za-z0-9._~+=:@-]{1,256}$/;

/** Throws InvalidArgument unless `id` is 1-256 characters of letters, digits and `._~+=:@-`. */
export function validateLeaseId(id: string, what = 'lease id'): void {
  if (!LEASE_ID.test(id)) {
    throw new InvalidArgument(
      `${what} ${quote(id.length > 80 ? `${id.slice(0, 80)}...` : id)}: must be 1-256 characters of letters, digits and . _ ~ + = : @ -`,
    );
  }
}

/** Throws InvalidArgument if any label's key plus value exceeds 4096 bytes, or a key is empty. */
export function validateLabels(labels: Readonly<Record<string, string>> | undefined, what = 'labels'): void {
  if (!labels) return;
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') throw new InvalidArgument(`${what}: label key must not be empty`);
    const size = Buffer.byteLength(k) + Buffer.byteLength(v);
    if (size > MAX_LABEL_SIZE) {
      throw new InvalidArgument(
        `${what}: label ${quote(k.length > 64 ? `${k.slice(0, 64)}...` : k)} is ${size} bytes (key and value), more than the maximum of ${MAX_LABEL_SIZE}`,
      );
    }
  }
}

function quote(s: string): string {
  return JSON.stringify(s);
}
