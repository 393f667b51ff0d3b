// Subpath @ctrd/api-proto/runc-options: containerd.runc.v1 (Options, CheckpointOptions, ProcessDetails).
export * from './gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js';
