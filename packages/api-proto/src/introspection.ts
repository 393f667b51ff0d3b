// Subpath @ctrd/api-proto/introspection: containerd.services.introspection.v1 and google.rpc.Status.
export * from './gen/github.com/containerd/containerd/api/services/introspection/v1/introspection_pb.js';
export { Introspection as IntrospectionService } from './gen/github.com/containerd/containerd/api/services/introspection/v1/introspection_pb.js';
export * from './gen/google/rpc/status_pb.js';
