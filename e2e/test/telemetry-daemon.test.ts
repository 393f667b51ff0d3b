import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { ctrOk, ctrRun } from './tasks-support.js';

// A private ctrd with every telemetry output on: the stock containerd 1.6 ctr starts three real
// containers (ctrd-shim, runc, busybox), then the stderr report, a graphite listener and a scrape
// of /metrics must all show them.

const NS = 'tele-e2e';
const IDS = ['tele1', 'tele2', 'tele3'];

let d: DaemonProcess | undefined;
let scratch: string;
let rootfs: string;
let graphite: Server;
let graphiteText = '';
let metricsPort = 0;

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Processes started for this daemon (its shims name the private state dir on their command line). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      // gone already
    }
  }
  return pids;
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not seen in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The last complete report block's count for `header`, e.g. "counter containers". */
function lastCount(logs: string, header: string): number | undefined {
  const lines = logs.split('\n');
  for (let i = lines.length - 2; i >= 0; i--) {
    if (lines[i]?.endsWith(` ${header}`)) {
      const m = /count:\s+(\d+)$/.exec(lines[i + 1] ?? '');
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}

// Used only once the daemon is up (the tests) or under `if (d)` (afterAll).
const ctr = (...args: string[]) => ctrRun(d!, ['-n', NS, ...args]);
const ok = (...args: string[]) => ctrOk(d!, ['-n', NS, ...args]);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ctrd-tele-'));
  rootfs = join(scratch, 'rootfs');
  await buildBusyboxRootfs(rootfs);
  graphite = createServer((s) => s.on('data', (c) => (graphiteText += c)));
  graphite.listen(0, '127.0.0.1');
  await once(graphite, 'listening');
  metricsPort = await freePort();
  d = await startDaemon({
    debug: false,
    args: [
      '--metrics-interval',
      '1s',
      '--metrics-address',
      `127.0.0.1:${metricsPort}`,
      '--graphite-address',
      `127.0.0.1:${(graphite.address() as AddressInfo).port}`,
    ],
  });
});

afterAll(async () => {
  if (d) {
    for (const id of IDS) {
      await ctr('t', 'kill', '-s', '9', id);
      await ctr('t', 'rm', '-f', id);
      await ctr('c', 'rm', id);
    }
    const dir = d.dir;
    await d.stop('SIGTERM', 10_000);
    // Shims outlive the daemon by design; any still here are ours (they name our private dir).
    for (const pid of processesUnder(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await d.dispose();
  }
  graphite.close();
  // runc removes each container's cgroup; the namespace parents are left to us.
  for (const c of readdirSync('/sys/fs/cgroup')) await rmdir(join('/sys/fs/cgroup', c, NS)).catch(() => {});
  await rm(scratch, { recursive: true, force: true });
});

describe('ctrd telemetry with three running containers', () => {
  it('report, graphite and /metrics show the containers', async () => {
    // The fifos stock ctr makes go in the test's own dir, never in /run/containerd.
    const fifos = join(scratch, 'fifo');
    await mkdir(fifos, { recursive: true });
    for (const id of IDS)
      await ok('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, id, '/bin/sleep', '600');
    expect(await ok('t', 'ls')).toMatch(/tele3\s+\d+\s+RUNNING/);

    // The stderr report, every second: the seed's blocks with the three containers and starts.
    await waitFor(
      () =>
        lastCount(d?.logs() ?? '', 'counter containers') === 3 &&
        lastCount(d?.logs() ?? '', 'timer container-start-time') === 3,
      60_000,
      'a report with 3 containers and 3 starts',
    );
    const logs = d?.logs() ?? '';
    expect(logs).toMatch(/^\[ctrd\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d timer container-start-time$/m);
    expect(logs).toMatch(/^\[ctrd\] .* {3}min: +\d{6,}$/m);
    for (const block of [
      'counter events',
      'counter events-subscribers',
      'gauge fds',
      'gauge heap-used-bytes',
    ])
      expect(logs).toContain(` ${block}\n`);
    expect(lastCount(logs, 'counter events')).toBeGreaterThanOrEqual(3 * 3);

    // Graphite: plaintext lines, the same figures. The containers counter moves at task create and
    // the start timer at start, so one report may fall between them: wait for both.
    await waitFor(
      () =>
        /^ctrd\.containers\.count 3 \d+$/m.test(graphiteText) &&
        /^ctrd\.container-start-time\.count 3 \d+$/m.test(graphiteText),
      60_000,
      'graphite containers 3 and 3 starts',
    );
    expect(graphiteText).toMatch(/^ctrd\.container-start-time\.99-percentile \d+(\.\d+)? \d+$/m);

    // Prometheus: daemon figures and each container's cgroup memory, read from its shim now.
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const samples = parseExposition(text);
    expect(samples.get('ctrd_containers_total')?.[0]?.value).toBe(3);
    expect(samples.get('ctrd_container_start_time_seconds_count')?.[0]?.value).toBe(3);
    const mem = samples.get('container_memory_usage_bytes') ?? [];
    expect(mem.map((s) => s.labels.id).sort()).toEqual(IDS);
    for (const s of mem) {
      expect(s.labels.namespace).toBe(NS);
      expect(s.value).toBeGreaterThan(0);
    }
    const pids = samples.get('container_pids_current') ?? [];
    expect(pids.filter((s) => s.value === 1).length).toBe(3);

    // A stopped container has no running task: the scrape still answers, without it.
    await ok('t', 'kill', '-s', '9', 'tele2');
    await waitFor(async () => /STOPPED/.test(await ok('t', 'ls')), 60_000, 'tele2 stopped');
    await ok('t', 'rm', 'tele2');
    const again = parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
    expect((again.get('container_memory_usage_bytes') ?? []).map((s) => s.labels.id).sort()).toEqual([
      'tele1',
      'tele3',
    ]);
  });
});

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A strict enough reader of the text format: every non-comment line must parse. */
function parseExposition(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`metrics line does not parse: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    const list = out.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1] as string, list);
  }
  return out;
}
