#!/usr/bin/env node
// Event fan-out through containerd's v1 Events service on a private ctrd and/or a private stock
// containerd. S subscribers (worker threads, one connection each) hold Events.Subscribe streams;
// one publisher calls Events.Publish (namespace header set, topic /bench/event, a small
// containerd.events.ContainerCreate whose id carries a sequence number) with C calls in flight:
//
//   node e2e/bench/events.mjs [--events 20000] [--subscribers 1,4] [--target both|ctrd|containerd]
//                             [--concurrency 16] [--warmup 2000] [--window 2048]
//
// Measured: publish throughput (events accepted per second, first call's start to last answer),
// delivery throughput of each subscriber (events received per second, from the same start to its
// last receipt) and delivery latency (a publish call's start to a subscriber's receipt, every pair,
// p50/p99/max), events never delivered and subscribers cut off.
//
// --window W: the publisher never gets more than W events ahead of the slowest subscriber (0: no
// limit). ctrd cuts off a subscriber with more than 4096 events pending in its queue; the default
// keeps under that, and the table counts the publishes that had to wait for it.
//
// Build first (npx nx run-many -t build). Needs apt's containerd for that target.
import { benchArgs, daemonTargets, intFlag, log, sleep } from './lib/args.mjs';
import { benchSignal, defer, runBench } from './lib/cleanup.mjs';
import { connectTarget, NAMESPACE, pool } from './lib/containers.mjs';
import {
  clock,
  EVENT_TOPIC,
  eventPayload,
  READY_TOPIC,
  startSubscribers,
  WARMUP_TOPIC,
} from './lib/events.mjs';
import { summarize } from './lib/stats.mjs';
import { cpuMs, machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE =
  'node e2e/bench/events.mjs [--events 20000] [--subscribers 1,4] [--target both|ctrd|containerd] [--concurrency 16] [--warmup 2000] [--window 2048]';
const { values } = benchArgs(USAGE, {
  events: { type: 'string', default: '20000' },
  subscribers: { type: 'string', default: '1,4' },
  target: { type: 'string', default: 'both' },
  concurrency: { type: 'string', default: '16' },
  warmup: { type: 'string', default: '2000' },
  window: { type: 'string', default: '2048' },
});
const events = intFlag(values.events, 'events');
const subscriberCounts = values.subscribers.split(',').map((x) => intFlag(x, 'subscribers'));
const concurrency = intFlag(values.concurrency, 'concurrency');
const warmup = intFlag(values.warmup, 'warmup', 0);
const window = intFlag(values.window, 'window', 0);
const targets = daemonTargets(values.target);

/** Waits until `count()` reaches `goal`; false after `ms` without progress. */
async function waitFor(count, goal, ms) {
  let last = count();
  let since = Date.now();
  while (last < goal) {
    benchSignal.throwIfAborted();
    await sleep(2);
    const c = count();
    if (c !== last) {
      last = c;
      since = Date.now();
    } else if (Date.now() - since > ms) return false;
  }
  return true;
}

/**
 * Publishes `payloads` on `topic`, `concurrency` calls in flight; with `starts`, records the start
 * of each call (on `now`'s clock) by index, and holds back while `subs` lag by the window.
 */
async function publishAll(api, topic, payloads, { starts, subs, now } = {}) {
  let waits = 0;
  let errors = 0;
  let firstError;
  await pool(
    payloads,
    concurrency,
    async (event, seq) => {
      if (subs && window > 0 && seq - subs.seen(2) >= window) {
        waits++;
        while (seq - subs.seen(2) >= window) await sleep(1);
      }
      if (starts) starts[seq] = now();
      try {
        await api.events.publish({ topic, event });
      } catch (e) {
        errors++;
        firstError ??= e;
        if (starts) starts[seq] = Number.NaN;
      }
    },
    benchSignal,
  );
  if (errors > 0) log(`  ${errors} publishes failed; first: ${firstError?.message ?? firstError}`);
  return { waits, errors };
}

async function round(name, target, api, count) {
  const { base, now } = clock();
  const subs = startSubscribers({ socket: target.socket, namespace: NAMESPACE, count, events, base });
  const undoSubs = defer(`${count} subscribers`, () => subs.terminate());

  // Subscribe has no answer of its own: the streams are in place once each has seen an event.
  const ready = eventPayload(0);
  const deadline = Date.now() + 20_000;
  while (subs.seen(0) === 0) {
    benchSignal.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`${name}: subscribers saw no event within 20 s`);
    await api.events.publish({ topic: READY_TOPIC, event: ready });
    await sleep(20);
  }
  if (warmup > 0) {
    const payloads = Array.from({ length: warmup }, (_, i) => eventPayload(i));
    await publishAll(api, WARMUP_TOPIC, payloads);
    if (!(await waitFor(() => subs.seen(1), warmup, 10_000)))
      log(`${name}: warm-up: only ${subs.seen(1)} of ${warmup} events reached every subscriber`);
  }

  const payloads = Array.from({ length: events }, (_, i) => eventPayload(i));
  const starts = new Float64Array(events).fill(Number.NaN);
  const daemonCpu0 = cpuMs(target.pid);
  const benchCpu0 = process.cpuUsage();
  const t0 = now();
  const { waits, errors } = await publishAll(api, EVENT_TOPIC, payloads, { starts, subs, now });
  const publishMs = now() - t0;
  // Deliveries still under way: wait while they progress, give up after 5 s without any.
  await waitFor(() => subs.seen(2), events - errors, 5000);
  const wallMs = now() - t0;
  const daemonCpu = ((cpuMs(target.pid) - daemonCpu0) / wallMs) * 100;
  const benchUsage = process.cpuUsage(benchCpu0);
  const benchCpu = ((benchUsage.user + benchUsage.system) / 1000 / wallMs) * 100;
  const results = await subs.results();
  await undoSubs();

  const latencies = [];
  const rates = [];
  let dropped = 0;
  const cutOff = [];
  for (const [i, r] of results.entries()) {
    dropped += events - errors - r.received;
    if (r.error) cutOff.push(`subscriber ${i}: ${r.error}`);
    let last = t0;
    if (r.times)
      for (let seq = 0; seq < events; seq++) {
        const t = r.times[seq];
        if (Number.isNaN(t) || Number.isNaN(starts[seq])) continue;
        latencies.push(t - starts[seq]);
        if (t > last) last = t;
      }
    rates.push(last > t0 ? r.received / ((last - t0) / 1000) : 0);
  }
  for (const line of cutOff) log(`${name}: ${line}`);
  const lat = summarize(latencies);
  const row = {
    name,
    count,
    published: (events - errors) / (publishMs / 1000),
    delivered: rates.reduce((a, b) => a + b, 0) / rates.length,
    deliveredMin: Math.min(...rates),
    p50: lat.median ?? Number.NaN,
    p99: lat.p99 ?? Number.NaN,
    max: lat.max ?? Number.NaN,
    dropped,
    cutOff: cutOff.length,
    waits,
    errors,
    daemonCpu,
    benchCpu,
  };
  log(
    `${name}, ${count} subscriber(s): ${row.published.toFixed(0)} published/s, ${row.delivered.toFixed(0)} delivered/s each, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, ${dropped} dropped, ${waits} publisher waits`,
  );
  return row;
}

async function measure(name) {
  log(`${name}: starting the daemon`);
  const target = await startTarget(name);
  const undoTarget = defer(`${name} daemon`, () => target.dispose());
  const api = connectTarget(target);
  const undoApi = defer(`${name} connection`, () => api.close());
  const rows = [];
  for (const count of subscriberCounts) {
    benchSignal.throwIfAborted();
    rows.push(await round(name, target, api, count));
  }
  await undoApi();
  await undoTarget();
  return rows;
}

function resultTable(rows) {
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const lines = [
    `## events: ${events} events published ${concurrency} at a time (after ${warmup} unmeasured), each delivered to every subscriber`,
    '',
    '| subscribers | target | published/s | delivered/s per subscriber (slowest) | latency p50 ms | p99 ms | max ms | not delivered | cut off | publisher waits | daemon CPU % | bench CPU % | ctrd/containerd published/s | ctrd/containerd delivered/s | ctrd/containerd p99 |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const cd = rows.find((x) => x.name === 'containerd' && x.count === r.count);
    const ratio = (k) => (r.name === 'ctrd' && cd ? (r[k] / cd[k]).toFixed(2) : '');
    lines.push(
      `| ${r.count} | ${r.name} | ${f(r.published)} | ${f(r.delivered)} (${f(r.deliveredMin)}) | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.max, 1)} | ${r.dropped} | ${r.cutOff} | ${r.waits} | ${f(r.daemonCpu)} | ${f(r.benchCpu)} | ${ratio('published')} | ${ratio('delivered')} | ${ratio('p99')} |`,
    );
  }
  lines.push(
    '',
    `Latency: a publish call's start to a subscriber's receipt, over every (event, subscriber) pair. Publisher waits: publishes held back because the slowest subscriber was ${window} events behind (--window). CPU: user + system time over the measured run's wall time (100 = one core); the bench's covers the publisher and all subscriber threads, and when it nears the core count the client, not the daemon, sets the pace. Throughput ratios above 1 and the p99 ratio below 1: ctrd is better.`,
  );
  return lines.join('\n');
}

await runBench('events', async () => {
  const m = await machine();
  const rows = [];
  for (const t of targets) {
    benchSignal.throwIfAborted();
    rows.push(...(await measure(t)));
  }
  process.stdout.write(`${machineTable(m)}\n\n${resultTable(rows)}\n`);
});
