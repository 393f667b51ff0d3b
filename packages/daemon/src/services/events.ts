import { namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { EventsService } from '@ctrd/api-proto/events';
import type { Exchange } from './exchange.js';

// Thin Connect halves over the exchange: the exchange is the local implementation.

export function eventsService(exchange: Exchange): ServiceRegistration {
  return service(EventsService, {
    publish: async (req, ctx) => {
      exchange.publish(namespaceFromContext(ctx), req.topic, req.event);
      return {};
    },
    forward: async (req) => {
      exchange.forward(req.envelope);
      return {};
    },
    async *subscribe(req, ctx) {
      yield* exchange.subscribe(req.filters, ctx.signal);
    },
  });
}

export function eventHistoryService(exchange: Exchange): ServiceRegistration {
  return service(EventHistoryService, {
    async *replay(req, ctx) {
      yield* exchange.replay(req.since, req.filters, req.follow, ctx.signal);
    },
  });
}
