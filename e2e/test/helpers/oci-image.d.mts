// Types of oci-image.mjs, for the TypeScript tests.
import type { TarWriteEntry } from '@ctrd/api-proto/tar';

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}
export interface OciPlatform {
  os: string;
  architecture: string;
  variant?: string;
}
export interface BuiltLayer {
  tar: Buffer;
  blob: Buffer;
  diffId: string;
  desc: OciDescriptor;
}
export interface BuiltImage {
  blobs: Map<string, Buffer>;
  manifest: Buffer;
  manifestDesc: OciDescriptor;
  config: Buffer;
  configDesc: OciDescriptor;
  layers: BuiltLayer[];
}
export type RunConfig = Record<string, unknown>;

export const DEFAULT_CONFIG: RunConfig;
export function sha256(data: Buffer | string): string;
export function hostPlatform(): OciPlatform;
export function tarBytes(entries: TarWriteEntry[]): Promise<Buffer>;
export function dirEntries(root: string): Promise<TarWriteEntry[]>;
export function makeLayer(tar: Buffer, mediaType?: string): BuiltLayer;
export function makeImage(opts: {
  layers: BuiltLayer[];
  config?: RunConfig;
  platform?: OciPlatform;
  diffIds?: string[];
  layerDescs?: OciDescriptor[];
  manifestExtra?: Record<string, unknown>;
}): BuiltImage;
export function refName(name: string): string;
export function ociLayoutTar(
  images: { image: BuiltImage; name: string }[],
  opts?: { corrupt?: string; extraBlobs?: Map<string, Buffer>; annotations?: Record<string, string> },
): Promise<Buffer>;
export function busyboxRootfs(dir: string, busybox?: string): Promise<void>;
export function busyboxImageFromDir(rootfs: string, config?: RunConfig): Promise<BuiltImage>;
export function writeBusyboxImageTar(out: string, name: string, config?: RunConfig): Promise<BuiltImage>;
