// Subpath @ctrd/api-proto/shim: the shim API containerd.task.v2 (served over Connect by ctrd's shim).
export * from './gen/github.com/containerd/containerd/runtime/v2/task/shim_pb.js';
export { Task as TaskService } from './gen/github.com/containerd/containerd/runtime/v2/task/shim_pb.js';
// ctrd's addition: one call for the state of every task a shim hosts.
export * from './gen/ctrd/shim/v1/tasks_pb.js';
export { Tasks as ShimTasksService } from './gen/ctrd/shim/v1/tasks_pb.js';
// ctrd's addition: the output a shim keeps of each task it hosts (what ctrd.services.logs.v1 serves).
export * from './gen/ctrd/shim/v1/logs_pb.js';
export { Logs as ShimLogsService } from './gen/ctrd/shim/v1/logs_pb.js';
