import { gcHook } from '../content/plugins.js';
import { join } from 'node:path';
import {
  leaseFromContext,
  namespaceFromContext,
  service,
  type ServiceRegistration,
  TimeSlice,
} from '@ctrd/api-proto';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { type PluginRegistration, PluginType } from '../plugin.js';
import type { SnapshotBackend } from '../snapshots/backend.js';
import { LocalSnapshots } from '../snapshots/local-snapshots.js';
import { NativeBackend } from '../snapshots/native.js';
import { OverlayBackend } from '../snapshots/overlay.js';

// containerd.services.snapshots.v1.Snapshots over LocalSnapshots, and the plugins behind it: one
// io.containerd.snapshotter.v1 plugin per backend (overlayfs fails to load where overlay mounts do
// not work, leaving native), the local service on whichever loaded, the Connect service on top.

/** containerd sends List results in batches of this many. */
const LIST_BATCH = 100;

export function snapshotsService(local: LocalSnapshots): ServiceRegistration {
  return service(SnapshotsService, {
    prepare: async (req, ctx) => ({
      mounts: await local.prepare(
        namespaceFromContext(ctx),
        req.snapshotter,
        req.key,
        req.parent,
        req.labels,
        leaseFromContext(ctx),
        ctx.signal,
      ),
    }),
    view: async (req, ctx) => ({
      mounts: await local.view(
        namespaceFromContext(ctx),
        req.snapshotter,
        req.key,
        req.parent,
        req.labels,
        leaseFromContext(ctx),
        ctx.signal,
      ),
    }),
    mounts: async (req, ctx) => ({
      mounts: local.mounts(namespaceFromContext(ctx), req.snapshotter, req.key),
    }),
    commit: async (req, ctx) => {
      await local.commit(
        namespaceFromContext(ctx),
        req.snapshotter,
        req.name,
        req.key,
        req.labels,
        leaseFromContext(ctx),
        ctx.signal,
      );
      return {};
    },
    remove: async (req, ctx) => {
      await local.remove(namespaceFromContext(ctx), req.snapshotter, req.key, ctx.signal);
      return {};
    },
    stat: async (req, ctx) => ({ info: local.stat(namespaceFromContext(ctx), req.snapshotter, req.key) }),
    update: async (req, ctx) => ({
      info: local.update(namespaceFromContext(ctx), req.snapshotter, req.info, req.updateMask?.paths ?? []),
    }),
    async *list(req, ctx) {
      const all = await local.list(namespaceFromContext(ctx), req.snapshotter, req.filters, ctx.signal);
      const slice = new TimeSlice();
      for (let i = 0; i < all.length; i += LIST_BATCH) {
        yield { info: all.slice(i, i + LIST_BATCH) };
        if (slice.due) await slice.yield(ctx.signal);
      }
    },
    usage: async (req, ctx) => {
      const u = await local.usage(namespaceFromContext(ctx), req.snapshotter, req.key, ctx.signal);
      return { size: BigInt(u.size), inodes: BigInt(u.inodes) };
    },
    // Not namespaced: it removes the backend's files that no namespace's record names.
    cleanup: async (req, ctx) => {
      await local.cleanup(req.snapshotter, ctx.signal);
      return {};
    },
  });
}

/**
 * The snapshotter plugins (files under root/snapshots/<name>) and the local service. The service
 * must come after leases-service in the list (it records snapshots in the request's lease).
 */
export function snapshotPlugins(root: string): PluginRegistration[] {
  const dir = (name: string) => join(root, 'snapshots', name);
  return [
    {
      type: PluginType.Snapshot,
      id: 'overlayfs',
      init: async (ctx) => {
        const b = await OverlayBackend.create(dir('overlayfs'), { logger: ctx.logger });
        return { instance: b, exports: { root: b.root } };
      },
    },
    {
      type: PluginType.Snapshot,
      id: 'native',
      init: async (ctx) => {
        const b = await NativeBackend.create(dir('native'), { logger: ctx.logger });
        return { instance: b, exports: { root: b.root } };
      },
    },
    {
      type: PluginType.Service,
      id: 'snapshots-service',
      requires: [PluginType.Metadata, PluginType.Event, PluginType.Snapshot],
      init: (ctx) => ({
        instance: new LocalSnapshots(
          ctx.get(PluginType.Metadata, 'sqlite'),
          ctx.getByType<SnapshotBackend>(PluginType.Snapshot),
          ctx.get(PluginType.Event, 'exchange'),
          ctx.get(PluginType.Service, 'leases-service'),
          ctx.logger,
          gcHook(ctx),
        ),
      }),
    },
  ];
}

/** The Connect service, listed with the other io.containerd.grpc.v1 plugins. */
export function snapshotsGrpcPlugin(): PluginRegistration {
  return {
    type: PluginType.Grpc,
    id: 'snapshots',
    requires: [PluginType.Service],
    init: (ctx) => ({
      services: [snapshotsService(ctx.get<LocalSnapshots>(PluginType.Service, 'snapshots-service'))],
    }),
  };
}
