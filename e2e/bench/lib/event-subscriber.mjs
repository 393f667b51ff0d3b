// One Events.Subscribe client of the events bench, run as a worker thread with its own connection,
// so decoding deliveries never shares an event loop with the publisher or the other subscribers.
//
// workerData: { socket, namespace, events, slot, counts (SharedArrayBuffer of Int32), base (hrtime
// ns, a string) }.
// Counts it keeps up to date for the publisher, at counts[3*slot + k]: k=0 ready events seen, k=1
// warm-up events, k=2 measured events. Each measured event's receipt time (ms since `base`, the
// process-wide monotonic clock the publisher also reads) is stored by the sequence number in its
// payload's id. On 'stop' from the parent, or when all `events` have arrived, it posts
// { type: 'done', received, duplicates, error, times } (times: Float64Array, NaN if never received).
import { parentPort, workerData } from 'node:worker_threads';
import { fromBinary } from '@bufbuild/protobuf';
import { createClient, createUnixTransport } from '@ctrd/api-proto';
import { ContainerCreateSchema } from '@ctrd/api-proto/event-types';
import { EventsService } from '@ctrd/api-proto/events';
import { EVENT_TOPIC, READY_TOPIC, seqOf, WARMUP_TOPIC } from './events.mjs';

const { socket, namespace, events, slot, counts: shared, base } = workerData;
const counts = new Int32Array(shared);
const start = BigInt(base);
const now = () => Number(process.hrtime.bigint() - start) / 1e6;

const transport = createUnixTransport({ address: socket, namespace });
const client = createClient(EventsService, { transport });
const stop = new AbortController();
parentPort.on('message', (m) => {
  if (m === 'stop') stop.abort();
});

const times = new Float64Array(events).fill(Number.NaN);
let received = 0;
let duplicates = 0;
let error;
const filters = [EVENT_TOPIC, READY_TOPIC, WARMUP_TOPIC].map((t) => `topic=="${t}"`);
try {
  for await (const env of client.subscribe({ filters }, { signal: stop.signal })) {
    const t = now();
    if (env.topic === READY_TOPIC) Atomics.add(counts, 3 * slot, 1);
    else if (env.topic === WARMUP_TOPIC) Atomics.add(counts, 3 * slot + 1, 1);
    else {
      const seq = env.event ? seqOf(fromBinary(ContainerCreateSchema, env.event.value).id) : -1;
      if (seq < 0 || seq >= events) continue;
      if (!Number.isNaN(times[seq])) duplicates++;
      else {
        times[seq] = t;
        received++;
        Atomics.store(counts, 3 * slot + 2, received);
        if (received === events) break;
      }
    }
  }
} catch (e) {
  if (!stop.signal.aborted) error = e?.message ?? String(e);
} finally {
  transport.close();
}
parentPort.postMessage({ type: 'done', received, duplicates, error, times }, [times.buffer]);
