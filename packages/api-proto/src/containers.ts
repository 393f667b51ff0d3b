// Subpath @ctrd/api-proto/containers: containerd.services.containers.v1.
export * from './gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js';
export { Containers as ContainersService } from './gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js';
