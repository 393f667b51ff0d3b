import { create } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import type { UnixTransport } from '@ctrd/api-proto';
import {
  createClient,
  createUnixTransport,
  isDeadlineExceeded,
  isUnavailable,
  toTimestamp,
} from '@ctrd/api-proto';
import { EnvelopeSchema, EventsService } from '@ctrd/api-proto/events';
import type { Forwarder, QueuedEvent } from './event-publisher.js';

// Events reach the daemon through containerd's Events.Forward on the daemon's own socket, each in a
// full Envelope (namespace, topic, timestamp, Any with a bare type URL).

export interface DaemonForwarder {
  forward: Forwarder;
  /** Whether an error means "the daemon refused this event" rather than "the daemon is not there". */
  isPermanent: (e: unknown) => boolean;
  close(): void;
}

export function createDaemonForwarder(address: string, timeoutMs = 5000): DaemonForwarder {
  let transport: UnixTransport | undefined;
  const client = () => {
    transport ??= createUnixTransport({ address, timeoutMs });
    return createClient(EventsService, { address, transport });
  };
  return {
    async forward(event: QueuedEvent, signal: AbortSignal) {
      try {
        await client().forward(
          {
            envelope: create(EnvelopeSchema, {
              timestamp: toTimestamp(event.timestamp),
              namespace: event.namespace,
              topic: event.topic,
              event: create(AnySchema, { typeUrl: event.typeUrl, value: event.value }),
            }),
          },
          { signal },
        );
      } catch (e) {
        // A broken connection is not reused: the next try dials afresh.
        if (isUnavailable(e) || isDeadlineExceeded(e)) {
          transport?.close();
          transport = undefined;
        }
        throw e;
      }
    },
    isPermanent: (e) => !isUnavailable(e) && !isDeadlineExceeded(e),
    close() {
      transport?.close();
      transport = undefined;
    },
  };
}
