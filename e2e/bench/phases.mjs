#!/usr/bin/env node
// Where a start's time goes: N containers started one at a time (no concurrency, so no queueing)
// on a private ctrd and a private stock containerd, timing each API call of a start separately:
// Containers.Create, Tasks.Create (runc create under the shim), Tasks.Start (runc start), and then
// Tasks.Delete after a kill. Prints the median and p95 of each phase and the ctrd/containerd ratio.
//
//   node e2e/bench/phases.mjs [--n 30] [--running 1] [--target ctrd|containerd|both]
//
// --running K keeps K containers running through the measurement (at least 1): whether a start's
// cost grows with the number of containers already running.
//
// Build first (npx nx run-many -t build). Needs root, runc, busybox-static and apt's containerd.
import { create } from '@bufbuild/protobuf';
import { OCI_SPEC_URL, packAny, packJson } from '@ctrd/api-proto';
import { OptionsSchema } from '@ctrd/api-proto/runc-options';
import { benchArgs, daemonTargets, intFlag, log } from './lib/args.mjs';
import { defer, runBench } from './lib/cleanup.mjs';
import {
  benchSpec,
  busyboxRootfs,
  connectTarget,
  pool,
  RUNTIME,
  removeAll,
  removeCgroups,
} from './lib/containers.mjs';
import { summarize } from './lib/stats.mjs';
import { machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE = 'node e2e/bench/phases.mjs [--n 30] [--running 1] [--target ctrd|containerd|both]';
const { values } = benchArgs(USAGE, {
  n: { type: 'string', default: '30' },
  running: { type: 'string', default: '1' },
  target: { type: 'string', default: 'both' },
});
const n = intFlag(values.n, 'n');
const running = intFlag(values.running, 'running');
const targets = daemonTargets(values.target);
const PHASES = ['containers.create', 'tasks.create', 'tasks.start', 'kill+wait', 'tasks.delete'];

async function timed(samples, phase, fn) {
  const t0 = performance.now();
  const r = await fn();
  samples[phase].push(performance.now() - t0);
  return r;
}

async function measure(name, rootfs) {
  const cgroupParent = `bench-phases-${name}-${process.pid}`;
  defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  const target = await startTarget(name);
  defer(`${name} daemon`, () => target.dispose());
  const api = connectTarget(target);
  defer(`${name} containers`, async () => {
    await removeAll(api);
    api.close();
  });
  const runtime = { name: RUNTIME };
  if (target.runtimeOptions)
    runtime.options = packAny(OptionsSchema, create(OptionsSchema, target.runtimeOptions));
  // Anchor containers stay up through the run: a ctrd shim with no tasks left shuts down, and the
  // next Create would then time a shim launch (~1 s of Node start-up) instead of a create.
  await pool(
    Array.from({ length: running }, (_, i) => `anchor${i}`),
    10,
    async (id) => {
      const spec = packJson(OCI_SPEC_URL, benchSpec({ rootfs, id, cgroupParent, args: ['sleep', '3600'] }));
      await api.containers.create({ container: { id, runtime, spec } });
      await api.tasks.create({ containerId: id });
      await api.tasks.start({ containerId: id });
    },
  );
  const samples = Object.fromEntries(PHASES.map((p) => [p, []]));
  // One warm-up start, not counted: it pays page-cache misses.
  for (let i = -1; i < n; i++) {
    const id = `p${i + 1}`;
    const s = i < 0 ? Object.fromEntries(PHASES.map((p) => [p, []])) : samples;
    const spec = packJson(OCI_SPEC_URL, benchSpec({ rootfs, id, cgroupParent, args: ['sleep', '3600'] }));
    await timed(s, 'containers.create', () => api.containers.create({ container: { id, runtime, spec } }));
    await timed(s, 'tasks.create', () => api.tasks.create({ containerId: id }));
    await timed(s, 'tasks.start', () => api.tasks.start({ containerId: id }));
    await timed(s, 'kill+wait', async () => {
      const waiting = api.tasks.wait({ containerId: id });
      await api.tasks.kill({ containerId: id, signal: 9 });
      await waiting;
    });
    await timed(s, 'tasks.delete', () => api.tasks.delete({ containerId: id }));
    await api.containers.delete({ id });
  }
  log(`${name}: ${n} starts timed with ${running} other containers running`);
  return Object.fromEntries(PHASES.map((p) => [p, summarize(samples[p])]));
}

async function main() {
  const { dir: rootfs, dispose } = await busyboxRootfs();
  defer('busybox rootfs', dispose);
  const results = {};
  for (const t of targets) results[t] = await measure(t, rootfs);
  const f = (x) => (x === undefined ? '' : x.toFixed(1));
  const lines = [
    machineTable(await machine()),
    '',
    `${n} sequential starts per target, ${running} other containers running, ms:`,
    '',
  ];
  lines.push(
    '| phase | ctrd median | ctrd p95 | containerd median | containerd p95 | median ctrd/containerd |',
  );
  lines.push('|---|---|---|---|---|---|');
  for (const p of PHASES) {
    const a = results.ctrd?.[p];
    const b = results.containerd?.[p];
    const ratio = a && b ? `${(a.median / b.median).toFixed(2)}x` : '';
    lines.push(`| ${p} | ${f(a?.median)} | ${f(a?.p95)} | ${f(b?.median)} | ${f(b?.p95)} | ${ratio} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await runBench('phases', main);
