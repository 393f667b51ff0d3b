import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, execP, mountsUnder, pidsWithArg } from './system.mjs';

// The daemons under test, each started as a real process on private temp dirs and a private socket
// (never /run/ctrd or /run/containerd/containerd.sock), and stopped by the pid we started. Each target
// can also name its shims, so the bench can weigh them and, at the end, kill the ones left by pid.

export const CTRD_BIN = fileURLToPath(
  new URL('../../../packages/daemon/dist/bundle/bin.js', import.meta.url),
);
export const CONTAINERD_BIN = '/usr/bin/containerd';

function canConnect(path) {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Spawns a daemon and waits until `ready()` (default: the socket accepts a connection), polling
 * every `pollMs`. `spawnedAt` and `readyAt` are performance.now() just before the spawn and at the
 * first successful check. `kill()` is SIGKILL by the pid we started, as a crash would be.
 */
async function startProcess(name, bin, args, socket, { ready, pollMs = 50 } = {}) {
  let log = '';
  const isReady = ready ?? (() => canConnect(socket));
  const spawnedAt = performance.now();
  // Own process group: a terminal's Ctrl-C reaches the bench alone, which then removes containers
  // through the still-running daemon before stopping it by pid.
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  child.stderr.on('data', (d) => {
    // Keep the tail only: containerd and ctrd --debug are chatty under load.
    log = (log + d).slice(-64 * 1024);
  });
  let exit;
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  // CTRD_BENCH_LOG_DIR=DIR: each daemon's stderr tail is kept in DIR/<name>-<pid>.log when it exits.
  const logDir = process.env.CTRD_BENCH_LOG_DIR;
  const saved = exited.then(() =>
    logDir ? writeFile(join(logDir, `${name}-${child.pid}.log`), log).catch(() => {}) : undefined,
  );
  const deadline = Date.now() + 20_000;
  while (!(await isReady())) {
    if (exit) throw new Error(`${name}: exited before serving (${JSON.stringify(exit)}):\n${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name}: did not answer on ${socket} within 20 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const readyAt = performance.now();
  const stop = async () => {
    if (exit) return exit;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    await saved;
    return exit;
  };
  const kill = async () => {
    if (exit) return exit;
    child.kill('SIGKILL');
    await exited;
    await saved;
    return exit;
  };
  return { pid: child.pid, child, stop, kill, logs: () => log, spawnedAt, readyAt };
}

function killPid(pid) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

/** Unmounts what is left under `dir` and removes it. */
async function removeDir(dir) {
  for (const m of mountsUnder(dir).reverse()) await execP('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}

/** A private ctrd: `node packages/daemon/dist/bundle/bin.js` (the `ctrd` bin) on temp root/state/socket. */
export async function startCtrd() {
  if (!existsSync(CTRD_BIN)) throw new Error(`ctrd ${CTRD_BIN}: not built: run npx tsc -b packages/daemon`);
  const dir = await mkdtemp(join(tmpdir(), 'ctrd-bench-'));
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const socket = join(dir, 'ctrd.sock');
  // CTRD_BENCH_CPU_PROF=DIR: V8 CPU profiles of the daemon and its shims, written to DIR when each
  // exits (the daemon on SIGTERM at the end, a shim when its last task is gone).
  const profDir = process.env.CTRD_BENCH_CPU_PROF;
  const nodeArgs = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  if (profDir) process.env.CTRD_SHIM_NODE_ARGS = nodeArgs.join(' ');
  // CTRD_BENCH_CONFIG=FILE: a ctrd config (TOML) to measure instead of the defaults.
  const config = process.env.CTRD_BENCH_CONFIG ?? '/dev/null';
  const args = [...nodeArgs, CTRD_BIN, '--config', config, '--root', root, '--state-dir', state];
  args.push('--listen', socket, '--metrics-interval', '0');
  let proc;
  try {
    proc = await startProcess('ctrd', process.execPath, args, socket);
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  const shimPids = () => {
    const shims = join(state, 'shims');
    if (!existsSync(shims)) return [];
    const out = [];
    for (const id of readdirSync(shims)) {
      try {
        const pid = Number(readFileSync(join(shims, id, 'shim.pid'), 'utf8').trim());
        if (pid > 0 && alive(pid)) out.push(pid);
      } catch {}
    }
    return out;
  };
  return {
    name: 'ctrd',
    dir,
    socket,
    address: `unix://${socket}`,
    get pid() {
      return proc.pid;
    },
    runtimeOptions: undefined,
    logs: () => proc.logs(),
    shimPids,
    /** SIGKILL by pid, as a crash: shims and their tasks live on. */
    kill: () => proc.kill(),
    /**
     * A crash and a restart: SIGKILL (if still running), then the same command on the same root,
     * state and socket. `opts.ready`/`opts.pollMs` as in startProcess; resolves the new pid and the
     * performance.now() of the spawn and of the first successful ready check.
     */
    async restart(opts) {
      await proc.kill();
      proc = await startProcess('ctrd', process.execPath, args, socket, opts);
      return { pid: proc.pid, spawnedAt: proc.spawnedAt, readyAt: proc.readyAt };
    },
    /**
     * Stops the daemon, then the shims it leaves (they outlive it by design), then removes the dir.
     * A shim still starting has no shim.pid yet, so shims are also found by the private state dir
     * on their command line, and looked for again after a pause.
     */
    async dispose() {
      const ours = () => new Set([...shimPids(), ...pidsWithArg(state)]);
      const shims = ours();
      await proc.stop();
      // A profiled shim writes its profile as it exits: give it the time before any SIGKILL.
      if (profDir) {
        const until = Date.now() + 10_000;
        while (Date.now() < until && [...shims, ...ours()].some(alive))
          await new Promise((r) => setTimeout(r, 200));
      }
      for (let pass = 0; pass < 3; pass++) {
        const left = new Set([...shims, ...ours()].filter(alive));
        if (left.size === 0 && pass > 0) break;
        for (const pid of left) killPid(pid);
        await new Promise((r) => setTimeout(r, 300));
      }
      await removeDir(dir);
    },
  };
}

/** Stock containerd 1.6 with a generated config: private root, state, socket; CRI off. */
export async function startContainerd() {
  if (!existsSync(CONTAINERD_BIN))
    throw new Error(`${CONTAINERD_BIN}: not installed (apt install containerd)`);
  const dir = await mkdtemp(join(tmpdir(), 'ctrd-bench-cd-'));
  const socket = join(dir, 'containerd.sock');
  const runcRoot = join(dir, 'runc');
  await mkdir(runcRoot, { recursive: true });
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '',
    ].join('\n'),
  );
  let proc;
  try {
    proc = await startProcess('containerd', CONTAINERD_BIN, ['--config', config], socket);
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  // The stock shim is started as `containerd-shim-runc-v2 -namespace NS -address SOCKET ...`: the
  // socket argument is ours alone, so it names exactly the shims of this daemon.
  const shimPids = () =>
    pidsWithArg(socket).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('containerd-shim');
      } catch {
        return false;
      }
    });
  return {
    name: 'containerd',
    dir,
    socket,
    address: `unix://${socket}`,
    get pid() {
      return proc.pid;
    },
    // runc state under our dir instead of the shim's default /run/containerd/runc.
    runtimeOptions: { root: runcRoot },
    runcRoot,
    logs: () => proc.logs(),
    shimPids,
    kill: () => proc.kill(),
    /** As ctrd's: SIGKILL, then the same config (root, state, socket) again. */
    async restart(opts) {
      await proc.kill();
      proc = await startProcess('containerd', CONTAINERD_BIN, ['--config', config], socket, opts);
      return { pid: proc.pid, spawnedAt: proc.spawnedAt, readyAt: proc.readyAt };
    },
    /** containerd's shims exit when their task is deleted; any that remain are killed by pid. */
    async dispose() {
      await proc.stop();
      const left = shimPids();
      if (left.length > 0) {
        await new Promise((r) => setTimeout(r, 1000));
        for (const pid of shimPids()) killPid(pid);
      }
      for (const id of existsSync(join(runcRoot, 'bench')) ? readdirSync(join(runcRoot, 'bench')) : [])
        await execP('runc', ['--root', join(runcRoot, 'bench'), 'delete', '--force', id]).catch(() => {});
      await removeDir(dir);
    },
  };
}

export function startTarget(name) {
  if (name === 'ctrd') return startCtrd();
  if (name === 'containerd') return startContainerd();
  throw new Error(`target "${name}": unknown: use ctrd, containerd or both`);
}
