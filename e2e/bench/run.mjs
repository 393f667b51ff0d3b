#!/usr/bin/env node
// Start-time benches (issue 9), busybox `sleep 3600` containers with the density bench's spec:
//
//   node e2e/bench/run.mjs seed [--n 1000] [--concurrency 10] [--target ctrd|containerd]
//     N containers started C at a time through containerd's v1 API; the seed's report of the time
//     each start took (Containers.Create + Tasks.Create + Tasks.Start) and containers per second.
//   node e2e/bench/run.mjs throughput [--n 100] [--concurrency 1,10,50] [--target all|runc,runc-cs,containerd,ctrd]
//                                     [--rootfs path,overlay]
//     N starts at each concurrency against raw runc (`runc run -d` of prepared bundles through
//     @ctrd/runc-client; runc-cs: `runc create` then `runc start`, the floor both daemons share),
//     stock containerd and ctrd: starts/s, p50/p99 and the ratios; each with
//     the spec's root on a shared directory (path) and on an overlayfs snapshot per container.
//
// Build first (npx tsc -b packages/daemon packages/ctr packages/runc-client). Needs root.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runc } from '@ctrd/runc-client';
import { benchArgs, intFlag, log } from './lib/args.mjs';
import { benchSignal, defer, runBench } from './lib/cleanup.mjs';
import {
  benchSpec,
  busyboxRootfs,
  connectTarget,
  pool,
  removeAll,
  removeCgroups,
  startContainer,
} from './lib/containers.mjs';
import { mountOverlay, overlayBase, SNAPSHOTTER, unmountOverlay } from './lib/overlay.mjs';
import { summarize, seedReport } from './lib/stats.mjs';
import { cpuMs, machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE = [
  'node e2e/bench/run.mjs seed [--n 1000] [--concurrency 10] [--target ctrd|containerd]',
  '       node e2e/bench/run.mjs throughput [--n 100] [--concurrency 1,10,50] [--target all|runc,runc-cs,containerd,ctrd] [--rootfs path,overlay]',
].join('\n');
const { values, positionals } = benchArgs(USAGE, {
  n: { type: 'string' },
  concurrency: { type: 'string' },
  target: { type: 'string' },
  rootfs: { type: 'string' },
});
const mode = positionals[0];
if (mode !== 'seed' && mode !== 'throughput') {
  process.stderr.write(`mode "${mode ?? ''}": expected seed or throughput\nusage: ${USAGE}\n`);
  process.exit(2);
}
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

/**
 * A daemon target (ctrd or containerd): start containers through the API, remove them all after.
 * `variant` "path": the spec's root is the shared read-only rootfs; "overlay": each container gets
 * an overlayfs snapshot on a committed layer holding that rootfs, prepared within the timed start
 * (Snapshots.Prepare + Containers.Create + Tasks.Create with its mounts + Tasks.Start).
 */
async function daemonRunner(name, rootfs, variant = 'path') {
  const target = await startTarget(name);
  const undoTarget = defer(`${name} daemon`, () => target.dispose());
  const api = connectTarget(target);
  const cgroupParent = `bench-${name}-${process.pid}`;
  const undoCgroups = defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  const base = variant === 'overlay' ? await overlayBase(target, rootfs) : undefined;
  const prepared = new Set();
  let inflight = Promise.resolve();
  const removeSnapshots = async () => {
    if (!base) return;
    await pool([...prepared], 10, async (id) => {
      await base.remove(id);
      prepared.delete(id);
    });
  };
  const undoContainers = defer(`${name} containers`, async () => {
    await inflight.catch(() => {});
    await removeAll(api);
    await removeSnapshots();
    await base?.dispose();
  });
  const start = async (id) => {
    if (!base) return startContainer(api, target, benchSpec({ rootfs, id, cgroupParent, args }), id);
    prepared.add(id);
    const mounts = await base.prepare(id);
    const spec = benchSpec({ rootfs: 'rootfs', id, cgroupParent, args, readonly: false });
    return startContainer(api, target, spec, id, { snapshotter: SNAPSHOTTER, key: id, mounts });
  };
  // CPU of the daemon and of its shims (not of runc, their child) over one level, per start.
  const cpu = () => ({
    daemon: cpuMs(target.pid),
    shims: new Map(target.shimPids().map((p) => [p, cpuMs(p)])),
  });
  return {
    name,
    run(ids, concurrency) {
      const before = cpu();
      const p = timedStarts(ids, concurrency, start).then((r) => {
        const after = cpu();
        let shims = 0;
        for (const [pid, ms] of after.shims) shims += ms - (before.shims.get(pid) ?? 0);
        return {
          ...r,
          cpu: { daemon: (after.daemon - before.daemon) / ids.length, shims: shims / ids.length },
        };
      });
      inflight = p;
      return p;
    },
    clear: async () => {
      await removeAll(api);
      await removeSnapshots();
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

/**
 * Raw runc: one bundle per container (the same spec), `runc run -d` (or, `createStart`, `runc create`
 * then `runc start`, as both daemons' shims do), then kill + delete --force.
 * `variant` "overlay": the timed start also mounts the container's overlay (lower: the rootfs).
 */
async function runcRunner(rootfs, variant = 'path', createStart = false) {
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
      if (variant === 'overlay') await unmountOverlay(join(dir, 'bundles', id));
      started.delete(id);
    });
    await removeCgroups(cgroupParent);
  };
  const undoContainers = defer('runc containers', clear);
  return {
    name: createStart ? 'runc-cs' : 'runc',
    async run(ids, concurrency) {
      // Bundles are prepared before the clock starts: runc is timed on `run -d` alone.
      for (const id of ids) {
        const bundle = join(dir, 'bundles', id);
        await mkdir(bundle, { recursive: true });
        const spec =
          variant === 'overlay'
            ? benchSpec({ rootfs: 'rootfs', id, cgroupParent, args, readonly: false })
            : benchSpec({ rootfs, id, cgroupParent, args });
        await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
      }
      const p = timedStarts(ids, concurrency, async (id) => {
        started.add(id);
        const bundle = join(dir, 'bundles', id);
        if (variant === 'overlay') await mountOverlay(rootfs, bundle);
        if (!createStart) return runc.run(id, bundle, { detach: true });
        await runc.create(id, bundle);
        await runc.start(id);
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
  const names = which === 'all' ? ['runc', 'runc-cs', 'containerd', 'ctrd'] : which.split(',');
  for (const t of names)
    if (!['runc', 'runc-cs', 'containerd', 'ctrd'].includes(t))
      throw new Error(`--target ${t}: expected all or a list of runc, runc-cs, containerd, ctrd`);
  const variants = (values.rootfs ?? 'path,overlay').split(',');
  for (const v of variants)
    if (v !== 'path' && v !== 'overlay') throw new Error(`--rootfs ${v}: expected path, overlay or both`);
  const results = [];
  for (const variant of variants)
    for (const name of names) {
      benchSignal.throwIfAborted();
      log(`throughput: ${name}, rootfs ${variant}`);
      const runner =
        name === 'runc' || name === 'runc-cs'
          ? await runcRunner(rootfs, variant, name === 'runc-cs')
          : await daemonRunner(name, rootfs, variant);
      for (const c of levels) {
        const ids = Array.from({ length: n }, (_, i) => `${variant[0]}${c}-${i}`);
        const { samples, seconds, cpu } = await runner.run(ids, c);
        const st = summarize(samples);
        results.push({ variant, name, c, perSecond: n / seconds, p50: st.median, p99: st.p99, cpu });
        log(`  C=${c}: ${(n / seconds).toFixed(1)} starts/s`);
        await runner.clear();
      }
      await runner.dispose();
    }
  const lines = [
    `## throughput: ${n} busybox starts per concurrency level`,
    '',
    '| rootfs | C | target | starts/s | p50 ms | p99 ms | daemon CPU ms/start | shims CPU ms/start | ctrd/containerd | ctrd/runc |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const find = (variant, name, c) =>
    results.find((r) => r.variant === variant && r.name === name && r.c === c);
  for (const variant of variants)
    for (const c of levels)
      for (const r of results.filter((x) => x.variant === variant && x.c === c)) {
        const ctrd = find(variant, 'ctrd', c);
        const ratio = (other) =>
          r.name === 'ctrd' && other ? (ctrd.perSecond / other.perSecond).toFixed(2) : '';
        lines.push(
          `| ${variant} | ${c} | ${r.name} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.cpu ? r.cpu.daemon.toFixed(1) : ''} | ${r.cpu ? r.cpu.shims.toFixed(1) : ''} | ${ratio(find(variant, 'containerd', c))} | ${ratio(find(variant, 'runc', c))} |`,
        );
      }
  return lines.join('\n');
}

await runBench(`run ${mode}`, async () => {
  const m = await machine();
  const rootfs = await busyboxRootfs();
  defer('rootfs', rootfs.dispose);
  const report = mode === 'seed' ? await seed(rootfs.dir) : await throughput(rootfs.dir);
  process.stdout.write(`${machineTable(m)}\n\n${report}\n`);
});
