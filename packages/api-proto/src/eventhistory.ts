// Subpath @ctrd/api-proto/eventhistory: ctrd.services.eventhistory.v1 (ctrd's own replay service).
export * from './gen/ctrd/services/eventhistory/v1/eventhistory_pb.js';
export { EventHistory as EventHistoryService } from './gen/ctrd/services/eventhistory/v1/eventhistory_pb.js';
