// Subpath @ctrd/api-proto/diff: containerd.services.diff.v1.
export * from './gen/github.com/containerd/containerd/api/services/diff/v1/diff_pb.js';
export { Diff as DiffService } from './gen/github.com/containerd/containerd/api/services/diff/v1/diff_pb.js';
