import { isNotFound, isNotImplemented } from '@ctrd/api-proto/client';
import { type Process, Status } from '@ctrd/api-proto/task-types';
import { TasksService } from '@ctrd/api-proto/tasks';
import type { Clients } from './clients.js';

/** The task of a container, or undefined when it has none (or the daemon has no Tasks service). */
export async function findTask(
  clients: Clients,
  containerId: string,
  execId = '',
): Promise<Process | undefined> {
  try {
    return (await clients.get(TasksService).get({ containerId, execId })).process;
  } catch (err) {
    if (isNotFound(err) || isNotImplemented(err)) return undefined;
    throw err;
  }
}

/** containerd's ctr prints the enum name in lower case: running, stopped, ... */
export function statusName(status: Status): string {
  return (Status[status] ?? 'unknown').toLowerCase();
}

export function isLive(status: Status): boolean {
  return status === Status.RUNNING || status === Status.PAUSED || status === Status.PAUSING;
}

const SIGKILL = 9;

/**
 * Kills a live task and waits for it, then deletes it: what `--force` means for destructive verbs.
 * Wait is issued before Kill so the exit cannot be missed.
 */
export async function forceDeleteTask(
  clients: Clients,
  containerId: string,
  signal?: AbortSignal,
): Promise<void> {
  const api = clients.get(TasksService);
  const task = await findTask(clients, containerId);
  if (!task) return;
  if (isLive(task.status)) {
    const waited = api.wait({ containerId }, { signal });
    if (task.status === Status.PAUSED || task.status === Status.PAUSING) {
      // A frozen cgroup holds SIGKILL until thawed.
      await api.resume({ containerId }).catch(() => undefined);
    }
    await api.kill({ containerId, signal: SIGKILL, all: true });
    await waited;
  }
  await api.delete({ containerId });
}
