// @ctrd/api-proto/oci: OCI image facts shared by the daemon and the CLI (digests, media types,
// descriptors, manifests, references), kept out of the root entry so a CLI start-up loads only
// what it uses.

export { chainId, chainIds } from './oci/chain-id.js';
export type { ParsedDigest } from './oci/digest.js';
export { digestHasher, isValidDigest, parseDigest, sha256Digest, validateDigest } from './oci/digest.js';
export type { LayerCompression } from './oci/media-types.js';
export {
  isConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  isNonDistributableLayer,
  layerCompression,
  MediaType,
} from './oci/media-types.js';
export type { ParseOptions } from './oci/parse.js';
export {
  cloneImageConfig,
  MAX_CONFIG_BYTES,
  MAX_INDEX_DEPTH,
  MAX_INDEX_ENTRIES,
  MAX_LAYERS,
  MAX_MANIFEST_BYTES,
  parseDescriptor,
  parseImageConfig,
  parseImageLayout,
  parseIndex,
  parseManifest,
  parsePlatformObject,
} from './oci/parse.js';
export {
  compatiblePlatforms,
  defaultPlatform,
  formatPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  platformRank,
} from './oci/platform.js';
export type { NormalizeOptions, Reference } from './oci/reference.js';
export {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  familiarName,
  isValidReference,
  MAX_NAME_LENGTH,
  normalizeReference,
} from './oci/reference.js';
export type {
  Descriptor,
  HistoryEntry,
  ImageConfig,
  ImageRunConfig,
  Index,
  Manifest,
  Platform,
} from './oci/types.js';
export { Annotation, ContentLabel } from './oci/types.js';
