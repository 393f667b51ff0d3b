// Subpath @ctrd/api-proto/snapshots: containerd.services.snapshots.v1.
export * from './gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js';
export { Snapshots as SnapshotsService } from './gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js';
