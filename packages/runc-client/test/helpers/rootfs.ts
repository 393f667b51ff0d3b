import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Builds OCI bundles around busybox-static for tests that run real containers. Shared with e2e
// tests through e2e/test/helpers/rootfs.ts.

const run = promisify(execFile);

export const BUSYBOX = '/bin/busybox';
export const RUNC = '/usr/sbin/runc';

/** A root filesystem holding /bin/busybox and a symlink per applet (sh, echo, sleep, cat, …). */
export async function buildBusyboxRootfs(rootfs: string, busybox = BUSYBOX): Promise<void> {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc', 'root'])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(busybox, join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run(busybox, ['--list']);
  for (const name of stdout.split('\n')) {
    if (name === '' || name === 'busybox') continue;
    await symlink('busybox', join(rootfs, 'bin', name)).catch(() => {});
  }
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\n');
}

export interface BundleOptions {
  /** process.args (default: sh -c 'echo hello') */
  args?: string[];
  terminal?: boolean;
  env?: string[];
  /** Merged into linux.resources. */
  resources?: Record<string, unknown>;
  /** linux.cgroupsPath */
  cgroupsPath?: string;
  /** Edits the spec before it is written. */
  edit?: (spec: OciSpec) => void;
  runc?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: the OCI spec is edited freely by tests
export type OciSpec = Record<string, any>;

/**
 * An OCI bundle in `dir`: config.json from `runc spec` (so it matches this runc), edited to run
 * `args` without a terminal on a writable busybox rootfs.
 */
export async function writeBusyboxBundle(dir: string, opts: BundleOptions = {}): Promise<OciSpec> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await buildBusyboxRootfs(join(dir, 'rootfs'));
  await run(opts.runc ?? RUNC, ['spec', '--bundle', dir]);
  const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as OciSpec;
  spec.root = { path: 'rootfs', readonly: false };
  spec.process.args = opts.args ?? ['sh', '-c', 'echo hello'];
  spec.process.terminal = opts.terminal ?? false;
  if (opts.env) spec.process.env = [...spec.process.env, ...opts.env];
  if (opts.cgroupsPath) spec.linux.cgroupsPath = opts.cgroupsPath;
  if (opts.resources) spec.linux.resources = { ...spec.linux.resources, ...opts.resources };
  opts.edit?.(spec);
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return spec;
}

/** Rewrites a bundle's config.json through `edit`. */
export async function editBundle(dir: string, edit: (spec: OciSpec) => void): Promise<void> {
  const path = join(dir, 'config.json');
  const spec = JSON.parse(await readFile(path, 'utf8')) as OciSpec;
  edit(spec);
  await writeFile(path, JSON.stringify(spec, null, 2));
}

export interface Sandbox {
  /** The temp dir holding everything below. */
  dir: string;
  /** A private runc --root. */
  root: string;
  /** Makes a bundle named `name` under dir. */
  bundle(name: string, opts?: BundleOptions): Promise<string>;
  /** Force-deletes every container in root, then removes dir. */
  /** Force-deletes every container, removes the dir, and returns the ids runc still listed before that. */
  cleanup(): Promise<string[]>;
}

/** A temp dir with a private runc root, for tests that run containers and must leave nothing behind. */
export async function makeSandbox(prefix = 'runc-test-', runc = RUNC): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const root = join(dir, 'state');
  await mkdir(root, { mode: 0o700 });
  return {
    dir,
    root,
    async bundle(name, opts = {}) {
      const b = join(dir, 'bundles', name);
      await writeBusyboxBundle(b, { runc, ...opts });
      return b;
    },
    async cleanup() {
      for (const id of await listIds(runc, root)) {
        await run(runc, ['--root', root, 'delete', '--force', id]).catch(() => {});
      }
      // Asked before the dir goes: any runc call on a missing --root creates it again.
      const left = await listIds(runc, root);
      await rm(dir, { recursive: true, force: true });
      return left;
    },
  };
}

/** Ids of the containers runc knows under `root`. */
export async function listIds(runc: string, root: string): Promise<string[]> {
  try {
    const { stdout } = await run(runc, ['--root', root, 'list', '--format', 'json']);
    const list = JSON.parse(stdout) as { id: string }[] | null;
    return (list ?? []).map((c) => c.id);
  } catch {
    return [];
  }
}

/** Mount points under `path` in this mount namespace. */
export async function mountsUnder(path: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(path));
}

/**
 * True while a pid runs. A zombie counts as gone: it has exited and waits for its parent (often
 * pid 1 once runc has exited) to collect it.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
