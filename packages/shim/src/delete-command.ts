import { exitFilePath, readExitFile } from './exit-file.js';
import type { ShimOptions } from './options.js';
import { unmountRootfs } from './rootfs.js';
import type { Runtime } from './runtime.js';
import { isNoSuchContainer } from './runtime.js';

// `ctrd-shim delete`: settles a task whose shim is gone (containerd's cleanupAfterDeadShim calls the
// shim binary's delete the same way). The container is force-deleted in runc, its rootfs unmounted,
// and the exit status comes from the exit file the shim wrote before it published the exit. Without
// one: 137 when the container was still alive and had to be killed, else 255 (unknown).

export interface DeleteResult {
  pid: number;
  exit_status: number;
  exited_at: string;
}

export async function deleteTask(
  opts: ShimOptions,
  runtime: Runtime,
  signal?: AbortSignal,
): Promise<DeleteResult> {
  const bundle = opts.bundle as string;
  const state = await runtime.state(opts.id, signal).catch(() => undefined);
  const wasAlive = state !== undefined && state.status !== 'stopped';
  await runtime.delete(opts.id, true, signal).catch((e) => {
    if (!isNoSuchContainer(e))
      throw new Error(`delete task ${opts.id}: runc delete: ${(e as Error).message}`, { cause: e });
  });
  await unmountRootfs(bundle, signal);
  const exit = await readExitFile(exitFilePath(bundle), signal).catch(() => undefined);
  if (exit) return { pid: exit.pid, exit_status: exit.exitStatus, exited_at: exit.exitedAt.toISOString() };
  return {
    pid: state?.pid ?? 0,
    exit_status: wasAlive ? 137 : 255,
    exited_at: new Date().toISOString(),
  };
}
