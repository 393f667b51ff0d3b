#!/usr/bin/env node
// Restart recovery: N busybox `sleep 3600` containers running on a private ctrd and/or a private
// stock containerd, then the daemon is SIGKILLed (by the pid we started, as a crash) and started
// again on the same root, state and socket. Measured from the new daemon's spawn:
//   API up       the first Version.Version that succeeds (polled every 5 ms on a fresh connection)
//   all running  the first Tasks.List that shows all N tasks RUNNING with the pids they had before
//
//   node e2e/bench/restart.mjs [--n 100,1000] [--target both|ctrd|containerd] [--restarts 3] [--concurrency 10]
//
// --restarts R restarts the same daemon R times over the same containers; the table shows the
// median and the range. Build first (npx nx run-many -t build). Needs root, runc, busybox-static
// and apt's containerd.
import { benchArgs, daemonTargets, intFlag, log, sleep } from './lib/args.mjs';
import { benchSignal, defer, runBench } from './lib/cleanup.mjs';
import {
  benchSpec,
  busyboxRootfs,
  connectTarget,
  pool,
  removeAll,
  removeCgroups,
  STATUS_RUNNING,
  startContainer,
  versionAnswers,
} from './lib/containers.mjs';
import { summarize } from './lib/stats.mjs';
import { machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE =
  'node e2e/bench/restart.mjs [--n 100,1000] [--target both|ctrd|containerd] [--restarts 3] [--concurrency 10]';
const { values } = benchArgs(USAGE, {
  n: { type: 'string', default: '100,1000' },
  target: { type: 'string', default: 'both' },
  restarts: { type: 'string', default: '3' },
  concurrency: { type: 'string', default: '10' },
});
const sizes = values.n.split(',').map((x) => intFlag(x, 'n'));
const restarts = intFlag(values.restarts, 'restarts');
const concurrency = intFlag(values.concurrency, 'concurrency');
const targets = daemonTargets(values.target);

/**
 * Polls Tasks.List until every one of `pids` (id → pid before the restart) is listed RUNNING with
 * its old pid. Resolves performance.now() at the answer that showed them all and that call's ms.
 */
async function waitListed(api, pids, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let missing = pids.size;
  let lastError;
  while (Date.now() < deadline) {
    benchSignal.throwIfAborted();
    const t = performance.now();
    try {
      const { tasks } = await api.tasks.list({});
      const at = performance.now();
      missing = pids.size;
      for (const p of tasks) if (p.status === STATUS_RUNNING && pids.get(p.id) === p.pid) missing--;
      if (missing === 0) return { at, listMs: at - t };
    } catch (e) {
      lastError = e;
    }
    await sleep(5);
  }
  throw new Error(
    `${missing} of ${pids.size} tasks not listed running with their old pid after ${timeoutMs / 1000} s${lastError ? ` (last error: ${lastError.message})` : ''}`,
  );
}

async function measure(name, n, rootfs) {
  const cgroupParent = `bench-${name}-${process.pid}`;
  const undoCgroups = defer(`cgroups ${cgroupParent}`, () => removeCgroups(cgroupParent));
  log(`${name}: starting the daemon`);
  const target = await startTarget(name);
  const undoTarget = defer(`${name} daemon`, () => target.dispose());
  let api = connectTarget(target);
  // What the bench is doing to the daemon: on Ctrl-C the removal waits for it, so it finds a daemon
  // that answers (a restart under way finishes first) and every container already made.
  let busy = Promise.resolve();
  const undoContainers = defer(`${name} containers`, async () => {
    await busy.catch(() => {});
    await removeAll(api);
    api.close();
  });

  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  const pids = new Map();
  const t0 = performance.now();
  busy = pool(
    ids,
    concurrency,
    async (id) => {
      const spec = benchSpec({ rootfs, id, cgroupParent, args: ['sleep', '3600'] });
      pids.set(id, await startContainer(api, target, spec, id));
    },
    benchSignal,
  );
  await busy;
  const startSeconds = (performance.now() - t0) / 1000;
  busy = waitListed(api, pids);
  await busy;
  log(`${name}: ${n} containers running after ${startSeconds.toFixed(1)} s`);

  const apiUp = [];
  const allRunning = [];
  const listMs = [];
  for (let r = 0; r < restarts; r++) {
    benchSignal.throwIfAborted();
    api.close();
    const restarted = (async () => {
      const { spawnedAt, readyAt } = await target.restart({
        ready: () => versionAnswers(target),
        pollMs: 5,
      });
      api = connectTarget(target);
      const listed = await waitListed(api, pids);
      return { up: readyAt - spawnedAt, all: listed.at - spawnedAt, list: listed.listMs };
    })();
    busy = restarted;
    const { up, all, list } = await restarted;
    apiUp.push(up);
    allRunning.push(all);
    listMs.push(list);
    log(
      `${name}: restart ${r + 1}: API up after ${up.toFixed(0)} ms, all ${n} listed running after ${all.toFixed(0)} ms (that List took ${list.toFixed(0)} ms)`,
    );
  }

  log(`${name}: removing the containers and stopping the daemon`);
  await undoContainers();
  await undoTarget();
  await undoCgroups();
  return {
    name,
    n,
    startSeconds,
    apiUp: summarize(apiUp),
    allRunning: summarize(allRunning),
    list: summarize(listMs),
  };
}

function resultTable(rows) {
  const cell = (st) =>
    st.count > 1
      ? `${st.median.toFixed(0)} (${st.min.toFixed(0)}–${st.max.toFixed(0)})`
      : st.median.toFixed(0);
  const lines = [
    `## restart: SIGKILL of the daemon with N busybox \`sleep 3600\` running, then the same daemon again; ${restarts} restart(s) each, median (min–max) ms from the new daemon's spawn`,
    '',
    '| N | target | API up ms | all N listed running ms | that Tasks.List ms | start N s | ctrd/containerd API up | ctrd/containerd all running |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const cd = rows.find((x) => x.name === 'containerd' && x.n === r.n);
    const ratio = (k) => (r.name === 'ctrd' && cd ? (r[k].median / cd[k].median).toFixed(2) : '');
    lines.push(
      `| ${r.n} | ${r.name} | ${cell(r.apiUp)} | ${cell(r.allRunning)} | ${cell(r.list)} | ${r.startSeconds.toFixed(1)} | ${ratio('apiUp')} | ${ratio('allRunning')} |`,
    );
  }
  lines.push('', 'Ratios are of times: below 1, ctrd is faster.');
  return lines.join('\n');
}

await runBench('restart', async () => {
  const m = await machine();
  const rootfs = await busyboxRootfs();
  defer('rootfs', rootfs.dispose);
  const rows = [];
  for (const n of sizes)
    for (const t of targets) {
      benchSignal.throwIfAborted();
      rows.push(await measure(t, n, rootfs.dir));
    }
  process.stdout.write(`${machineTable(m)}\n\n${resultTable(rows)}\n`);
});
