// Subpath @ctrd/api-proto/namespaces: containerd.services.namespaces.v1.
export * from './gen/github.com/containerd/containerd/api/services/namespaces/v1/namespace_pb.js';
export { Namespaces as NamespacesService } from './gen/github.com/containerd/containerd/api/services/namespaces/v1/namespace_pb.js';
