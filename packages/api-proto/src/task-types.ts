// Subpath @ctrd/api-proto/task-types: containerd.v1.types (Status, Process, ProcessInfo).
export * from './gen/github.com/containerd/containerd/api/types/task/task_pb.js';
