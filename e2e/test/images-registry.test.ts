import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer as createHttpServer, request as httpRequest, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { writeTar } from '@ctrd/api-proto/tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { type Run, runCommand } from './helpers/run.js';
import { CTR } from './tasks-support.js';

// Our ctr against a real registry: Debian's docker-registry (distribution 2.8) on a loopback port
// with its storage in a temp dir, and a real ctrd. A busybox image goes in with `images import`,
// out with our `images push`, is removed, comes back with our `images pull` (progress on stderr,
// the normalized name on stdout, unpacked) and runs under the stock ctr and ours. A second registry
// wants htpasswd (bcrypt) Basic auth: push and pull with --user, and a clear refusal without it. A
// pull killed in the middle of a layer is resumed by the next one with a Range request. skopeo,
// which shares no code with us, checks what the registry ended up holding.

const execFileP = promisify(execFile);
const ctrBin = join(dirname(createRequire(import.meta.url).resolve('@ctrd/ctr/package.json')), 'bin/run.js');
const REGISTRY = '/usr/bin/docker-registry';
const SKOPEO = '/usr/bin/skopeo';
const BUSYBOX = '/bin/busybox';
/** Containers run here, so the cgroups ctr makes (/<namespace>/<id>) are ours to remove. */
const NS = 'e2e-registry';

let scratch: string;
let d: DaemonProcess;
const registries: RegistryProcess[] = [];

interface RegistryProcess {
  host: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** docker-registry serve on a free loopback port, storage under `dir`; htpasswd when given. */
async function startRegistry(dir: string, htpasswd?: string): Promise<RegistryProcess> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const auth = htpasswd
    ? `auth:\n  htpasswd:\n    realm: ctrd-e2e\n    path: ${join(dir, 'htpasswd')}\n`
    : '';
  if (htpasswd) await writeFile(join(dir, 'htpasswd'), htpasswd);
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${auth}`,
  );
  const child = spawn(REGISTRY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr?.on('data', (b) => {
    logs += b;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const reg: RegistryProcess = {
    host,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  registries.push(reg);
  for (const end = Date.now() + 60_000; Date.now() < end; ) {
    const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
    if (res && (res.status === 200 || res.status === 401)) return reg;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry on ${host} did not start: ${logs}`);
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: scratch,
    CTRD_ADDRESS: d.socket,
    CTRD_STATE_DIR: d.state,
    CTRD_NAMESPACE: NS,
    ...extra,
  };
}

function ctr(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return runCommand(process.execPath, [ctrBin, ...args], {
    timeout: 120_000,
    env: env(extra),
    maxBuffer: 16 << 20,
  });
}

async function ctrOk(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  const r = await ctr(args, extra);
  if (r.code !== 0) {
    throw new Error(
      `ctr ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${d.logs().split('\n').slice(-15).join('\n')}`,
    );
  }
  return r;
}

/** The stock ctr on the same daemon and namespace. */
function stock(args: string[], opts: { ns?: string; timeout?: number } = {}): Promise<Run> {
  return runCommand(CTR, ['--address', d.socket, '-n', opts.ns ?? NS, ...args], {
    timeout: opts.timeout ?? 60_000,
  });
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * A one-layer busybox image as an OCI archive (what `ctr images import` takes): busybox and a few
 * of its applet links, /etc/passwd and /etc/group, and a config whose command prints a greeting.
 */
async function busyboxArchive(name: string, marker: string): Promise<{ archive: Buffer; manifest: string }> {
  const busybox = await readFile(BUSYBOX);
  const mtime = 1_700_000_000;
  const dir = (p: string) => ({ name: p, type: 'dir' as const, mode: 0o755, mtime });
  const entries = [
    dir('bin/'),
    { name: 'bin/busybox', type: 'file' as const, mode: 0o755, size: busybox.length, body: busybox, mtime },
    ...['sh', 'echo', 'cat', 'id'].map((a) => ({
      name: `bin/${a}`,
      type: 'symlink' as const,
      linkname: 'busybox',
      mtime,
    })),
    dir('etc/'),
    {
      name: 'etc/passwd',
      type: 'file' as const,
      mode: 0o644,
      body: Buffer.from('root:x:0:0:root:/:/bin/sh\n'),
      mtime,
    },
    { name: 'etc/group', type: 'file' as const, mode: 0o644, body: Buffer.from('root:x:0:\n'), mtime },
    // Each test's image has its own layer, so no test finds another's blobs already stored.
    { name: 'etc/image-marker', type: 'file' as const, mode: 0o644, body: Buffer.from(`${marker}\n`), mtime },
    dir('tmp/'),
  ].map((e) => ({ ...e, size: 'body' in e && e.body ? e.body.length : 0 }));
  const parts: Uint8Array[] = [];
  for await (const chunk of writeTar(entries)) parts.push(chunk);
  const tar = Buffer.concat(parts);
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['echo', 'hello from the registry'] },
      rootfs: { type: 'layers', diff_ids: [sha(tar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length },
      ],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha(manifest),
          size: manifest.length,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'e2e' },
        },
      ],
    }),
  );
  const blob = (b: Buffer) => ({
    name: `blobs/sha256/${sha(b).slice(7)}`,
    type: 'file' as const,
    mode: 0o644,
    size: b.length,
    body: b,
    mtime,
  });
  const files = [
    {
      name: 'oci-layout',
      type: 'file' as const,
      mode: 0o644,
      body: Buffer.from('{"imageLayoutVersion":"1.0.0"}'),
      mtime,
    },
    { name: 'index.json', type: 'file' as const, mode: 0o644, body: index, mtime },
    dir('blobs/'),
    dir('blobs/sha256/'),
    blob(layer),
    blob(config),
    blob(manifest),
  ].map((e) => ({ ...e, size: 'body' in e && e.body ? e.body.length : 0 }));
  const out: Uint8Array[] = [];
  for await (const chunk of writeTar(files)) out.push(chunk);
  return { archive: Buffer.concat(out), manifest: sha(manifest) };
}

/** A bcrypt htpasswd line, made by the system's crypt(3) (libxcrypt) through perl; undefined if unavailable. */
async function bcryptLine(user: string, password: string): Promise<string | undefined> {
  try {
    const salt = createHash('sha256').update(user).digest('base64').replace(/[+=]/g, '.').slice(0, 22);
    const { stdout } = await execFileP('perl', [
      '-e',
      'print crypt($ARGV[0], $ARGV[1])',
      password,
      `$2b$05$${salt}`,
    ]);
    return /^\$2b\$05\$.{53}$/.test(stdout) ? `${user}:${stdout}\n` : undefined;
  } catch {
    return undefined;
  }
}

async function skopeoDigest(ref: string, creds?: string): Promise<string> {
  const { stdout } = await execFileP(SKOPEO, [
    'inspect',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : []),
    '--raw',
    `docker://${ref}`,
  ]);
  return sha(stdout);
}

const ready = existsSync(REGISTRY) && existsSync(BUSYBOX);

beforeAll(async () => {
  if (!ready) return;
  scratch = await mkdtemp(join(tmpdir(), 'ctrd-registry-e2e-'));
  d = await startDaemon({ dir: join(scratch, 'd') });
});

afterAll(async () => {
  for (const r of registries) await r.stop();
  await d?.dispose();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  // ctr's spec puts each container in the cgroup /<namespace>/<id>; runc removes the leaf, the
  // namespace parent is ours.
  if (existsSync('/sys/fs/cgroup')) {
    for (const c of readdirSync('/sys/fs/cgroup')) await rmdir(join('/sys/fs/cgroup', c, NS)).catch(() => {});
  }
});

describe.skipIf(!ready)('images push and pull through docker-registry', { timeout: 180_000 }, () => {
  it('import, push, rm, pull (progress, normalized name, unpack) and run the pulled image', async () => {
    const reg = await startRegistry(join(scratch, 'reg-open'));
    const local = 'docker.io/library/busybox:e2e';
    const { archive, manifest } = await busyboxArchive(local, 'open');
    const archivePath = join(scratch, 'busybox.oci.tar');
    await writeFile(archivePath, archive);
    await ctrOk(['images', 'import', '--no-unpack', archivePath]);

    // No tag: pushed as :latest. The blobs go up, then the manifest.
    const pushed = await ctrOk(['images', 'push', '--plain-http', `${reg.host}/test/busybox`, local]);
    expect(pushed.stdout).toBe(`${reg.host}/test/busybox:latest@${manifest}\n`);
    expect(pushed.stderr).toMatch(new RegExp(`manifest-${manifest}: +done`));
    expect(pushed.stderr).toMatch(/layer-sha256:[0-9a-f]{64}: +done +\|\++\| [\d.]+ MiB\/[\d.]+ MiB/);
    expect(pushed.stderr).toMatch(/elapsed: [\d.]+ s\ttotal: /);
    expect(await skopeoDigest(`${reg.host}/test/busybox:latest`)).toBe(manifest);
    // A second push finds everything there.
    const again = await ctrOk(['images', 'push', '--plain-http', `${reg.host}/test/busybox:1`, local]);
    expect(again.stderr).toMatch(/layer-sha256:[0-9a-f]{64}: +exists/);

    // Gone locally (and its blobs collected), so the pull has to download everything.
    await stock(['images', 'rm', '--sync', local]);
    expect((await stock(['content', 'ls', '-q'])).stdout.trim()).toBe('');

    const pulled = await ctrOk(['images', 'pull', '--plain-http', `${reg.host}/test/busybox`]);
    expect(pulled.stdout).toBe(`${reg.host}/test/busybox:latest\n`);
    expect(pulled.stderr).toContain(`${reg.host}/test/busybox:latest: resolved`);
    expect(pulled.stderr).toMatch(new RegExp(`manifest-${manifest}: +done`));
    expect(pulled.stderr).toMatch(/config-sha256:[0-9a-f]{64}: +done/);
    expect(pulled.stderr).toMatch(
      /layer-sha256:[0-9a-f]{64}: +done +\|\++\| [\d.]+ MiB\/[\d.]+ MiB \([\d.]+ [KMG]?i?B\/s\)/,
    );
    expect(pulled.stderr).toMatch(/elapsed: [\d.]+ s\ttotal: +[\d.]+ MiB/);
    expect(pulled.stderr).toMatch(new RegExp(`unpacking linux/amd64 ${manifest}`));
    const listed = await stock(['images', 'ls', '-q']);
    expect(listed.stdout.split('\n')).toContain(`${reg.host}/test/busybox:latest`);
    const check = await stock(['images', 'check']);
    expect(check.stdout).toMatch(
      new RegExp(`${reg.host}/test/busybox:latest .* complete \\((\\d+)/\\1\\) .* true`),
    );

    // The stock ctr runs what our ctr pulled.
    const fifo = join(scratch, 'fifo');
    await mkdir(fifo, { recursive: true });
    const run = await stock([
      'run',
      '--rm',
      '--fifo-dir',
      fifo,
      `${reg.host}/test/busybox:latest`,
      'regrun1',
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout.replace(/\r/g, '')).toBe('hello from the registry\n');
    // And so does ours, with a command of its own.
    const ours = await ctrOk([
      'run',
      '--rm',
      `${reg.host}/test/busybox:latest`,
      'regrun2',
      'cat',
      '/etc/image-marker',
    ]);
    expect(ours.stdout).toBe('open\n');
  });

  it('a registry behind htpasswd: push and pull with --user, a clear refusal without it', async (ctx) => {
    const line = await bcryptLine('ctrd', 'e2e-secret');
    if (!line) {
      ctx.skip();
      return;
    }
    const reg = await startRegistry(join(scratch, 'reg-auth'), line);
    const local = 'docker.io/library/busybox:e2e-auth';
    const { archive, manifest } = await busyboxArchive(local, 'auth');
    const archivePath = join(scratch, 'busybox-auth.oci.tar');
    await writeFile(archivePath, archive);
    await ctrOk(['images', 'import', '--no-unpack', archivePath]);
    const remote = `${reg.host}/private/busybox:1`;

    const refused = await ctr(['images', 'push', '--plain-http', remote, local]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^ctr: .*unauthorized: basic authentication required: give --user/m);
    const wrong = await ctr(['images', 'push', '--plain-http', '--user', 'ctrd:nope', remote, local]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^ctr: .*unauthorized/m);

    await ctrOk(['images', 'push', '--plain-http', '--user', 'ctrd:e2e-secret', remote, local]);
    expect(await skopeoDigest(remote, 'ctrd:e2e-secret')).toBe(manifest);

    await stock(['images', 'rm', '--sync', local]);
    const anonymous = await ctr(['images', 'pull', '--plain-http', '--no-unpack', remote]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^ctr: manifest .*unauthorized: basic authentication required/m);
    const pulled = await ctrOk(['images', 'pull', '--plain-http', '-u', 'ctrd', '--no-unpack', remote], {
      CTRD_REGISTRY_PASSWORD: 'e2e-secret',
    });
    expect(pulled.stdout).toBe(`${remote}\n`);
    expect(pulled.stderr).toMatch(/layer-sha256:[0-9a-f]{64}: +done/);
  });

  it('content fetch stores the blobs without an image; https to a plain-http registry says --plain-http', async () => {
    const reg = registries[0];
    if (!reg) throw new Error('the first test starts the open registry');
    const fetched = await ctrOk([
      '-n',
      'fetch-only',
      'content',
      'fetch',
      '--plain-http',
      `${reg.host}/test/busybox:1`,
    ]);
    expect(fetched.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(fetched.stderr).toMatch(/layer-sha256:[0-9a-f]{64}: +(done|exists)/);
    const images = await stock(['images', 'ls', '-q'], { ns: 'fetch-only' });
    expect(images.stdout).toBe('');
    const blobs = await stock(['content', 'ls', '-q'], { ns: 'fetch-only' });
    expect(blobs.stdout.trim().split('\n')).toContain(fetched.stdout.trim());

    const tls = await ctr(['content', 'fetch', `${reg.host}/test/busybox:1`]);
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/https failed .*use --plain-http/);
  });

  it('a pull killed in the middle of a layer resumes that layer with a Range request', async () => {
    const reg = await startRegistry(join(scratch, 'reg-resume'));
    const local = 'docker.io/library/busybox:e2e-resume';
    const { archive } = await busyboxArchive(local, 'resume');
    const archivePath = join(scratch, 'busybox-resume.oci.tar');
    await writeFile(archivePath, archive);
    await ctrOk(['images', 'import', '--no-unpack', archivePath]);
    await ctrOk(['images', 'push', '--plain-http', `${reg.host}/test/resume:1`, local]);
    await stock(['images', 'rm', '--sync', local]);

    // A proxy in front of the registry: the first GET of a layer sends 256 KiB and then stalls.
    const ranges: (string | undefined)[] = [];
    let stalled: ServerResponse | undefined;
    let onStall: () => void = () => {};
    const stall = new Promise<void>((resolve) => {
      onStall = resolve;
    });
    const proxy = createHttpServer((req, res) => {
      const isLayer = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
      const upstream = httpRequest(
        {
          host: '127.0.0.1',
          port: Number(reg.host.split(':')[1]),
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: reg.host },
        },
        (up) => {
          const big = Number(up.headers['content-length'] ?? 0) > 512 * 1024;
          if (isLayer && big) ranges.push(req.headers.range);
          res.writeHead(up.statusCode ?? 502, up.headers);
          if (isLayer && big && !stalled) {
            stalled = res;
            let sent = 0;
            up.on('data', (chunk: Buffer) => {
              if (sent >= 256 * 1024) return;
              const part = chunk.subarray(0, 256 * 1024 - sent);
              sent += part.length;
              res.write(part);
              if (sent >= 256 * 1024) {
                up.pause();
                onStall();
              }
            });
            return;
          }
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyHost = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
    try {
      const first = spawn(
        process.execPath,
        [ctrBin, 'images', 'pull', '--plain-http', '--no-unpack', `${proxyHost}/test/resume:1`],
        {
          env: env(),
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let firstErr = '';
      first.stderr?.on('data', (b) => {
        firstErr += b;
      });
      const firstExit = new Promise<void>((resolve) => first.once('exit', () => resolve()));
      await stall;
      // Wait until the daemon holds the bytes sent so far as an ingest, then kill ctr outright.
      let active = '';
      for (const end = Date.now() + 60_000; !/layer-sha256:[0-9a-f]{64}\s+262\.1kB\s/.test(active); ) {
        if (Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 100));
        active = (await stock(['content', 'active'])).stdout;
      }
      expect(active, firstErr).toMatch(/layer-sha256:[0-9a-f]{64}\s+262\.1kB\s/);
      if (first.pid) process.kill(first.pid, 'SIGKILL');
      await firstExit;
      stalled?.destroy();

      const second = await ctrOk([
        'images',
        'pull',
        '--plain-http',
        '--no-unpack',
        `${proxyHost}/test/resume:1`,
      ]);
      expect(second.stderr).toMatch(/layer-sha256:[0-9a-f]{64}: +done/);
      expect(ranges).toEqual([undefined, 'bytes=262144-']);
      expect((await stock(['content', 'active'])).stdout).not.toMatch(/layer-sha256/);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
