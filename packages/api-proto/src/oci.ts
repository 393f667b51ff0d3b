// @ctrd/api-proto/oci: OCI image facts shared by the daemon and the CLI (digests, media types,
// descriptors, manifests, references), kept out of the root entry so a CLI start-up loads only
// what it uses.

export type { ParsedDigest } from './oci/digest.js';
export { digestHasher, isValidDigest, parseDigest, sha256Digest, validateDigest } from './oci/digest.js';
