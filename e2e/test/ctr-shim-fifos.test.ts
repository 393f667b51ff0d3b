import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Client } from '@connectrpc/connect';
import type { Server } from '@ctrd/api-proto';
import { createClient, createServer, OCI_PROCESS_URL, packJson, service } from '@ctrd/api-proto';
import { EventsService } from '@ctrd/api-proto/events';
import { TaskService } from '@ctrd/api-proto/shim';
import { buildSpec, FifoSet } from '@ctrd/ctr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { mountsUnder } from './tasks-support.js';

// ctr's client side of stdio (FifoSet: fifos made and opened by ctr, held until Start, read to EOF)
// against the real ctrd-shim running busybox through real runc. This is the part of `ctr run` and
// `ctr tasks exec` that a fake cannot prove: that the shim's opens, its copy and its close line up
// with ours, for an init process (fifos opened at Create) and an exec (opened at Start).

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const SHIM_BIN = join(dirname(require.resolve('@ctrd/shim/package.json')), 'dist', 'bundle', 'bin.js');
const NS = 'ctrfifo';

let dir: string;
let rootfs: string;
let runcRoot: string;
let fifoDir: string;
let daemon: Server | undefined;
let shimPid = 0;
let tasks: Client<typeof TaskService>;
const created: string[] = [];

async function bundle(id: string, args: string[]): Promise<string> {
  const b = join(dir, 'bundles', id);
  await mkdir(b, { recursive: true, mode: 0o700 });
  await run('runc', ['spec'], { cwd: b });
  const spec = JSON.parse(await readFile(join(b, 'config.json'), 'utf8'));
  spec.process.args = args;
  spec.process.terminal = false;
  spec.linux.cgroupsPath = `/ctr-fifo-e2e/${id}`;
  await writeFile(join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

function collect(stream: Readable | undefined): () => string {
  const chunks: Buffer[] = [];
  stream?.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctr-fifo-e2e-'));
  rootfs = join(dir, 'rootfs');
  runcRoot = join(dir, 'runc');
  fifoDir = join(dir, 'fifo');
  await buildBusyboxRootfs(rootfs);
  daemon = await createServer({
    socketPath: join(dir, 'daemon.sock'),
    services: [service(EventsService, { forward: () => ({}) })],
  });
  const { stdout } = await run(process.execPath, [
    SHIM_BIN,
    'start',
    '--namespace',
    NS,
    '--id',
    'ctrfifo',
    '--state-dir',
    join(dir, 'state'),
    '--address',
    join(dir, 'daemon.sock'),
    '--runc-root',
    runcRoot,
  ]);
  tasks = createClient(TaskService, { address: stdout.trim(), namespace: NS, timeoutMs: 30_000 });
  shimPid = (await tasks.connect({})).shimPid;
});

afterAll(async () => {
  for (const id of created) await run('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => {});
  if (shimPid > 0) {
    try {
      process.kill(shimPid, 'SIGKILL');
    } catch {}
  }
  for (const mp of mountsUnder(dir).reverse()) await run('umount', ['-l', mp]).catch(() => {});
  await daemon?.close({ graceMs: 100 });
  await rm(dir, { recursive: true, force: true });
  // runc removes each container's cgroup; the parents (the test's own, and the namespace one that
  // ctr's spec names as /<namespace>/<id>) are ours to remove.
  for (const c of readdirSync('/sys/fs/cgroup')) {
    for (const parent of ['ctr-fifo-e2e', NS]) await rmdir(join('/sys/fs/cgroup', c, parent)).catch(() => {});
  }
});

describe('ctr fifos with the real shim', () => {
  it('init process: stdin in, stdout and stderr out, every byte read before EOF', async () => {
    const id = 'init1';
    const b = await bundle(id, ['sh', '-c', 'tr a-z A-Z; echo done >&2; exit 5']);
    created.push(id);
    const fifos = await FifoSet.create(id, { fifoDir, stdin: true, stdout: true, stderr: true });
    const out = collect(fifos.stdout);
    const err = collect(fifos.stderr);
    const p = fifos.paths;
    await tasks.create({
      id,
      bundle: b,
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
      stdin: p.stdin,
      stdout: p.stdout,
      stderr: p.stderr,
    });
    const waited = tasks.wait({ id });
    await tasks.start({ id });
    fifos.attached();
    // Written out to the fifo before CloseIO.
    await new Promise<void>((resolve) => fifos.stdin?.end('hello fifo\n', () => resolve()));
    await tasks.closeIO({ id, stdin: true });
    expect((await waited).exitStatus).toBe(5);
    await fifos.drained();
    expect(out()).toBe('HELLO FIFO\n');
    expect(err()).toBe('done\n');
    await fifos.remove();
    expect(readdirSync(fifoDir)).toEqual([]);
    await tasks.delete({ id });
  });

  it('the spec `ctr run` builds (containerd’s defaults) runs under runc', async () => {
    const id = 'spec1';
    const b = join(dir, 'bundles', id);
    await mkdir(b, { recursive: true, mode: 0o700 });
    const spec = buildSpec(NS, id, {
      args: ['sh', '-c', 'echo "$PATH"; id -u; cat /proc/self/cgroup | grep -c ctrfifo/spec1; ls /dev/null'],
      rootfs,
      env: ['GREETING=hi'],
      memoryLimit: 64 * 1024 * 1024,
      cpus: 0.5,
    });
    await writeFile(join(b, 'config.json'), JSON.stringify(spec));
    created.push(id);
    const fifos = await FifoSet.create(id, { fifoDir, stdin: false, stdout: true, stderr: true });
    const out = collect(fifos.stdout);
    const err = collect(fifos.stderr);
    await tasks.create({ id, bundle: b, stdout: fifos.paths.stdout, stderr: fifos.paths.stderr });
    const waited = tasks.wait({ id });
    await tasks.start({ id });
    fifos.attached();
    expect((await waited).exitStatus).toBe(0);
    await fifos.drained();
    expect(err()).toBe('');
    const lines = out().trim().split('\n');
    expect(lines[0]).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(lines[1]).toBe('0');
    expect(Number(lines[2])).toBeGreaterThan(0);
    expect(lines[3]).toBe('/dev/null');
    await fifos.remove();
    await tasks.delete({ id });
  });

  it('exec: the shim opens the fifos only at Start, and nothing is lost', async () => {
    const id = 'host1';
    const b = await bundle(id, ['sleep', '300']);
    created.push(id);
    await tasks.create({
      id,
      bundle: b,
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
    });
    await tasks.start({ id });
    const execId = 'x1';
    const fifos = await FifoSet.create(execId, { fifoDir, stdin: true, stdout: true, stderr: true });
    const out = collect(fifos.stdout);
    const p = fifos.paths;
    await tasks.exec({
      id,
      execId,
      stdin: p.stdin,
      stdout: p.stdout,
      stderr: p.stderr,
      spec: packJson(OCI_PROCESS_URL, {
        args: ['sh', '-c', 'cat; echo tail'],
        cwd: '/',
        env: ['PATH=/bin'],
        user: { uid: 0, gid: 0 },
      }),
    });
    // Written before Start: it waits in the fifo, which ctr keeps open until the shim has its end.
    await new Promise<void>((resolve) => fifos.stdin?.write('early line\n', () => resolve()));
    const waited = tasks.wait({ id, execId });
    await tasks.start({ id, execId });
    fifos.attached();
    await new Promise<void>((resolve) => fifos.stdin?.end(() => resolve()));
    await tasks.closeIO({ id, execId, stdin: true });
    expect((await waited).exitStatus).toBe(0);
    await fifos.drained();
    expect(out()).toBe('early line\ntail\n');
    await fifos.remove();
    await tasks.delete({ id, execId });
    await tasks.kill({ id, signal: 9 });
    await tasks.wait({ id });
    await tasks.delete({ id });
  });
});
