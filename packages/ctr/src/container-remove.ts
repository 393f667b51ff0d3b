import { isNotFound, isNotImplemented } from '@ctrd/api-proto/client';
import { ContainersService } from '@ctrd/api-proto/containers';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { TasksService } from '@ctrd/api-proto/tasks';
import type { Clients } from './clients.js';
import { findTask, forceDeleteTask, isLive, statusName } from './tasks-api.js';

export interface RemoveOptions {
  force: boolean;
  keepSnapshot: boolean;
}

/**
 * Deletes a container the way containerd's ctr does: its task first (it must be stopped, unless
 * forced), then its snapshot, then the record.
 */
export async function removeContainer(clients: Clients, id: string, options: RemoveOptions): Promise<void> {
  const containers = clients.get(ContainersService);
  const res = await containers.get({ id });
  const container = res.container;
  const task = await findTask(clients, id);
  if (task) {
    if (isLive(task.status) && !options.force) {
      throw new Error(
        `container "${id}" has a ${statusName(task.status)} task: stop it first (ctr tasks kill ${id}) or use --force`,
      );
    }
    if (options.force) await forceDeleteTask(clients, id);
    else await clients.get(TasksService).delete({ containerId: id });
  }
  if (container?.snapshotKey && !options.keepSnapshot) {
    try {
      await clients
        .get(SnapshotsService)
        .remove({ snapshotter: container.snapshotter, key: container.snapshotKey });
    } catch (err) {
      if (!isNotFound(err) && !isNotImplemented(err)) throw err;
    }
  }
  await containers.delete({ id });
}
