#!/usr/bin/env node
// Wall time of one CLI call, ours against the stock containerd ctr 1.6, on the same private ctrd:
// `ctr containers` (the seed's list) and `ctr containers ls` for ours, `ctr containers ls` for the
// stock one. Runs are interleaved so machine noise falls on all three alike; the figure that counts
// is the ratio of medians within this run (the aim: ours at most 3x the stock ctr).
//
//   node e2e/bench/ctr-startup.mjs [--runs 15] [--containers 10]
//
// Build first (npx nx run-many -t build). Needs the stock ctr (apt's containerd package).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, intFlag, log } from './lib/args.mjs';
import { cleanupAll, defer, installSignalHandlers } from './lib/cleanup.mjs';
import { summarize } from './lib/stats.mjs';
import { execP, machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE = 'node e2e/bench/ctr-startup.mjs [--runs 15] [--containers 10]';
const { values } = benchArgs(USAGE, {
  runs: { type: 'string', default: '15' },
  containers: { type: 'string', default: '10' },
});
const runs = intFlag(values.runs, 'runs');
const containers = intFlag(values.containers, 'containers', 0);
const OUR_CTR = fileURLToPath(new URL('../../packages/ctr/bin/run.js', import.meta.url));
const STOCK_CTR = '/usr/bin/ctr';

async function timed(file, args) {
  const t0 = performance.now();
  await execP(file, args, { timeout: 60_000 });
  return performance.now() - t0;
}

async function main() {
  installSignalHandlers();
  const target = await startTarget('ctrd');
  defer('ctrd daemon', () => target.dispose());
  const rootfs = join(target.dir, 'rootfs');
  await mkdir(rootfs);
  const stock = (...args) => execP(STOCK_CTR, ['--address', target.socket, ...args]);
  const ids = Array.from({ length: containers }, (_, i) => `s${i}`);
  defer('containers', async () => {
    for (const id of ids) await stock('c', 'rm', id).catch(() => {});
  });
  for (const id of ids) await stock('c', 'create', '--rootfs', rootfs, id, '/bin/true');

  const cases = [
    {
      name: 'ours: ctr containers',
      file: process.execPath,
      args: [OUR_CTR, '--address', target.socket, 'containers'],
    },
    {
      name: 'ours: ctr containers ls',
      file: process.execPath,
      args: [OUR_CTR, '--address', target.socket, 'containers', 'ls'],
    },
    {
      name: 'stock: ctr containers ls',
      file: STOCK_CTR,
      args: ['--address', target.socket, 'containers', 'ls'],
    },
  ];
  // One warm-up each: the first call pays for the page cache, not for the CLI.
  for (const c of cases) await timed(c.file, c.args);
  const samples = cases.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const [i, c] of cases.entries()) samples[i].push(await timed(c.file, c.args));
  }
  log(`${runs} interleaved runs of each, ${containers} containers listed`);

  const stats = samples.map(summarize);
  const stockMedian = stats[2].median;
  const f = (x) => x.toFixed(1);
  const lines = [
    machineTable(await machine()),
    '',
    '| command | runs | min ms | median ms | p95 ms | mean ms | median / stock |',
    '|---|---|---|---|---|---|---|',
    ...cases.map((c, i) => {
      const s = stats[i];
      return `| ${c.name} | ${s.count} | ${f(s.min)} | ${f(s.median)} | ${f(s.p95)} | ${f(s.mean)} | ${(s.median / stockMedian).toFixed(2)}x |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  await cleanupAll();
}
