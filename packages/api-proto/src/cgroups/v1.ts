// Subpath @ctrd/api-proto/cgroups/v1: io.containerd.cgroups.v1 Metrics.
export * from '../gen/github.com/containerd/cgroups/stats/v1/metrics_pb.js';
