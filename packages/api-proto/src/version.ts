// Subpath @ctrd/api-proto/version: containerd.services.version.v1.
export * from './gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js';
export { Version as VersionService } from './gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js';
