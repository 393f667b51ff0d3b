import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InvalidArgument, ResourceExhausted } from '@ctrd/api-proto';
import { parseDigest } from '@ctrd/api-proto/oci';

// Where the content store keeps its files. Blobs are shared by every namespace; an ingest is
// named by a hash of (namespace, ref), so neither a ref nor a namespace ever becomes a path.

/** Longest write ref accepted (containerd has no rule; ctr's refs are well under this). */
export const MAX_REF_LENGTH = 1024;

export interface ContentPaths {
  readonly root: string;
  readonly blobs: string;
  readonly ingest: string;
}

export function contentPaths(root: string): ContentPaths {
  return { root, blobs: join(root, 'blobs'), ingest: join(root, 'ingest') };
}

/** The blob file of a digest; the digest is validated first (InvalidArgument otherwise). */
export function blobFile(paths: ContentPaths, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(paths.blobs, algorithm, hex);
}

export function ingestKey(ns: string, ref: string): string {
  return createHash('sha256').update(ns).update('\0').update(ref).digest('hex');
}

export function ingestDir(paths: ContentPaths, ns: string, ref: string): string {
  return join(paths.ingest, ingestKey(ns, ref));
}

/** A write ref: non-empty, bounded, no control characters (it is shown in listings and logs). */
export function validateRef(ref: string): void {
  if (ref === '') throw new InvalidArgument('ref: must not be empty');
  if (ref.length > MAX_REF_LENGTH) {
    throw new InvalidArgument(
      `ref "${ref.slice(0, 40)}...": longer than the maximum of ${MAX_REF_LENGTH} characters`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is rejected
  if (/[\u0000-\u001f\u007f]/.test(ref)) {
    throw new InvalidArgument(`ref ${JSON.stringify(ref)}: must not contain control characters`);
  }
}

/** A size or offset from the wire (int64) as a safe JS number; InvalidArgument when negative or too big. */
export function safeSize(v: bigint | number, what: string): number {
  const n = typeof v === 'bigint' ? v : BigInt(v);
  if (n < 0n) throw new InvalidArgument(`${what}: must not be negative, got ${n}`);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgument(`${what}: ${n} is larger than the maximum of ${Number.MAX_SAFE_INTEGER}`);
  }
  return Number(n);
}

/** Disk-full errors become ResourceExhausted naming the object; anything else passes through. */
export function mapFsError(e: unknown, what: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ResourceExhausted(`${what}: no space left on device`, { cause: e });
  }
  return e;
}
