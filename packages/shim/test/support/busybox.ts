import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A busybox-static root filesystem: /bin/busybox and a symlink per applet. */
export async function buildBusyboxRootfs(path: string): Promise<void> {
  await mkdir(join(path, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(join(path, d), { recursive: true });
  await copyFile('/bin/busybox', join(path, 'bin', 'busybox'));
  await chmod(join(path, 'bin', 'busybox'), 0o755);
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const name of stdout.split('\n')) {
    if (name === '' || name === 'busybox') continue;
    await symlink('busybox', join(path, 'bin', name)).catch(() => {});
  }
}

/** A bundle (config.json from `runc spec`, edited) whose rootfs/ the shim mounts at Create. */
export async function writeBundle(
  bundle: string,
  args: string[],
  cgroupsPath: string,
  resources?: Record<string, unknown>,
  terminal = false,
): Promise<void> {
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  await run('runc', ['spec'], { cwd: bundle });
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
  spec.process.args = args;
  spec.process.terminal = terminal;
  spec.linux.cgroupsPath = cgroupsPath;
  if (resources) spec.linux.resources = { ...spec.linux.resources, ...resources };
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
}

export function mountsUnder(path: string, mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(path));
}
