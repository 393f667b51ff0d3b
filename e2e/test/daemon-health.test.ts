import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect as http2Connect, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, isUnavailable, OCI_PROCESS_URL, packJson } from '@ctrd/api-proto';
import { EventsService } from '@ctrd/api-proto/events';
import { HealthCheckResponse_ServingStatus as S, HealthService } from '@ctrd/api-proto/health';
import { IntrospectionService } from '@ctrd/api-proto/introspection';
import { TasksService } from '@ctrd/api-proto/tasks';
import { VersionService } from '@ctrd/api-proto/version';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { runCommand } from './helpers/run.js';
import { busyboxRootfs, CTR, ctrOk, isAlive, parseTaskList, sweep } from './tasks-support.js';

// What dockerd and containerd's own client test harness need of the daemon beyond the containerd
// services: grpc.health.v1.Health over plain gRPC on the socket, a Version revision, a SIGTERM that
// ends pending calls at once with Unavailable (a restart is not held up by a Tasks.Wait), and
// ResizePty answering OK on a process without a terminal. The real ctrd, shim and runc, the stock ctr.

const NS = `hl${process.pid}`;
const REPO = fileURLToPath(new URL('../..', import.meta.url));
let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;

const ok = (...args: string[]) => ctrOk(d, ['-n', NS, ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One gRPC call built by hand, as grpc-go sends it: HTTP/2, application/grpc, 5-byte framing. */
async function rawGrpc(
  socket: string,
  path: string,
  message: Uint8Array,
): Promise<{ headers: IncomingHttpHeaders; data: Buffer; trailers: IncomingHttpHeaders }> {
  const session = http2Connect('http://localhost', { createConnection: () => netConnect(socket) });
  try {
    const frame = Buffer.alloc(5 + message.byteLength);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, 5);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      ':authority': 'localhost',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'grpc-go/1.51.0',
    });
    return await new Promise((resolve, reject) => {
      let headers: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        headers = h;
      });
      req.on('trailers', (t) => {
        trailers = t;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ headers, data: Buffer.concat(chunks), trailers }));
      req.on('error', reject);
      req.end(frame);
    });
  } finally {
    session.close();
  }
}

/** HealthCheckRequest{service} in protobuf by hand: field 1, wire type 2. */
const checkRequest = (service: string): Uint8Array => {
  const s = Buffer.from(service);
  return service === '' ? new Uint8Array() : Buffer.concat([Buffer.from([0x0a, s.length]), s]);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-hl-'));
  rootfs = await busyboxRootfs(join(dir, 'rootfs'));
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd') });
}, 30_000);

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [NS]);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('grpc.health.v1.Health on the socket', () => {
  it('our client: SERVING for the server and its services, NotFound for an unknown one', async () => {
    const health = createClient(HealthService, { address: d.address });
    expect((await health.check({})).status).toBe(S.SERVING);
    expect((await health.check({ service: 'containerd.services.tasks.v1.Tasks' })).status).toBe(S.SERVING);
    const e = await health.check({ service: 'no.such.Service' }).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/unknown service/);
    const intro = createClient(IntrospectionService, { address: d.address, namespace: NS });
    const listed = (await intro.plugins({ filters: ['type==io.containerd.grpc.v1'] })).plugins.map(
      (p) => p.id,
    );
    expect(listed).toContain('healthcheck');
  });

  it('a hand-built gRPC request (what grpc-go sends) gets SERVING; an unknown service grpc-status 5', async () => {
    const served = await rawGrpc(d.socket, '/grpc.health.v1.Health/Check', checkRequest(''));
    expect(served.headers[':status']).toBe(200);
    expect(String(served.headers['content-type'])).toMatch(/^application\/grpc/);
    // Uncompressed, 2 bytes: HealthCheckResponse{status: SERVING (1)}.
    expect([...served.data]).toEqual([0, 0, 0, 0, 2, 0x08, 0x01]);
    expect(served.trailers['grpc-status']).toBe('0');

    const named = await rawGrpc(
      d.socket,
      '/grpc.health.v1.Health/Check',
      checkRequest('grpc.health.v1.Health'),
    );
    expect([...named.data]).toEqual([0, 0, 0, 0, 2, 0x08, 0x01]);

    const unknown = await rawGrpc(d.socket, '/grpc.health.v1.Health/Check', checkRequest('nope'));
    expect(unknown.headers[':status']).toBe(200);
    expect(unknown.data.byteLength).toBe(0);
    expect(unknown.trailers['grpc-status']).toBe('5');
    expect(decodeURIComponent(String(unknown.trailers['grpc-message']))).toMatch(/unknown service/);
  });
});

describe('Version', () => {
  it('revision is the commit the bundled ctrd was built from; the stock ctr prints it', async () => {
    const v = await createClient(VersionService, { address: d.address }).version({});
    expect(v.revision).toMatch(/^[0-9a-f]{40}(\.m)?$/);
    const commit = v.revision.slice(0, 40);
    const known = await runCommand('git', ['-C', REPO, 'cat-file', '-e', `${commit}^{commit}`]);
    expect(known.code).toBe(0);
    const out = await ctrOk(d, ['version']);
    expect(out).toMatch(new RegExp(`Server:[\\s\\S]*Revision: ${v.revision.replace('.', '\\.')}`));
  });
});

describe('ResizePty', () => {
  it('answers OK on a task and an exec without a terminal', async () => {
    await ok('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, 'rz', '/bin/sleep', '1000');
    const tasks = createClient(TasksService, { address: d.address, namespace: NS });
    await tasks.resizePty({ containerId: 'rz', width: 100, height: 40 });
    await tasks.exec({
      containerId: 'rz',
      execId: 'e1',
      spec: packJson(OCI_PROCESS_URL, {
        args: ['/bin/sleep', '1000'],
        cwd: '/',
        env: ['PATH=/bin'],
        user: { uid: 0, gid: 0 },
      }),
    });
    await tasks.resizePty({ containerId: 'rz', execId: 'e1', width: 100, height: 40 });
    await tasks.start({ containerId: 'rz', execId: 'e1' });
    await tasks.resizePty({ containerId: 'rz', execId: 'e1', width: 120, height: 50 });
    const waited = tasks.wait({ containerId: 'rz', execId: 'e1' });
    await tasks.kill({ containerId: 'rz', execId: 'e1', signal: 9 });
    expect((await waited).exitStatus).toBe(137);
    await tasks.deleteProcess({ containerId: 'rz', execId: 'e1' });
    await tasks.kill({ containerId: 'rz', signal: 9 });
    await tasks.wait({ containerId: 'rz' });
    await ok('t', 'rm', 'rz');
    await ok('c', 'rm', 'rz');
  }, 30_000);
});

describe('SIGTERM', () => {
  it('ends a pending Wait, a subscription and a watch at once with Unavailable; containers keep running', async () => {
    await ok('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, 'w1', '/bin/sleep', '1000');
    // An attached stock ctr waits for its task with a unary Tasks.Wait.
    const attached = spawn(
      CTR,
      [
        '--address',
        d.socket,
        '-n',
        NS,
        'run',
        '--fifo-dir',
        fifos,
        '--rootfs',
        rootfs,
        'w2',
        '/bin/sleep',
        '1000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let attachedErr = '';
    attached.stderr.on('data', (b: Buffer) => {
      attachedErr += b.toString();
    });
    const attachedExit = new Promise<number | null>((r) => attached.once('exit', (code) => r(code)));
    for (let i = 0; i < 100 && parseTaskList(await ok('t', 'ls')).length < 2; i++) await sleep(100);
    const before = parseTaskList(await ok('t', 'ls'));
    expect(before.map((t) => [t.id, t.status]).sort()).toEqual([
      ['w1', 'RUNNING'],
      ['w2', 'RUNNING'],
    ]);

    const outcome = (p: Promise<unknown>) =>
      p.then(
        () => 'returned',
        (e: unknown) => e,
      );
    const tasks = createClient(TasksService, { address: d.address, namespace: NS });
    const wait = outcome(tasks.wait({ containerId: 'w1' }));
    const events = createClient(EventsService, { address: d.address, namespace: NS });
    const sub = events.subscribe({ filters: [`namespace==${NS}`] })[Symbol.asyncIterator]();
    const subEnd = outcome(sub.next());
    const watch = createClient(HealthService, { address: d.address }).watch({})[Symbol.asyncIterator]();
    expect((await watch.next()).value?.status).toBe(S.SERVING);
    await sleep(300);

    const t0 = performance.now();
    const stopped = d.stop('SIGTERM', 20_000);
    expect((await watch.next()).value?.status).toBe(S.NOT_SERVING);
    expect(isUnavailable(await watch.next().catch((e: unknown) => e))).toBe(true);
    const exit = await stopped;
    const ms = performance.now() - t0;
    process.stderr.write(`ctrd: SIGTERM to exit with a pending Tasks.Wait: ${ms.toFixed(0)} ms\n`);
    expect(exit).toEqual({ code: 0, signal: null });
    // Was 10 s: the whole grace, waiting for the Wait to end.
    expect(ms).toBeLessThan(3000);
    const w = await wait;
    expect(isUnavailable(w)).toBe(true);
    expect((w as Error).message).toMatch(/server is shutting down/);
    expect(isUnavailable(await subEnd)).toBe(true);
    expect(await attachedExit).not.toBe(0);
    expect(attachedErr).toMatch(/Unavailable/);

    for (const t of before) expect(isAlive(t.pid)).toBe(true);
    d = await startDaemon({ dir: d.dir });
    expect((await createClient(HealthService, { address: d.address }).check({})).status).toBe(S.SERVING);
    const after = parseTaskList(await ok('t', 'ls'));
    expect(after.map((t) => [t.id, t.status, t.pid]).sort()).toEqual(
      before.map((t) => [t.id, 'RUNNING', t.pid]).sort(),
    );

    for (const id of ['w1', 'w2']) {
      await ok('t', 'kill', '-s', '9', id);
      await createClient(TasksService, { address: d.address, namespace: NS }).wait({ containerId: id });
      await ok('t', 'rm', id);
      await ok('c', 'rm', id);
    }
  }, 60_000);
});
