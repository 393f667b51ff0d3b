import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A busybox-static root filesystem: /bin/busybox and a symlink per applet. */
export async function buildBusyboxRootfs(rootfs: string): Promise<void> {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc', 'root'])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const name of stdout.split('\n')) {
    if (name === '' || name === 'busybox') continue;
    await symlink('busybox', join(rootfs, 'bin', name)).catch(() => {});
  }
}

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  /** Merged into linux.resources. */
  resources?: Record<string, unknown>;
}

/** Writes config.json (from `runc spec`, edited) for a bundle whose rootfs/ exists or is built. */
export async function writeConfig(bundle: string, opts: BundleOptions): Promise<void> {
  await rm(join(bundle, 'config.json'), { force: true });
  await run('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
  spec.process.args = opts.args;
  spec.process.terminal = opts.terminal ?? false;
  spec.root.readonly = false;
  if (opts.resources) spec.linux.resources = { ...spec.linux.resources, ...opts.resources };
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
}

export interface TestBundle {
  /** Temp dir holding everything: bundle/, root/ (private runc --root). */
  dir: string;
  bundle: string;
  root: string;
  cleanup(): Promise<void>;
}

/** A temp dir with a busybox bundle and a private runc root. */
export async function makeBundle(opts: BundleOptions): Promise<TestBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'runc-client-test-'));
  const bundle = join(dir, 'bundle');
  const root = join(dir, 'root');
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  await mkdir(root, { recursive: true, mode: 0o700 });
  await buildBusyboxRootfs(join(bundle, 'rootfs'));
  await writeConfig(bundle, opts);
  return { dir, bundle, root, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Mount points under a path (from /proc/self/mountinfo): what a test must not leave behind. */
export async function mountsUnder(path: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(path));
}

/** True while a pid exists (kill 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
