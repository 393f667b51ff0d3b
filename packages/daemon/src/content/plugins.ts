import { join } from 'node:path';
import { GarbageCollector, type SnapshotRemover } from '../gc/collector.js';
import type { GcHook } from '../gc/hook.js';
import { LocalImages } from '../images/local-images.js';
import { type PluginContext, type PluginRegistration, PluginType } from '../plugin.js';
import { contentService } from '../services/content.js';
import type { Exchange } from '../services/exchange.js';
import { imagesService } from '../services/images.js';
import type { LocalLeases } from '../services/leases.js';
import type { MetaStore } from '../store/meta-store.js';
import { LocalContent } from './local-content.js';

// Registrations of the content store, the image store, their Connect services and the garbage
// collector. Services that delete things reach the collector through gcHook, looked up when
// called, so no plugin has to load before another just to be told about deletes.

function lookup<T>(ctx: PluginContext, type: string, id: string): T | undefined {
  try {
    return ctx.get<T>(type, id);
  } catch {
    return undefined;
  }
}

/** The GC plugin's schedule/collect, resolved at call time (a no-op while it is not loaded). */
export function gcHook(ctx: PluginContext): GcHook {
  const gc = () => lookup<GarbageCollector>(ctx, PluginType.GC, 'scheduler');
  return {
    schedule: () => gc()?.schedule(),
    collect: async (signal) => gc()?.collect(signal),
  };
}

export interface ContentPluginOptions {
  /** The daemon's root: content lives in root/content. */
  root: string;
  /** Debounce of scheduled collections, ms. */
  gcDelayMs?: number | undefined;
  /** Delay of the start-up sweep of stale files, ms (-1: none). Default 1000. */
  gcStartupDelayMs?: number | undefined;
}

export function contentPlugins(opts: ContentPluginOptions): PluginRegistration[] {
  return [
    {
      type: PluginType.Content,
      id: 'content',
      requires: [PluginType.Metadata, PluginType.Event],
      init: (ctx) => {
        const root = join(opts.root, 'content');
        const local = new LocalContent({
          root,
          store: ctx.get<MetaStore>(PluginType.Metadata, 'sqlite'),
          events: ctx.get<Exchange>(PluginType.Event, 'exchange'),
          leases: () => lookup<LocalLeases>(ctx, PluginType.Service, 'leases-service'),
          gc: gcHook(ctx),
          logger: ctx.logger,
        });
        return { instance: local, exports: { root } };
      },
    },
    {
      type: PluginType.GC,
      id: 'scheduler',
      requires: [PluginType.Metadata, PluginType.Content],
      init: (ctx) => {
        const gc = new GarbageCollector({
          store: ctx.get<MetaStore>(PluginType.Metadata, 'sqlite'),
          content: ctx.get<LocalContent>(PluginType.Content, 'content'),
          snapshots: () => lookup<SnapshotRemover>(ctx, PluginType.Service, 'snapshots-service'),
          logger: ctx.logger,
          delayMs: opts.gcDelayMs,
        });
        // Blobs orphaned by a crash and stale ingests go soon after start. Unreferenced rows wait
        // for the first delete, so a client that just wrote content has time to reference it.
        const startup = opts.gcStartupDelayMs ?? 1000;
        const timer =
          startup >= 0
            ? setTimeout(() => {
                try {
                  gc.sweepFiles();
                } catch (err) {
                  ctx.logger.warn({ err }, 'garbage collection: start-up sweep failed');
                }
              }, startup).unref()
            : undefined;
        return {
          instance: gc,
          close: () => {
            clearTimeout(timer);
            return gc.close();
          },
        };
      },
    },
    {
      type: PluginType.Service,
      id: 'images-service',
      requires: [PluginType.Metadata, PluginType.Event],
      init: (ctx) => ({
        instance: new LocalImages({
          store: ctx.get<MetaStore>(PluginType.Metadata, 'sqlite'),
          events: ctx.get<Exchange>(PluginType.Event, 'exchange'),
          gc: gcHook(ctx),
        }),
      }),
    },
  ];
}

/** The Connect services, listed with the other io.containerd.grpc.v1 plugins (load order = registration order). */
export function contentGrpcPlugins(): PluginRegistration[] {
  return [
    {
      type: PluginType.Grpc,
      id: 'content',
      requires: [PluginType.Content],
      init: (ctx) => ({ services: [contentService(ctx.get<LocalContent>(PluginType.Content, 'content'))] }),
    },
    {
      type: PluginType.Grpc,
      id: 'images',
      requires: [PluginType.Service],
      init: (ctx) => ({
        services: [imagesService(ctx.get<LocalImages>(PluginType.Service, 'images-service'))],
      }),
    },
  ];
}
