// Subpath @ctrd/api-proto/events: containerd.services.events.v1 (the service and Envelope).
export * from './gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js';
export { Events as EventsService } from './gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js';
