import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createInMemoryClient, isInvalidArgument, OCI_SPEC_URL, packAny, packJson } from '@ctrd/api-proto';
import { MetricsSchema as V1MetricsSchema } from '@ctrd/api-proto/cgroups/v1';
import { MetricsSchema as V2MetricsSchema } from '@ctrd/api-proto/cgroups/v2';
import { ContainersService } from '@ctrd/api-proto/containers';
import { TaskExitSchema } from '@ctrd/api-proto/event-types';
import { type Envelope, EventsService } from '@ctrd/api-proto/events';
import { TasksService } from '@ctrd/api-proto/tasks';
import { type Counter, type Gauge, renderPrometheus, type Timer } from '@ctrd/metrics';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, type PluginSet, PluginType } from '../src/plugin.js';
import type { LocalTasks } from '../src/runtime/local-tasks.js';
import type { LocalContainers } from '../src/services/containers.js';
import type { Exchange } from '../src/services/exchange.js';
import { tasksService } from '../src/services/tasks.js';
import { parseHostPort } from '../src/telemetry/address.js';
import { LoopDelay } from '../src/telemetry/loop-delay.js';
import { type TaskStats, taskStatsCollector } from '../src/telemetry/task-stats.js';
import { Telemetry } from '../src/telemetry/telemetry.js';

// The telemetry registry wired to the real plugins (served in memory): what the counters say after
// real calls, the text report's blocks, the container collector, and the exporters on real sockets.

let root: string;
let plugins: PluginSet;
let telemetry: Telemetry;
let out: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrd-telemetry-'));
  out = '';
  telemetry = new Telemetry({ intervalMs: 0, out: { write: (s: string) => (out += s) } });
  plugins = await initPlugins(builtinPlugins({ root }), {
    config: { ...defaultConfig, root, stateDir: join(root, 'state') },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    rootDir: root,
    stateDir: join(root, 'state'),
    metrics: telemetry.registry,
  });
  const exchange = plugins.get<Exchange>(PluginType.Event, 'exchange');
  const containers = plugins.get<LocalContainers>(PluginType.Service, 'containers-service');
  telemetry.bind({ containers: () => containers.count(), events: () => exchange.stats() });
  await telemetry.start();
});

afterEach(async () => {
  await telemetry.stop();
  await plugins.close();
  await rm(root, { recursive: true, force: true });
});

const client = <T extends Parameters<typeof createInMemoryClient>[0]>(svc: T, namespace = 'default') =>
  createInMemoryClient(svc, { services: plugins.services, namespace });
const counter = (name: string) => (telemetry.registry.get(name) as Counter).count();
const exit = (id: string) => packAny(TaskExitSchema, create(TaskExitSchema, { containerId: id, id }));
const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['/bin/true'] } });
const container = (id: string) => ({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec } });

describe('telemetry wired to the plugins', () => {
  it('events counts what is published; events-subscribers follows live subscriptions', async () => {
    const ev = client(EventsService);
    expect(counter('events')).toBe(0);
    await ev.publish({ topic: '/tasks/exit', event: exit('a') });
    await ev.publish({ topic: '/tasks/exit', event: exit('b') });
    expect(counter('events')).toBe(2);

    expect(counter('events-subscribers')).toBe(0);
    const ac = new AbortController();
    const got: Envelope[] = [];
    const reading = (async () => {
      for await (const e of client(EventsService).subscribe({}, { signal: ac.signal })) got.push(e);
    })().catch(() => undefined);
    await waitFor(() => counter('events-subscribers') === 1);
    await ev.publish({ topic: '/tasks/exit', event: exit('c') });
    await waitFor(() => got.length === 1);
    expect(counter('events')).toBe(3);
    ac.abort();
    await reading;
    await waitFor(() => counter('events-subscribers') === 0);
  });

  it('containers counts the store over every namespace, creates and deletes', async () => {
    await client(ContainersService, 'ns-a').create(container('one'));
    await client(ContainersService, 'ns-b').create(container('two'));
    await client(ContainersService, 'ns-b').create(container('three'));
    expect(counter('containers')).toBe(3);
    await client(ContainersService, 'ns-b').delete({ id: 'two' });
    expect(counter('containers')).toBe(2);
    // The container events went through the exchange too.
    expect(counter('events')).toBe(4);
  });

  it('the text report has the seed blocks, in the seed order, with the live figures', async () => {
    await client(ContainersService).create(container('web'));
    telemetry.report();
    const lines = out.trimEnd().split('\n');
    expect(lines.every((l) => /^\[ctrd\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /.test(l))).toBe(true);
    const body = lines.map((l) => l.slice('[ctrd] 2015/12/16 11:48:28 '.length));
    const blocks = body.filter((l) => !l.startsWith('  '));
    expect(blocks.slice(0, 4)).toEqual([
      'timer container-start-time',
      'counter containers',
      'counter events',
      'counter events-subscribers',
    ]);
    expect(blocks).toEqual(
      expect.arrayContaining([
        'gauge event-loop-handles',
        'gauge fds',
        'gauge heap-used-bytes',
        'gauge event-loop-delay-mean-ns',
        'gauge event-loop-delay-p99-ns',
      ]),
    );
    const after = (block: string) => body[body.indexOf(block) + 1];
    expect(after('counter containers')).toBe(`  count:               1`);
    expect(after('counter events')).toBe(`  count:               1`);
    expect(after('timer container-start-time')).toBe(`  count:               0`);
    expect(Number(after('gauge fds')?.split(/\s+/).at(-1))).toBeGreaterThan(2);
    expect(body.filter((l) => l.startsWith('  ')).map((l) => l.trim().split(/:\s+/)[0])).toContain(
      'mean rate',
    );
  });

  it('Tasks.Start of an init records into container-start-time; an exec does not', async () => {
    const started: string[] = [];
    const fake = {
      start: async (_ns: string, id: string, execId: string) => {
        started.push(`${id}/${execId}`);
        await new Promise((r) => setTimeout(r, 30));
        return 42;
      },
    } as unknown as LocalTasks;
    const timer = telemetry.registry.timer('container-start-time');
    const tasks = createInMemoryClient(TasksService, {
      services: [tasksService(fake, timer)],
      namespace: 'default',
    });
    expect((await tasks.start({ containerId: 'web' })).pid).toBe(42);
    await tasks.start({ containerId: 'web', execId: 'x1' });
    expect(started).toEqual(['web/', 'web/x1']);
    const snap = (telemetry.registry.get('container-start-time') as Timer).snapshot();
    expect(snap.count).toBe(1);
    // In ns: at least the 30 ms the fake took, and less than this test's whole 20 s budget.
    expect(snap.min).toBeGreaterThanOrEqual(25e6);
    expect(snap.max).toBeLessThan(20e9);
  });

  it('plugins see the registry in their context (where tasks takes the timer from)', async () => {
    let seen: unknown;
    const set = await initPlugins(
      [
        {
          type: PluginType.Internal,
          id: 'probe',
          init: (ctx) => {
            seen = ctx.metrics;
            return {};
          },
        },
      ],
      {
        config: defaultConfig,
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        rootDir: root,
        stateDir: root,
        metrics: telemetry.registry,
      },
    );
    await set.close();
    expect(seen).toBe(telemetry.registry);
    expect(telemetry.registry.timer('container-start-time')).toBe(telemetry.startTime);
  });
});

describe('container families at scrape time', () => {
  const v1 = (usage: bigint) =>
    packAny(
      V1MetricsSchema,
      create(V1MetricsSchema, { memory: { usage: { usage } }, pids: { current: 2n } }),
    );
  const v2 = (usage: bigint) => packAny(V2MetricsSchema, create(V2MetricsSchema, { memory: { usage } }));

  it('labels each task by namespace and id, skips one that cannot be decoded', async () => {
    const stats: TaskStats[] = [
      { namespace: 'default', id: 'web', data: v1(1000n) },
      { namespace: 'team', id: 'db', data: v2(2000n) },
      { namespace: 'default', id: 'bad', data: { ...v1(1n), value: new Uint8Array([0xff, 0xff, 0xff]) } },
      { namespace: 'default', id: 'none', data: undefined },
    ];
    const text = await renderPrometheus(telemetry.registry, {
      namespace: 'ctrd',
      collectors: [taskStatsCollector(() => async () => stats)],
    });
    expect(text).toMatch(/^container_memory_usage_bytes\{namespace="default",id="web"\} 1000$/m);
    expect(text).toMatch(/^container_memory_usage_bytes\{namespace="team",id="db"\} 2000$/m);
    expect(text).not.toMatch(/id="bad"|id="none"/);
    expect(text).toMatch(/^ctrd_containers_total 0$/m);
    expect(text).toMatch(/^# TYPE ctrd_container_start_time_seconds summary$/m);
  });

  it('no task source: daemon families only', async () => {
    const text = await renderPrometheus(telemetry.registry, {
      collectors: [taskStatsCollector(() => undefined)],
    });
    expect(text).not.toMatch(/container_memory/);
  });
});

describe('exporters', () => {
  let graphite: Server;
  let received: string;
  beforeEach(async () => {
    received = '';
    graphite = createServer((s) => s.on('data', (d) => (received += d)));
    graphite.listen(0, '127.0.0.1');
    await once(graphite, 'listening');
  });
  afterEach(async () => {
    graphite.close();
  });

  it('serves /metrics and sends graphite lines, and stop() ends both', async () => {
    const port = (graphite.address() as { port: number }).port;
    const t = new Telemetry({
      intervalMs: 50,
      graphiteAddress: `127.0.0.1:${port}`,
      metricsAddress: '127.0.0.1:0',
    });
    t.bind({ containers: () => 7 });
    await t.start();
    try {
      const url = t.metricsUrl;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(url as string);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^ctrd_containers_total 7$/m);
      await waitFor(() => /^ctrd\.containers\.count 7 \d+$/m.test(received));
      expect(received).toMatch(/^ctrd\.container-start-time\.count 0 \d+$/m);
      expect(received).toMatch(/^ctrd\.fds\.value \d+ \d+$/m);
    } finally {
      await t.stop();
    }
    await expect(fetch(t.metricsUrl as string)).rejects.toThrow();
    await t.stop();
  });

  it('a bad metrics address fails start and leaves nothing running', async () => {
    const t = new Telemetry({ intervalMs: 0, metricsAddress: 'nonsense' });
    expect(isInvalidArgument(await t.start().catch((e) => e))).toBe(true);
    const gauge = t.registry.get('fds') as Gauge;
    expect(gauge.value()).toBeGreaterThan(0);
  });
});

describe('LoopDelay', () => {
  it('shows a blocked loop in its window, and a quiet window after', async () => {
    const d = new LoopDelay({ resolutionMs: 10, windowMs: 300 });
    d.start();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const end = Date.now() + 120;
      while (Date.now() < end) {
        // keep the loop busy
      }
      // Seen while its window is the first, or once it is the last complete one (a slow machine
      // may have closed a quiet window before the loop was blocked).
      await expect.poll(() => d.figures().p99Ns).toBeGreaterThan(80e6);
      // The busy window closes; a quiet one follows and replaces it.
      await expect.poll(() => d.figures().p99Ns).toBeLessThan(80e6);
      expect(d.figures().meanNs).toBeGreaterThanOrEqual(0);
    } finally {
      d.stop();
    }
  });
});

describe('parseHostPort', () => {
  it('host:port, [v6]:port, :port', () => {
    expect(parseHostPort('127.0.0.1:9090', 'x')).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(parseHostPort('[::1]:0', 'x')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort(':9', 'x')).toEqual({ host: '127.0.0.1', port: 9 });
    for (const bad of ['', 'host', '1.2.3.4:70000', '::1:9', 'a:b'])
      expect(
        isInvalidArgument(
          (() => {
            try {
              parseHostPort(bad, 'x');
            } catch (e) {
              return e;
            }
          })(),
        ),
        bad,
      ).toBe(true);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
