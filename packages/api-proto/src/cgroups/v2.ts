// Subpath @ctrd/api-proto/cgroups/v2: io.containerd.cgroups.v2 Metrics.
export * from '../gen/github.com/containerd/cgroups/v2/stats/metrics_pb.js';
