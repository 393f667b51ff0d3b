import { execFile, spawn } from 'node:child_process';
import { constants, existsSync, openSync } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { NotFound, namespaceFromContext, packAny, unpackAny } from '@ctrd/api-proto';
import { TtrpcEventsService } from '@ctrd/api-proto/events-ttrpc';
import { OptionsSchema } from '@ctrd/api-proto/runc-options';
import { TaskService } from '@ctrd/api-proto/shim';
import { Status } from '@ctrd/api-proto/task-types';
import {
  createTtrpcClient,
  createTtrpcServer,
  createTtrpcTransport,
  service,
  type TtrpcServer,
  type TtrpcTransport,
} from '@ctrd/api-proto/ttrpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, BUSYBOX, listIds, RUNC, writeBusyboxBundle } from './helpers/rootfs.js';

// Our ttrpc against a real Go peer (ttrpc v1.1.1): Debian's stock containerd-shim-runc-v2 1.6.20,
// started the way containerd starts it (runtime/v2/shim, the runc manager's Start), driven by our
// ttrpc client with the generated containerd.task.v2.Task descriptor, while our ttrpc server takes
// the Events/Forward calls it makes to $TTRPC_ADDRESS. Both directions, with the same-user check.
//
// The stock shim always serves on /run/containerd/s/<sha256(address, namespace, id)>; the address
// is a path in our temp dir, so the socket is ours alone, and it is removed at the end (the shim
// removes it on Shutdown; afterAll makes sure). runc's state goes to the temp dir (Options.root).

const SHIM = '/usr/bin/containerd-shim-runc-v2';
const run = promisify(execFile);
const missing = [SHIM, RUNC, BUSYBOX].filter((p) => !existsSync(p));
const skip =
  missing.length > 0
    ? `${missing.join(', ')} missing`
    : process.getuid?.() !== 0
      ? 'the shim runs runc: needs root'
      : undefined;
if (skip !== undefined) console.warn(`ttrpc-stock-shim.test.ts skipped: ${skip}`);

const NS = 'ttrpc-e2e';
const ID = `ttrpc-${process.pid}`;

let dir: string;
let bundle: string;
let events: TtrpcServer;
let transport: TtrpcTransport | undefined;
let shimSocket: string | undefined;
let shimPid = 0;
let log: Socket | undefined;
let logText = '';
const forwarded: {
  ns: string;
  topic: string;
  containerId: string | undefined;
  timeoutMs: number | undefined;
}[] = [];

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; shim log:\n${logText}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skip !== undefined)(
  'ttrpc with the stock containerd-shim-runc-v2 (Go)',
  { timeout: 60_000 },
  () => {
    beforeAll(async () => {
      // Short: the address goes into a hash, but our own socket must fit sun_path.
      dir = await mkdtemp('/tmp/ttrpc-shim-');
      events = await createTtrpcServer({
        socketPath: join(dir, 'ctrd.sock.ttrpc'),
        services: [
          service(TtrpcEventsService, {
            forward: (req, ctx) => {
              const ev = req.envelope?.event
                ? (unpackAny(req.envelope.event) as { containerId?: string })
                : undefined;
              forwarded.push({
                ns: namespaceFromContext(ctx),
                topic: req.envelope?.topic ?? '',
                containerId: ev?.containerId,
                timeoutMs: ctx.timeoutMs(),
              });
              return {};
            },
          }),
        ],
      });
      bundle = join(dir, 'bundle');
      await writeBusyboxBundle(bundle, { args: ['sleep', '30'] });
      // The shim's stderr goes to <bundle>/log, a fifo it opens for writing (blocking) once started:
      // a reader must hold it open first. Non-blocking, in a net.Socket (fs streams would hit EAGAIN).
      await run('mkfifo', [join(bundle, 'log')]);
      log = new Socket({
        fd: openSync(join(bundle, 'log'), constants.O_RDONLY | constants.O_NONBLOCK),
        writable: false,
      });
      log.on('data', (d: Buffer) => {
        logText += d.toString();
      });
      log.on('error', () => {});
      // `start` re-executes the shim as the server (socket on fd 3, its own process group), writes
      // `address` in the cwd and prints the address; empty stdin means no runtime options.
      const start = spawn(
        SHIM,
        [
          '-namespace',
          NS,
          '-id',
          ID,
          '-address',
          join(dir, 'ctrd.sock'),
          '-publish-binary',
          '/bin/true',
          'start',
        ],
        {
          cwd: bundle,
          env: { ...process.env, TTRPC_ADDRESS: events.socketPath },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      start.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      start.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => start.on('close', resolve));
      expect(code, `shim start failed: ${err}`).toBe(0);
      expect(out).toMatch(/^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
      shimSocket = out.slice('unix://'.length);
      transport = createTtrpcTransport({ address: out, namespace: NS, timeoutMs: 15_000 });
    }, 60_000);

    afterAll(async () => {
      transport?.close();
      if (shimPid > 0 && alive(shimPid)) process.kill(shimPid, 'SIGKILL');
      const runcRoot = join(dir, 'runc', NS);
      for (const id of await listIds(RUNC, runcRoot))
        await run(RUNC, ['--root', runcRoot, 'delete', '--force', id]).catch(() => {});
      if (shimSocket && existsSync(shimSocket)) await unlink(shimSocket).catch(() => {});
      await events?.close({ graceMs: 100 });
      log?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 30_000);

    it('answers Connect, and State of a task it never created as NotFound', async () => {
      const task = createTtrpcClient(TaskService, { transport: transport! });
      const c = await task.connect({ id: ID });
      shimPid = c.shimPid;
      expect(shimPid).toBeGreaterThan(0);
      expect(alive(shimPid)).toBe(true);
      expect(c.taskPid).toBe(0);
      const e = await task.state({ id: ID }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(NotFound);
      expect((e as Error).message).toBe('container not created: not found');
    });

    it('runs a task through Create, Start, Kill, Wait, Delete while it Forwards each event to us', async () => {
      const task = createTtrpcClient(TaskService, { transport: transport! });
      const options = packAny(OptionsSchema, create(OptionsSchema, { root: join(dir, 'runc') }));
      const { pid } = await task.create({ id: ID, bundle, options });
      expect(pid).toBeGreaterThan(0);
      expect((await task.start({ id: ID })).pid).toBe(pid);
      const st = await task.state({ id: ID });
      expect(st.status).toBe(Status.RUNNING);
      expect(st.pid).toBe(pid);
      // Wait and Kill at once on one connection: Wait is answered after the exit Kill causes.
      const waited = task.wait({ id: ID });
      await task.kill({ id: ID, signal: 9 });
      expect((await waited).exitStatus).toBe(137);
      const del = await task.delete({ id: ID });
      expect(del.exitStatus).toBe(137);
      expect(del.pid).toBe(pid);

      const topics = ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'];
      await until('the four task events', () => topics.every((t) => forwarded.some((f) => f.topic === t)));
      const ours = forwarded.filter((f) => topics.includes(f.topic));
      expect(ours.map((f) => f.topic)).toEqual(topics);
      for (const f of ours) {
        expect(f.ns).toBe(NS);
        expect(f.containerId).toBe(ID);
        // The publisher's 5 s deadline, as timeout_nano.
        expect(f.timeoutMs).toBeGreaterThan(0);
        expect(f.timeoutMs).toBeLessThanOrEqual(5000);
      }
    });

    it('Shutdown ends the shim, which removes its socket', async () => {
      const task = createTtrpcClient(TaskService, { transport: transport! });
      await task.shutdown({ id: ID });
      await until('the shim to exit', () => !alive(shimPid));
      await until('the shim socket to go', () => !existsSync(shimSocket!));
    });
  },
);
