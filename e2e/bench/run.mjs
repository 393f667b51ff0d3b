#!/usr/bin/env node
// Start-time benches (issue 9), busybox `sleep 3600` containers with the density bench's spec:
//
//   node e2e/bench/run.mjs seed [--n 1000] [--concurrency 10] [--target ctrd|containerd]
//     N containers started C at a time through containerd's v1 API; the seed's report of the time
//     each start took (Containers.Create + Tasks.Create + Tasks.Start) and containers per second.
//   node e2e/bench/run.mjs throughput [--n 100] [--concurrency 1,10,50] [--target all|runc|containerd|ctrd]
//     N starts at each concurrency against raw runc (`runc run -d` of prepared bundles through
//     @ctrd/runc-client), stock containerd and ctrd: starts/s, p50/p99 and the ratios.
//
// Build first (npx tsc -b packages/daemon packages/ctr packages/runc-client). Needs root.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runc } from '@ctrd/runc-client';
import { benchArgs, intFlag } from './lib/args.mjs';
import { benchSignal, cleanupAll, defer, installSignalHandlers } from './lib/cleanup.mjs';
import {
  benchSpec,
  busyboxRootfs,
  connectTarget,
  pool,
  removeAll,
  removeCgroups,
  startContainer,
} from './lib/containers.mjs';
import { summarize, seedReport } from './lib/stats.mjs';
import { machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE = [
  'node e2e/bench/run.mjs seed [--n 1000] [--concurrency 10] [--target ctrd|containerd]',
  '       node e2e/bench/run.mjs throughput [--n 100] [--concurrency 1,10,50] [--target all|runc|containerd|ctrd]',
].join('\n');
const { values, positionals } = benchArgs(USAGE, {
  n: { type: 'string' },
  concurrency: { type: 'string' },
  target: { type: 'string' },
});
const mode = positionals[0];
if (mode !== 'seed' && mode !== 'throughput') {
  process.stderr.write(`mode "${mode ?? ''}": expected seed or throughput\nusage: ${USAGE}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`${msg}\n`);
const args = ['sleep', '3600'];

/** Starts `ids` at `concurrency` through `start(id)`; per-start ms and the wall time in s. */
async function timedStarts(ids, concurrency, start) {
  const samples = [];
  const t0 = performance.now();
  await pool(
    ids,
    concurrency,
    async (id) => {
      const t = performance.now();
      await start(id);
      samples.push(performance.now() - t);
    },
    benchSignal,
  );
  return { samples, seconds: (performance.now() - t0) / 1000 };
}

/** A daemon target (ctrd or containerd): start containers through the API, remove them all after. */
async function daemonRunner(name, rootfs) {
  const target = await startTarget(name);
  const undoTarget = defer(`${name} daemon`, () => target.dispose());
  const api = connectTarget(target);
  const cgroupParent = `bench-${name}-${process.pid}`;
  const undoCgroups = defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  let inflight = Promise.resolve();
  const undoContainers = defer(`${name} containers`, async () => {
    await inflight.catch(() => {});
    await removeAll(api);
  });
  return {
    name,
    run(ids, concurrency) {
      const p = timedStarts(ids, concurrency, (id) =>
        startContainer(api, target, benchSpec({ rootfs, id, cgroupParent, args }), id),
      );
      inflight = p;
      return p;
    },
    clear: async () => {
      await removeAll(api);
      await removeCgroups(cgroupParent);
    },
    async dispose() {
      await undoContainers();
      api.close();
      await undoTarget();
      await undoCgroups();
    },
  };
}

/** Raw runc: one bundle per container (the same spec), `runc run -d`, then kill + delete --force. */
async function runcRunner(rootfs) {
  const dir = await mkdtemp(join(tmpdir(), 'ctrd-bench-runc-'));
  const undoDir = defer('runc dir', () => rm(dir, { recursive: true, force: true }));
  const runc = new Runc({ root: join(dir, 'root') });
  const cgroupParent = `bench-runc-${process.pid}`;
  const undoCgroups = defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  const started = new Set();
  let inflight = Promise.resolve();
  const clear = async () => {
    await inflight.catch(() => {});
    await pool([...started], 10, async (id) => {
      await runc.kill(id, 'SIGKILL').catch(() => {});
      await runc.delete(id, { force: true }).catch(() => {});
      started.delete(id);
    });
    await removeCgroups(cgroupParent);
  };
  const undoContainers = defer('runc containers', clear);
  return {
    name: 'runc',
    async run(ids, concurrency) {
      // Bundles are prepared before the clock starts: runc is timed on `run -d` alone.
      for (const id of ids) {
        const bundle = join(dir, 'bundles', id);
        await mkdir(bundle, { recursive: true });
        await writeFile(
          join(bundle, 'config.json'),
          JSON.stringify(benchSpec({ rootfs, id, cgroupParent, args })),
        );
      }
      const p = timedStarts(ids, concurrency, async (id) => {
        started.add(id);
        await runc.run(id, join(dir, 'bundles', id), { detach: true });
      });
      inflight = p;
      return p;
    },
    clear,
    async dispose() {
      await undoContainers();
      await undoCgroups();
      await undoDir();
    },
  };
}

async function seed(rootfs) {
  const n = intFlag(values.n ?? '1000', 'n');
  const concurrency = intFlag(values.concurrency ?? '10', 'concurrency');
  const name = values.target ?? 'ctrd';
  log(`seed: ${n} containers on ${name}, ${concurrency} at a time`);
  const runner = await daemonRunner(name, rootfs);
  const { samples, seconds } = await runner.run(
    Array.from({ length: n }, (_, i) => `s${i}`),
    concurrency,
  );
  log(`seed: removing ${n} containers`);
  await runner.dispose();
  return seedReport(
    `## seed: ${name}, ${n} busybox containers, ${concurrency} at a time\n\ncontainer-start-time (Containers.Create + Tasks.Create + Tasks.Start)`,
    summarize(samples),
    n / seconds,
  );
}

async function throughput(rootfs) {
  const n = intFlag(values.n ?? '100', 'n');
  const levels = (values.concurrency ?? '1,10,50').split(',').map((c) => intFlag(c, 'concurrency'));
  const which = values.target ?? 'all';
  const names = which === 'all' ? ['runc', 'containerd', 'ctrd'] : which.split(',');
  const results = [];
  for (const name of names) {
    benchSignal.throwIfAborted();
    log(`throughput: ${name}`);
    const runner = name === 'runc' ? await runcRunner(rootfs) : await daemonRunner(name, rootfs);
    for (const c of levels) {
      const ids = Array.from({ length: n }, (_, i) => `t${c}-${i}`);
      const { samples, seconds } = await runner.run(ids, c);
      const st = summarize(samples);
      results.push({ name, c, perSecond: n / seconds, p50: st.median, p99: st.p99 });
      log(`  C=${c}: ${(n / seconds).toFixed(1)} starts/s`);
      await runner.clear();
    }
    await runner.dispose();
  }
  const lines = [
    `## throughput: ${n} busybox starts per concurrency level`,
    '',
    '| C | target | starts/s | p50 ms | p99 ms | ctrd/containerd | ctrd/runc |',
    '|---|---|---|---|---|---|---|',
  ];
  const find = (name, c) => results.find((r) => r.name === name && r.c === c);
  for (const c of levels)
    for (const r of results.filter((x) => x.c === c)) {
      const ctrd = find('ctrd', c);
      const ratio = (other) =>
        r.name === 'ctrd' && other ? (ctrd.perSecond / other.perSecond).toFixed(2) : '';
      lines.push(
        `| ${c} | ${r.name} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${ratio(find('containerd', c))} | ${ratio(find('runc', c))} |`,
      );
    }
  return lines.join('\n');
}

installSignalHandlers();
let failed = false;
try {
  const m = await machine();
  const rootfs = await busyboxRootfs();
  defer('rootfs', rootfs.dispose);
  const report = mode === 'seed' ? await seed(rootfs.dir) : await throughput(rootfs.dir);
  process.stdout.write(`${machineTable(m)}\n\n${report}\n`);
} catch (e) {
  failed = true;
  log(`run ${mode}: ${e?.stack ?? e}`);
} finally {
  await cleanupAll();
}
process.exit(failed ? 1 : 0);
