// Media types of the OCI image spec and of Docker's schema2, the two formats images arrive in
// (registries, `docker save`, OCI layouts). Names follow the specs; the groupings below are what
// unpack, import and export need to decide what a descriptor points at.

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNonDistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociLayout: 'application/vnd.oci.layout.header.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type LayerCompression = 'none' | 'gzip' | 'zstd';

const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);
const MANIFESTS = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest]);
const CONFIGS = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);
const LAYERS: ReadonlyMap<string, LayerCompression> = new Map<string, LayerCompression>([
  [MediaType.ociLayer, 'none'],
  [MediaType.ociLayerGzip, 'gzip'],
  [MediaType.ociLayerZstd, 'zstd'],
  [MediaType.ociLayerNonDistributable, 'none'],
  [MediaType.ociLayerNonDistributableGzip, 'gzip'],
  [MediaType.ociLayerNonDistributableZstd, 'zstd'],
  [MediaType.dockerLayer, 'none'],
  [MediaType.dockerLayerGzip, 'gzip'],
  [MediaType.dockerLayerZstd, 'zstd'],
  [MediaType.dockerForeignLayer, 'gzip'],
]);
const NON_DISTRIBUTABLE = new Set<string>([
  MediaType.ociLayerNonDistributable,
  MediaType.ociLayerNonDistributableGzip,
  MediaType.ociLayerNonDistributableZstd,
  MediaType.dockerForeignLayer,
]);

export function isIndexType(mediaType: string): boolean {
  return INDEXES.has(mediaType);
}

export function isManifestType(mediaType: string): boolean {
  return MANIFESTS.has(mediaType);
}

export function isConfigType(mediaType: string): boolean {
  return CONFIGS.has(mediaType);
}

export function isLayerType(mediaType: string): boolean {
  return LAYERS.has(mediaType);
}

/** Foreign (Docker) and non-distributable (OCI) layers: not pushed, not exported by default. */
export function isNonDistributableLayer(mediaType: string): boolean {
  return NON_DISTRIBUTABLE.has(mediaType);
}

/** The compression a layer media type declares; undefined for anything that is not a layer. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  return LAYERS.get(mediaType);
}
