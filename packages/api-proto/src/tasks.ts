// Subpath @ctrd/api-proto/tasks: containerd.services.tasks.v1.
export * from './gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js';
export { Tasks as TasksService } from './gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js';
