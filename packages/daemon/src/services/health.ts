import { NotFound, service, type ServiceRegistration } from '@ctrd/api-proto';
import { HealthCheckResponse_ServingStatus as ServingStatus, HealthService } from '@ctrd/api-proto/health';

// grpc.health.v1.Health, as containerd serves it (its healthcheck plugin is grpc-go's health
// server): a status per service name, "" for the whole server. dockerd waits for SERVING before it
// subscribes to events again after losing the daemon; containerd's client test harness polls it.

export { ServingStatus };

interface Watcher {
  readonly service: string;
  /** The latest status not yet sent; only the latest matters, as in grpc-go. */
  pending: ServingStatus | undefined;
  wake: (() => void) | undefined;
}

/** The statuses and their watchers (grpc-go's health.Server). */
export class LocalHealth {
  private readonly statuses = new Map<string, ServingStatus>([['', ServingStatus.NOT_SERVING]]);
  private readonly watchers = new Set<Watcher>();
  private down = false;

  /** Sets the status of `service` ("": the server); ignored after shutdown(), as grpc-go's. */
  set(service: string, status: ServingStatus): void {
    if (this.down) return;
    this.update(service, status);
  }

  /** Every known service NOT_SERVING, for good: the server is stopping. */
  shutdown(): void {
    this.down = true;
    for (const s of this.statuses.keys()) this.update(s, ServingStatus.NOT_SERVING);
  }

  /** The status of `service`; NotFound for one never set (Check's answer in grpc-go). */
  check(service: string): ServingStatus {
    const status = this.statuses.get(service);
    if (status === undefined) throw new NotFound(`health of service "${service}": unknown service`);
    return status;
  }

  /**
   * The status now, then each change, until `signal` aborts. A service never set is
   * SERVICE_UNKNOWN, and the stream stays open: it may be set later.
   */
  async *watch(service: string, signal?: AbortSignal): AsyncGenerator<ServingStatus> {
    const w: Watcher = {
      service,
      pending: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN,
      wake: undefined,
    };
    this.watchers.add(w);
    const onAbort = (): void => w.wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    let last: ServingStatus | undefined;
    try {
      for (;;) {
        // What is pending goes out before an abort is noticed: NOT_SERVING set on the way down
        // reaches the watcher before its stream ends.
        const next = w.pending;
        w.pending = undefined;
        if (next !== undefined && next !== last) {
          last = next;
          yield next;
          continue;
        }
        if (signal?.aborted) return;
        await new Promise<void>((resolve) => {
          w.wake = resolve;
        });
        w.wake = undefined;
      }
    } finally {
      this.watchers.delete(w);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private update(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const w of this.watchers) {
      if (w.service !== service) continue;
      w.pending = status;
      w.wake?.();
    }
  }
}

export function healthService(health: LocalHealth): ServiceRegistration {
  return service(HealthService, {
    check: async (req) => ({ status: health.check(req.service) }),
    async *watch(req, ctx) {
      for await (const status of health.watch(req.service, ctx.signal)) yield { status };
    },
  });
}
