import { execFile } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, createUnixTransport } from '@ctrd/api-proto';
import { LeasesService } from '@ctrd/api-proto/leases';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { NAMESPACE } from './containers.mjs';

// The overlay-snapshot variant of a start: each container's root is an active overlayfs snapshot
// on one committed busybox layer, prepared through the daemon's Snapshots API (what `ctr run IMAGE`
// does) and mounted by the runtime from Tasks.Create's rootfs mounts. Raw runc gets the same
// overlay mounted by the bench.

const run = promisify(execFile);
export const SNAPSHOTTER = 'overlayfs';

/**
 * A committed snapshot holding `rootfsDir`, in `target`'s overlayfs snapshotter, under a lease the
 * bench owns (deleting the lease at the end lets the daemon's GC take every snapshot the bench made).
 */
export async function overlayBase(target, rootfsDir) {
  const lease = `bench-${process.pid}`;
  const plain = createUnixTransport({ address: target.socket, namespace: NAMESPACE });
  const leased = createUnixTransport({ address: target.socket, namespace: NAMESPACE, lease });
  const leases = createClient(LeasesService, { transport: plain });
  const snapshots = createClient(SnapshotsService, { transport: leased });
  await leases.create({ id: lease });
  const base = `bench-base-${process.pid}`;
  const active = `${base}-active`;
  const { mounts } = await snapshots.prepare({ snapshotter: SNAPSHOTTER, key: active });
  // A snapshot without a parent is a bind mount of an empty directory: fill it in place.
  if (mounts.length !== 1 || mounts[0].type !== 'bind')
    throw new Error(`snapshot ${active}: expected one bind mount, got ${JSON.stringify(mounts)}`);
  await cp(rootfsDir, mounts[0].source, { recursive: true, verbatimSymlinks: true });
  await snapshots.commit({ snapshotter: SNAPSHOTTER, name: base, key: active });
  return {
    /** An active snapshot for container `id`: its mounts, for Tasks.Create. */
    async prepare(id) {
      const r = await snapshots.prepare({ snapshotter: SNAPSHOTTER, key: id, parent: base });
      return r.mounts;
    },
    async remove(id) {
      await snapshots.remove({ snapshotter: SNAPSHOTTER, key: id }).catch(() => {});
    },
    async dispose() {
      await snapshots.remove({ snapshotter: SNAPSHOTTER, key: base }).catch(() => {});
      await leases.delete({ id: lease, sync: true }).catch(() => {});
      plain.close();
      leased.close();
    },
  };
}

/** Raw runc's overlay: lower = the shared rootfs, upper and work per container, on bundle/rootfs. */
export async function mountOverlay(lower, bundle) {
  const upper = join(bundle, 'upper');
  const work = join(bundle, 'work');
  const rootfs = join(bundle, 'rootfs');
  await Promise.all([mkdir(upper), mkdir(work), mkdir(rootfs)]);
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
    rootfs,
  ]);
  return rootfs;
}

export async function unmountOverlay(bundle) {
  await run('umount', [join(bundle, 'rootfs')]).catch(() => {});
}
