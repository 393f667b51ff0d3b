import { create } from '@bufbuild/protobuf';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  createClient,
  createUnixTransport,
  isInvalidArgument,
  OCI_SPEC_URL,
  packJson,
  type UnixTransport,
} from '@ctrd/api-proto';
import { ContainerSchema, ContainersService } from '@ctrd/api-proto/containers';
import { VersionService } from '@ctrd/api-proto/version';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { type Daemon, startDaemon } from '../src/daemon.js';
import { PluginType } from '../src/plugin.js';
import type { LocalContainers } from '../src/services/containers.js';
import type { MetaStore } from '../src/store/meta-store.js';

// One request must not stall the daemon: Node serves every call on one thread. A `~=` filter
// that backtracks (`^(a|a)+$` on a long stored value) used to hold it for good, Version included,
// and again after each restart since the value is stored; a list over many objects held it for as
// long as the list took. Through the real server and client, on a unix socket.

const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['/bin/true'] } });
const runtime = { name: 'io.containerd.runc.v2' };

let dir: string;
let d: Daemon;
let transport: UnixTransport;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-loop-'));
  d = await startDaemon({
    ...defaultConfig,
    root: join(dir, 'root'),
    stateDir: join(dir, 'state'),
    listen: join(dir, 'd.sock'),
  });
  transport = createUnixTransport({ address: join(dir, 'd.sock'), namespace: 'loop' });
});
afterEach(async () => {
  transport.close();
  await d.close({ graceMs: 1000 });
  await rm(dir, { recursive: true, force: true });
});

/** How long `p` takes to settle, in ms. */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await p;
  return { ms: performance.now() - start, value };
}

describe('the event loop under pathological filters', () => {
  it('^(a|a)+$ against the longest id and a 4 KiB label answers at once; Version meanwhile too', async () => {
    const containers = createClient(ContainersService, { transport });
    const version = createClient(VersionService, { transport });
    // The longest identifier (76) and nearly the largest label (key + value <= 4096).
    const id = `${'a'.repeat(75)}b`;
    await containers.create({ container: { id, runtime, spec, labels: { x: `${'a'.repeat(4000)}b` } } });
    await containers.create({
      container: { id: 'a'.repeat(76), runtime, spec, labels: { x: 'a'.repeat(4000) } },
    });
    await version.version({});

    for (const filter of ['id~=^(a|a)+$', 'labels.x~=^(a|a)+$', 'labels.x~="^(a|aa)*(a|a)+$"']) {
      const [list, ver] = await Promise.all([
        timed(containers.list({ filters: [filter] })),
        // Sent after the list, so it waits behind it if the list holds the loop.
        timed(new Promise<void>((r) => setImmediate(r)).then(() => version.version({}))),
      ]);
      if (process.env.CTRD_LOOP_FIGURES) {
        process.stderr.write(`${filter}: List ${list.ms.toFixed(1)} ms, Version ${ver.ms.toFixed(1)} ms\n`);
      }
      expect(
        list.value.containers.map((c) => c.id),
        filter,
      ).toEqual(['a'.repeat(76)]);
      expect(list.ms, filter).toBeLessThan(500);
      expect(ver.ms, filter).toBeLessThan(100);
    }
    // What RE2 refuses, containerd's Go regexp refuses too: a clear InvalidArgument.
    const err = await containers.list({ filters: ['id~=(a)\\1'] }).catch((e) => e);
    expect(isInvalidArgument(err)).toBe(true);
    expect(String(err.message)).toMatch(
      /filter "id~=\(a\)\\\\1": error parsing regexp: invalid escape sequence/,
    );
  });

  it('a ~= list over 20,000 containers keeps the loop delay low and Version quick', async () => {
    const local = d.plugins.get<LocalContainers>(PluginType.Service, 'containers-service');
    const store = d.plugins.get<MetaStore>(PluginType.Metadata, 'sqlite');
    const n = 20_000;
    store.write(() => {
      for (let i = 0; i < n; i++) {
        const id = `c-${String(i).padStart(5, '0')}`;
        local.create(
          'loop',
          create(ContainerSchema, { id, runtime, spec, labels: { x: `${'a'.repeat(200)}${i}` } }),
        );
      }
    });
    await store.durable();
    const containers = createClient(ContainersService, { transport });
    const version = createClient(VersionService, { transport });
    await version.version({});
    const ids = Array.from({ length: n }, (_, i) => `c-${String(i).padStart(5, '0')}`);

    /** Runs `call` with the loop delay monitored and Version called every 5 ms meanwhile. */
    async function watched<T>(call: () => Promise<T>) {
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      let versions = 0;
      let slowest = 0;
      let running = true;
      const pinger = (async () => {
        while (running) {
          const v = await timed(version.version({}));
          slowest = Math.max(slowest, v.ms);
          versions++;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const out = await timed(call());
      running = false;
      await pinger;
      delay.disable();
      return { ...out, maxDelayMs: delay.max / 1e6, versions, slowest };
    }
    // Figures for the report: `CTRD_LOOP_FIGURES=1 npx vitest run test/event-loop.test.ts`.
    const report = (
      what: string,
      r: { ms: number; maxDelayMs: number; versions: number; slowest: number },
    ) => {
      if (process.env.CTRD_LOOP_FIGURES) {
        process.stderr.write(
          `${what}: ${r.ms.toFixed(0)} ms; loop delay max ${r.maxDelayMs.toFixed(1)} ms; ${r.versions} Version calls, slowest ${r.slowest.toFixed(1)} ms\n`,
        );
      }
    };

    // The ~= pattern is tried on all 20,000; 400 match. (The answer is kept small on purpose: a
    // unary answer is encoded in one go, ~70 ms a MB here; large lists are for ListStream.)
    const list = await watched(() => containers.list({ filters: ['labels.x~=^(a|a)+[0-9]*77$', 'id~=00$'] }));
    report(`List ~= over ${n}`, list);
    expect(list.value.containers.map((c) => c.id)).toEqual(
      ids.filter((_, i) => i % 100 === 77 || i % 100 === 0),
    );
    expect(list.maxDelayMs).toBeLessThan(250);
    expect(list.versions).toBeGreaterThan(1);
    expect(list.slowest).toBeLessThan(250);

    const streamed = await watched(async () => {
      const got: string[] = [];
      for await (const m of containers.listStream({ filters: ['labels.x~=^(a|a)+[0-9]*$'] }))
        got.push(m.container!.id);
      return got;
    });
    report(`ListStream ~= of ${n}`, streamed);
    expect(streamed.value).toEqual(ids);
    expect(streamed.maxDelayMs).toBeLessThan(250);
    expect(streamed.versions).toBeGreaterThan(1);
    expect(streamed.slowest).toBeLessThan(250);
  }, 120_000);
});
