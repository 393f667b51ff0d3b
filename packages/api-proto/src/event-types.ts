// Subpath @ctrd/api-proto/event-types: event payloads (containerd.events.* and the image events).
export * from './gen/github.com/containerd/containerd/api/events/task_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/container_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/namespace_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/content_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/snapshot_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/image_pb.js';
