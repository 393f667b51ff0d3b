import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createUnixTransport, isNotFound, isUnavailable, NotFound } from '@ctrd/api-proto';
import { EventsService } from '@ctrd/api-proto/events';
import { HealthCheckResponse_ServingStatus as S, HealthService } from '@ctrd/api-proto/health';
import { IntrospectionService } from '@ctrd/api-proto/introspection';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { PluginType } from '../src/plugin.js';
import { LocalHealth } from '../src/services/health.js';
import { type Harness, harness } from './harness.js';

// grpc.health.v1.Health: the status keeper (grpc-go's health server semantics) in memory, then the
// daemon's own over its real socket, up and on the way down.

const take = async <T>(it: AsyncIterator<T>, n: number): Promise<T[]> => {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
};

describe('Health in memory', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('Check: the server is NOT_SERVING until set; an unknown service is NotFound', async () => {
    const health = h.client(HealthService, '');
    const local = h.plugins.get<LocalHealth>(PluginType.Grpc, 'healthcheck');
    expect((await health.check({})).status).toBe(S.NOT_SERVING);
    local.set('', S.SERVING);
    expect((await health.check({ service: '' })).status).toBe(S.SERVING);
    const e = await health.check({ service: 'no.such.Service' }).catch((x: unknown) => x);
    expect(isNotFound(e)).toBe(true);
    expect((e as Error).message).toMatch(/service "no\.such\.Service": unknown service/);
  });

  it('Watch: the status at once, then each change once; an unknown service waits as SERVICE_UNKNOWN', async () => {
    const health = h.client(HealthService, '');
    const local = h.plugins.get<LocalHealth>(PluginType.Grpc, 'healthcheck');
    const ac = new AbortController();
    const server = health.watch({}, { signal: ac.signal })[Symbol.asyncIterator]();
    const later = health.watch({ service: 'later.Service' }, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await take(server, 1)).map((r) => r.status)).toEqual([S.NOT_SERVING]);
    expect((await take(later, 1)).map((r) => r.status)).toEqual([S.SERVICE_UNKNOWN]);
    local.set('', S.SERVING);
    // The same status again is not news.
    local.set('', S.SERVING);
    local.set('later.Service', S.SERVING);
    expect((await take(server, 1)).map((r) => r.status)).toEqual([S.SERVING]);
    expect((await take(later, 1)).map((r) => r.status)).toEqual([S.SERVING]);
    local.shutdown();
    expect((await take(server, 1)).map((r) => r.status)).toEqual([S.NOT_SERVING]);
    // Once shut down, nothing brings it back (grpc-go's SetServingStatus after Shutdown).
    local.set('', S.SERVING);
    expect((await health.check({})).status).toBe(S.NOT_SERVING);
    ac.abort();
  });

  it('LocalHealth: a watch ends with its signal, after what was pending', async () => {
    const local = new LocalHealth();
    const ac = new AbortController();
    const it = local.watch('', ac.signal);
    expect((await it.next()).value).toBe(S.NOT_SERVING);
    const next = it.next();
    local.set('', S.SERVING);
    ac.abort();
    expect((await next).value).toBe(S.SERVING);
    expect((await it.next()).done).toBe(true);
    expect(() => local.check('x')).toThrow(NotFound);
  });
});

describe('Health on the daemon socket', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrd-health-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('SERVING for the server and each service it serves; close: NOT_SERVING, then open calls end Unavailable at once', async () => {
    const socket = join(dir, 'd.sock');
    const d = await startDaemon({
      ...defaultConfig,
      root: join(dir, 'root'),
      stateDir: join(dir, 'state'),
      listen: socket,
      metricsInterval: 0,
    });
    const transport = createUnixTransport({ address: socket });
    let closed: Promise<void> | undefined;
    try {
      const health = createClient(HealthService, { transport });
      expect((await health.check({})).status).toBe(S.SERVING);
      for (const name of [
        'containerd.services.tasks.v1.Tasks',
        'containerd.services.containers.v1.Containers',
        'grpc.health.v1.Health',
      ])
        expect((await health.check({ service: name })).status).toBe(S.SERVING);
      expect(isNotFound(await health.check({ service: 'nope' }).catch((e: unknown) => e))).toBe(true);
      const plugins = await createClient(IntrospectionService, { transport }).plugins({
        filters: ['id==healthcheck'],
      });
      expect(plugins.plugins.map((p) => `${p.type}.${p.id}`)).toEqual(['io.containerd.grpc.v1.healthcheck']);

      const watch = health.watch({})[Symbol.asyncIterator]();
      expect((await watch.next()).value?.status).toBe(S.SERVING);
      const events = createClient(EventsService, { transport, namespace: 'default' });
      const sub = events.subscribe({})[Symbol.asyncIterator]();
      const subEnd = sub.next().then(
        () => 'event',
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 50));

      const t0 = performance.now();
      closed = d.close({ graceMs: 10_000 });
      expect((await watch.next()).value?.status).toBe(S.NOT_SERVING);
      const watchEnd = await watch.next().catch((e: unknown) => e);
      expect(isUnavailable(watchEnd)).toBe(true);
      expect((watchEnd as Error).message).toMatch(/server is shutting down/);
      expect(isUnavailable(await subEnd)).toBe(true);
      await closed;
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      transport.close();
      await (closed ?? d.close({ graceMs: 1000 }));
    }
  });
});
