// Subpath @ctrd/api-proto/content: containerd.services.content.v1.
export * from './gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js';
export { Content as ContentService } from './gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js';
