// Subpath @ctrd/api-proto/leases: containerd.services.leases.v1.
export * from './gen/github.com/containerd/containerd/api/services/leases/v1/leases_pb.js';
export { Leases as LeasesService } from './gen/github.com/containerd/containerd/api/services/leases/v1/leases_pb.js';
