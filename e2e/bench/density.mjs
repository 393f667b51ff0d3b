#!/usr/bin/env node
// Memory per running container: N busybox `sleep 3600` containers started through containerd's v1
// API on a private ctrd and/or a private stock containerd, then the PSS of the daemon and all its
// shims (from /proc/PID/smaps_rollup) and the drop in MemAvailable, divided by N.
//
//   node e2e/bench/density.mjs [--n 100] [--target ctrd|containerd|both] [--concurrency 10]
//
// Build first (npx tsc -b packages/daemon packages/ctr). Needs root, runc and busybox-static.
import { benchArgs, daemonTargets, intFlag, log, sleep } from './lib/args.mjs';
import { benchSignal, defer, runBench } from './lib/cleanup.mjs';
import {
  benchSpec,
  busyboxRootfs,
  connectTarget,
  leftoverCgroups,
  pool,
  removeAll,
  removeCgroups,
  startContainer,
  waitRunning,
} from './lib/containers.mjs';
import { machine, machineTable, mb, meminfo, pssKb } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE = 'node e2e/bench/density.mjs [--n 100] [--target ctrd|containerd|both] [--concurrency 10]';
const { values } = benchArgs(USAGE, {
  n: { type: 'string', default: '100' },
  target: { type: 'string', default: 'both' },
  concurrency: { type: 'string', default: '10' },
});
const n = intFlag(values.n, 'n');
const concurrency = intFlag(values.concurrency, 'concurrency');
const targets = daemonTargets(values.target);

async function measure(name, rootfs) {
  const cgroupParent = `bench-${name}-${process.pid}`;
  const undoCgroups = defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  // Settle, then the baseline before the daemon exists: the delta then holds daemon, shims and containers.
  await sleep(1000);
  const before = meminfo().MemAvailable;
  log(`${name}: starting the daemon`);
  const target = await startTarget(name);
  const undoTarget = defer(`${name} daemon`, () => target.dispose());
  const api = connectTarget(target);
  const ids = Array.from({ length: n }, (_, i) => `d${i}`);
  const t0 = performance.now();
  const starting = pool(
    ids,
    concurrency,
    (id) => startContainer(api, target, benchSpec({ rootfs, id, cgroupParent, args: ['sleep', '3600'] }), id),
    benchSignal,
  );
  const undoContainers = defer(`${name} containers`, async () => {
    // On Ctrl-C the starts in flight finish first, so the list below holds every container made.
    await starting.catch(() => {});
    await removeAll(api);
    api.close();
  });
  await starting;
  const running = await waitRunning(api, ids);
  const seconds = (performance.now() - t0) / 1000;
  if (running !== n) throw new Error(`${name}: only ${running} of ${n} containers are running`);
  log(`${name}: ${n} containers running after ${seconds.toFixed(1)} s; letting memory settle`);
  await sleep(3000);

  const shims = target.shimPids();
  const daemonKb = pssKb(target.pid);
  const shimsKb = shims.reduce((sum, pid) => sum + pssKb(pid), 0);
  const after = meminfo().MemAvailable;
  const row = {
    name,
    n,
    seconds,
    daemonMb: mb(daemonKb),
    shimsMb: mb(shimsKb),
    shimCount: shims.length,
    totalMb: mb(daemonKb + shimsKb),
    perContainerMb: mb(daemonKb + shimsKb) / n,
    availDeltaPerContainerMb: mb(before - after) / n,
  };

  log(`${name}: removing the containers and stopping the daemon`);
  await undoContainers();
  await undoTarget();
  await sleep(500);
  await undoCgroups();
  const left = leftoverCgroups(cgroupParent);
  if (left.length > 0) log(`${name}: cgroups left under ${left.join(', ')}`);
  return row;
}

function resultTable(rows) {
  const f = (x, d = 1) => x.toFixed(d);
  const lines = [
    '| target | N | daemon PSS MB | shims PSS MB (count) | total MB | per container MB | MemAvailable Δ per container MB | start all s |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.name} | ${r.n} | ${f(r.daemonMb)} | ${f(r.shimsMb)} (${r.shimCount}) | ${f(r.totalMb)} | ${f(r.perContainerMb, 2)} | ${f(r.availDeltaPerContainerMb, 2)} | ${f(r.seconds)} |`,
    );
  return lines.join('\n');
}

await runBench('density', async () => {
  const m = await machine();
  const rootfs = await busyboxRootfs();
  defer('rootfs', rootfs.dispose);
  const rows = [];
  for (const t of targets) {
    benchSignal.throwIfAborted();
    rows.push(await measure(t, rootfs.dir));
  }
  process.stdout.write(
    `## density: ${n} busybox \`sleep 3600\` containers, started ${concurrency} at a time\n\n${machineTable(m)}\n\n${resultTable(rows)}\n`,
  );
});
