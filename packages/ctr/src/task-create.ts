import { isNotFound, unpackJson } from '@ctrd/api-proto/client';
import { type Container, ContainersService } from '@ctrd/api-proto/containers';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { TasksService } from '@ctrd/api-proto/tasks';
import type { StdioPaths } from './attach.js';
import type { Clients } from './clients.js';
import type { OciSpec } from './oci-spec.js';

export async function getContainer(clients: Clients, id: string): Promise<Container> {
  const res = await clients.get(ContainersService).get({ id });
  if (!res.container) throw new Error(`container "${id}": the daemon returned no container`);
  return res.container;
}

/** The container's OCI spec, or undefined if it has none ctr can read. */
export function specOf(container: Container): OciSpec | undefined {
  try {
    return container.spec ? unpackJson<OciSpec>(container.spec) : undefined;
  } catch {
    return undefined;
  }
}

/** Tasks.Create for a container; its snapshot's mounts become the rootfs, as containerd's client does. */
export async function createTask(clients: Clients, container: Container, stdio: StdioPaths): Promise<number> {
  let rootfs: { type: string; source: string; target: string; options: string[] }[] = [];
  if (container.snapshotKey) {
    try {
      const res = await clients
        .get(SnapshotsService)
        .mounts({ snapshotter: container.snapshotter, key: container.snapshotKey });
      rootfs = res.mounts;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  const res = await clients.get(TasksService).create({
    containerId: container.id,
    rootfs,
    stdin: stdio.stdin,
    stdout: stdio.stdout,
    stderr: stdio.stderr,
    terminal: stdio.terminal,
  });
  return res.pid;
}
