import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { GraphiteReporter, ManualClock, Registry, sanitizeGraphitePath } from '../src/index.js';

interface Listener {
  server: Server;
  port: number;
  lines: string[];
  sockets: Set<Socket>;
  close(): Promise<void>;
}

async function listen(port = 0): Promise<Listener> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    });
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    server,
    port: actual,
    lines,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('graphite', () => {
  test('sanitises names', () => {
    expect(sanitizeGraphitePath('container start/time')).toBe('container_start_time');
    expect(sanitizeGraphitePath('a..b.')).toBe('a.b');
  });

  test('sends plaintext lines, and reconnects after the listener restarts', async () => {
    const l1 = await listen();
    cleanups.push(() => l1.close());
    const clock = new ManualClock(1450266508_000);
    const registry = new Registry({ clock, decay: 0 });
    registry.counter('containers').inc(2);
    registry.gauge('fds', () => 18);
    registry.timer('container start/time').update(25_000_000);
    const rep = new GraphiteReporter({
      registry,
      address: `127.0.0.1:${l1.port}`,
      prefix: 'ctrd.host1',
      intervalMs: 0,
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      clock,
    });
    cleanups.push(() => rep.stop());
    await waitFor(() => rep.connected);
    rep.flush();
    await waitFor(() => l1.lines.length >= 16);
    expect(l1.lines).toContain('ctrd.host1.containers.count 2 1450266508');
    expect(l1.lines).toContain('ctrd.host1.fds.value 18 1450266508');
    expect(l1.lines).toContain('ctrd.host1.container_start_time.count 1 1450266508');
    expect(l1.lines).toContain('ctrd.host1.container_start_time.min 25000000 1450266508');
    for (const field of [
      'max',
      'mean',
      'std-dev',
      '50-percentile',
      '999-percentile',
      'one-minute',
      'mean-rate',
    ]) {
      expect(l1.lines.some((l) => l.startsWith(`ctrd.host1.container_start_time.${field} `))).toBe(true);
    }
    for (const line of l1.lines) expect(line).toMatch(/^[A-Za-z0-9_.-]+ -?\d+(\.\d+)? 1450266508$/);

    // The server goes away: flushes buffer instead of failing, then reach the new server.
    await l1.close();
    await waitFor(() => !rep.connected);
    registry.counter('containers').inc();
    clock.advance(60_000);
    rep.flush();
    expect(rep.dropped).toBe(0);
    const l2 = await listen(l1.port);
    cleanups.push(() => l2.close());
    await waitFor(() => l2.lines.includes('ctrd.host1.containers.count 3 1450266568'));
    expect(rep.connected).toBe(true);
  });

  test('drops and counts what does not fit while the server is down, never throwing', async () => {
    const l = await listen();
    const port = l.port;
    await l.close();
    const registry = new Registry();
    registry.counter('containers').inc();
    const rep = new GraphiteReporter({
      registry,
      address: { host: '127.0.0.1', port },
      intervalMs: 0,
      maxBufferBytes: 100,
      initialBackoffMs: 1000,
    });
    cleanups.push(() => rep.stop());
    for (let i = 0; i < 10; i++) rep.flush();
    expect(rep.connected).toBe(false);
    expect(rep.dropped).toBeGreaterThan(0);
    expect(rep.dropped).toBeLessThan(10);
    expect(rep.sent).toBe(0);
  });

  test('a bad address is a clear error', () => {
    expect(() => new GraphiteReporter({ registry: new Registry(), address: 'nohost' })).toThrow(
      'graphite address "nohost": not host:port',
    );
  });
});
