import { Args, Flags } from '@oclif/core';
import { isNotFound, isNotImplemented } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import type { Clients } from '../../clients.js';
import { describeError } from '../../errors.js';
import { findTask, forceDeleteTask, isLive, statusName } from '../../tasks-api.js';

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

export default class ContainersRm extends CtrCommand<typeof ContainersRm> {
  static override summary = 'delete one or more containers (and their stopped tasks)';
  static override aliases = aliasesOf('containers', ['rm', 'delete', 'del', 'remove']);
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override usage = '<%= command.id %> [--force] [--keep-snapshot] ID...';
  static override flags = {
    force: Flags.boolean({ char: 'f', summary: 'kill a running task first' }),
    'keep-snapshot': Flags.boolean({ summary: "keep the container's snapshot" }),
  };

  async run(): Promise<void> {
    let failed = false;
    for (const id of [this.args.id, ...this.rest]) {
      try {
        await removeContainer(this.clients, id, {
          force: this.flags.force,
          keepSnapshot: this.flags['keep-snapshot'],
        });
      } catch (err) {
        failed = true;
        this.note(describeError(err, { address: this.address }).message);
      }
    }
    if (failed) this.exitWith(1);
  }
}
