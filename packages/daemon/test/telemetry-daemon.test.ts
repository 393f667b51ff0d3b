import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createUnixTransport, OCI_SPEC_URL, packJson } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';

// The daemon as a library with telemetry on: it serves its figures while running, stops every
// output on close, and a taken metrics address fails the start without leaving the root locked.

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-teled-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = () => ({
  ...defaultConfig,
  root: join(dir, 'root'),
  stateDir: join(dir, 'state'),
  listen: join(dir, 'd.sock'),
  metricsInterval: 50,
  metricsAddress: '127.0.0.1:0',
});

describe('startDaemon with telemetry', () => {
  it('reports and serves live figures; close stops the report and the listener', async () => {
    let out = '';
    const d = await startDaemon(config(), { metricsOut: { write: (s: string) => (out += s) } });
    const transport = createUnixTransport({ address: join(dir, 'd.sock'), namespace: 'x' });
    try {
      const containers = createClient(ContainersService, { transport });
      await containers.create({
        container: { id: 'c1', runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(OCI_SPEC_URL, {}) },
      });
      const url = d.telemetry.metricsUrl as string;
      expect(await (await fetch(url)).text()).toMatch(/^ctrd_containers_total 1$/m);
      await expect.poll(() => out).toMatch(/counter containers\n\[ctrd\] [\d/: ]+ {3}count: +1\n/);
    } finally {
      transport.close();
      await d.close({ graceMs: 1000 });
    }
    const url = d.telemetry.metricsUrl as string;
    await expect(fetch(url)).rejects.toThrow();
    const reported = out.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(out.length).toBe(reported);
  });

  it('a taken metrics address fails the start; the root is free again after', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    try {
      await expect(startDaemon({ ...config(), metricsAddress: `127.0.0.1:${port}` })).rejects.toThrow(
        /prometheus listener 127\.0\.0\.1:\d+: EADDRINUSE/,
      );
    } finally {
      taken.close();
    }
    const d = await startDaemon(config());
    await d.close({ graceMs: 1000 });
  });
});
