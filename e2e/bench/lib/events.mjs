import { Worker } from 'node:worker_threads';
import { create } from '@bufbuild/protobuf';
import { packAny } from '@ctrd/api-proto';
import { ContainerCreateSchema } from '@ctrd/api-proto/event-types';

// The events bench's payloads and its subscribers. Every event is a small
// containerd.events.ContainerCreate whose id carries a sequence number, so a subscriber can tell
// which publish it received. Subscribers run in worker threads (lib/event-subscriber.mjs), each on
// its own connection, and count what they have seen in shared memory the publisher can read.

/** The measured events. */
export const EVENT_TOPIC = '/bench/event';
/** Published until every subscriber has seen one: the subscriptions are in place on the daemon. */
export const READY_TOPIC = '/bench/ready';
/** Published before the measured run, unmeasured, so both daemons are warm. */
export const WARMUP_TOPIC = '/bench/warmup';

const ID_PREFIX = 'bench-';

/** The payload of event `seq`: an Any with containerd's bare type URL, as ctr publishes them. */
export function eventPayload(seq) {
  return packAny(
    ContainerCreateSchema,
    create(ContainerCreateSchema, {
      id: `${ID_PREFIX}${seq}`,
      image: 'docker.io/library/busybox:latest',
      runtime: { name: 'io.containerd.runc.v2' },
    }),
  );
}

/** The sequence number in a payload's id, -1 if it has none. */
export function seqOf(id) {
  if (!id.startsWith(ID_PREFIX)) return -1;
  const n = Number(id.slice(ID_PREFIX.length));
  return Number.isInteger(n) && n >= 0 ? n : -1;
}

/** Milliseconds on the process-wide monotonic clock since `base` (workers read the same clock). */
export function clock(base = process.hrtime.bigint()) {
  return { base, now: () => Number(process.hrtime.bigint() - base) / 1e6 };
}

/**
 * `count` subscriber threads on `socket`, expecting `events` measured events; receipt times are
 * on `base`'s clock. `seen(k)` is the fewest events of kind k (0 ready, 1 warm-up, 2 measured) any
 * subscriber has received so far. `results()` stops them (those not done yet) and resolves each
 * one's { received, duplicates, error, times }; `terminate()` ends the threads at once.
 */
export function startSubscribers({ socket, namespace, count, events, base }) {
  const shared = new SharedArrayBuffer(3 * count * Int32Array.BYTES_PER_ELEMENT);
  const counts = new Int32Array(shared);
  const url = new URL('./event-subscriber.mjs', import.meta.url);
  const workers = [];
  const done = [];
  for (let slot = 0; slot < count; slot++) {
    const w = new Worker(url, {
      workerData: { socket, namespace, events, slot, counts: shared, base: String(base) },
    });
    workers.push(w);
    done.push(
      new Promise((resolve) => {
        w.once('message', (m) => resolve(m));
        w.once('error', (e) => resolve({ received: 0, duplicates: 0, error: e.message, times: undefined }));
        w.once('exit', (code) =>
          resolve({ received: 0, duplicates: 0, error: `worker exited (${code})`, times: undefined }),
        );
      }),
    );
  }
  const seen = (k) => {
    let min = Number.POSITIVE_INFINITY;
    for (let slot = 0; slot < count; slot++) min = Math.min(min, Atomics.load(counts, 3 * slot + k));
    return min;
  };
  return {
    seen,
    async results() {
      for (const w of workers) w.postMessage('stop');
      const out = await Promise.all(done);
      await Promise.all(workers.map((w) => w.terminate()));
      return out;
    },
    terminate: () => Promise.all(workers.map((w) => w.terminate())),
  };
}
