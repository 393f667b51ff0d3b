// The OCI image-spec documents as plain JSON shapes (field names as on the wire). Docker schema2
// manifests and lists have the same shape, so one set of types serves both.

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The `config` object of an image config: what a container made from the image starts with. */
export interface ImageRunConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: ImageRunConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

/** Annotations containerd and the OCI spec use to name images in layouts and archives. */
export const Annotation = {
  /** OCI: the reference (usually the tag) of a manifest in an image layout's index.json. */
  refName: 'org.opencontainers.image.ref.name',
  /** containerd: the full image name of an index.json entry. */
  imageName: 'io.containerd.image.name',
  created: 'org.opencontainers.image.created',
} as const;

/** Content labels containerd's GC and unpacker read (containerd/gc, images/labels.go). */
export const ContentLabel = {
  uncompressed: 'containerd.io/uncompressed',
  /** Prefix; the full key is `containerd.io/gc.ref.content.<anything>`. */
  gcRefContent: 'containerd.io/gc.ref.content',
  /** Prefix; the full key is `containerd.io/gc.ref.snapshot.<snapshotter>`. */
  gcRefSnapshot: 'containerd.io/gc.ref.snapshot',
  gcRoot: 'containerd.io/gc.root',
  gcExpire: 'containerd.io/gc.expire',
  distributionSource: 'containerd.io/distribution.source',
} as const;
