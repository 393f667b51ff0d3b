import { createHash, type Hash } from 'node:crypto';
import { InvalidArgument } from '../errors.js';

// OCI digests (`algorithm:encoded`) come from clients and from images, and name files in the
// content store: each one is checked against the algorithms ctrd knows before it is used in a
// path, so `sha256:../../x` never reaches the filesystem.

const ALGORITHMS: Readonly<Record<string, { hexLength: number; hash: string }>> = {
  sha256: { hexLength: 64, hash: 'sha256' },
  sha384: { hexLength: 96, hash: 'sha384' },
  sha512: { hexLength: 128, hash: 'sha512' },
};

export interface ParsedDigest {
  algorithm: string;
  /** Lower-case hex. */
  hex: string;
}

/** Splits and validates a digest; InvalidArgument naming the problem otherwise. */
export function parseDigest(digest: string, what = 'digest'): ParsedDigest {
  if (typeof digest !== 'string' || digest === '') throw new InvalidArgument(`${what}: must not be empty`);
  const shown = digest.length > 80 ? `${digest.slice(0, 80)}...` : digest;
  const colon = digest.indexOf(':');
  if (colon <= 0) throw new InvalidArgument(`${what} "${shown}": invalid digest: want <algorithm>:<hex>`);
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const alg = ALGORITHMS[algorithm];
  if (!alg) {
    throw new InvalidArgument(
      `${what} "${shown}": unsupported digest algorithm "${algorithm.slice(0, 20)}": use ${Object.keys(ALGORITHMS).join(', ')}`,
    );
  }
  if (hex.length !== alg.hexLength || !/^[0-9a-f]+$/.test(hex)) {
    throw new InvalidArgument(
      `${what} "${shown}": invalid ${algorithm} digest: want ${alg.hexLength} lower-case hex characters`,
    );
  }
  return { algorithm, hex };
}

/** Returns the digest unchanged when valid; throws InvalidArgument otherwise. */
export function validateDigest(digest: string, what = 'digest'): string {
  parseDigest(digest, what);
  return digest;
}

export function isValidDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

/** A hash for the digest's algorithm, to verify streamed bytes. */
export function digestHasher(algorithm = 'sha256'): Hash {
  const alg = ALGORITHMS[algorithm];
  if (!alg) throw new InvalidArgument(`unsupported digest algorithm "${algorithm}"`);
  return createHash(alg.hash);
}

/** The sha256 digest of bytes, as `sha256:<hex>`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
