// Subpath @ctrd/api-proto/events-ttrpc: containerd.services.events.ttrpc.v1, the Events service
// shims call over ttrpc (Forward only) on containerd's `<address>.ttrpc`.
export * from './gen/github.com/containerd/containerd/api/services/ttrpc/events/v1/events_pb.js';
export { Events as TtrpcEventsService } from './gen/github.com/containerd/containerd/api/services/ttrpc/events/v1/events_pb.js';
