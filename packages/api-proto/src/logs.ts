// Subpath @ctrd/api-proto/logs: ctrd.services.logs.v1 (ctrd's own: a task's kept output, read over the API).
export * from './gen/ctrd/services/logs/v1/logs_pb.js';
export { Logs as LogsService } from './gen/ctrd/services/logs/v1/logs_pb.js';
