import type { Logger, ServiceRegistration } from '@ctrd/api-proto';
import type { Registry } from '@ctrd/metrics';
import { FailedPrecondition, NotFound } from '@ctrd/api-proto';
import type { Config } from './config.js';

// Plugins in containerd's shape: each has a type, an id and the types it requires. The daemon
// initialises them in dependency order; a plugin that fails to initialise is recorded with its
// error (Introspection shows it) and anything requiring its type sees it missing. Later work
// (tasks + shim manager, content, images, snapshots, diff) adds registrations to the list.

export const PluginType = {
  Metadata: 'io.containerd.metadata.v1',
  Event: 'io.containerd.event.v1',
  Service: 'io.containerd.service.v1',
  Grpc: 'io.containerd.grpc.v1',
  Internal: 'io.containerd.internal.v1',
  Content: 'io.containerd.content.v1',
  Snapshot: 'io.containerd.snapshotter.v1',
  Differ: 'io.containerd.differ.v1',
  GC: 'io.containerd.gc.v1',
} as const;

export interface PluginContext {
  readonly config: Config;
  readonly logger: Logger;
  /** root/<type>.<id>, for plugins that keep files (created on demand by the plugin). */
  readonly rootDir: string;
  readonly stateDir: string;
  /** The daemon's metrics (telemetry), for plugins that record timings; absent in bare setups. */
  readonly metrics?: Registry | undefined;
  /** The instance of an initialised plugin; NotFound if it is not there or failed. */
  get<T>(type: string, id: string): T;
  /** All initialised instances of a type, by id. */
  getByType<T>(type: string): Map<string, T>;
  /** The registered plugins so far (for Introspection). */
  readonly plugins: readonly PluginRecord[];
}

export interface PluginInstance {
  /** What other plugins receive from ctx.get. */
  instance?: unknown;
  /** Connect services this plugin serves on the socket. */
  services?: ServiceRegistration[];
  exports?: Record<string, string>;
  capabilities?: string[];
  close?(): void | Promise<void>;
}

export interface PluginRegistration {
  type: string;
  id: string;
  requires?: readonly string[];
  init(ctx: PluginContext): PluginInstance | Promise<PluginInstance>;
}

export interface PluginRecord {
  type: string;
  id: string;
  requires: string[];
  exports: Record<string, string>;
  capabilities: string[];
  initError?: Error | undefined;
  instance?: PluginInstance | undefined;
}

/** Orders registrations so each comes after every plugin of the types it requires. */
export function orderPlugins(regs: readonly PluginRegistration[]): PluginRegistration[] {
  const byType = new Map<string, PluginRegistration[]>();
  for (const r of regs) byType.set(r.type, [...(byType.get(r.type) ?? []), r]);
  const out: PluginRegistration[] = [];
  const state = new Map<PluginRegistration, 'visiting' | 'done'>();
  const visit = (r: PluginRegistration, path: string[]): void => {
    const s = state.get(r);
    if (s === 'done') return;
    const name = `${r.type}.${r.id}`;
    if (s === 'visiting') {
      throw new FailedPrecondition(`plugin ${name}: dependency cycle: ${[...path, name].join(' -> ')}`);
    }
    state.set(r, 'visiting');
    for (const t of r.requires ?? [])
      for (const dep of byType.get(t) ?? []) if (dep !== r) visit(dep, [...path, name]);
    state.set(r, 'done');
    out.push(r);
  };
  const seen = new Set<string>();
  for (const r of regs) {
    const name = `${r.type}.${r.id}`;
    if (seen.has(name)) throw new FailedPrecondition(`plugin ${name}: registered twice`);
    seen.add(name);
  }
  for (const r of regs) visit(r, []);
  return out;
}

export interface PluginSet {
  readonly records: readonly PluginRecord[];
  readonly services: ServiceRegistration[];
  get<T>(type: string, id: string): T;
  close(): Promise<void>;
}

export async function initPlugins(
  regs: readonly PluginRegistration[],
  base: { config: Config; logger: Logger; rootDir: string; stateDir: string; metrics?: Registry | undefined },
  signal?: AbortSignal,
): Promise<PluginSet> {
  const records: PluginRecord[] = [];
  const get = <T>(type: string, id: string): T => {
    const rec = records.find((r) => r.type === type && r.id === id);
    if (!rec?.instance) {
      throw new NotFound(
        `plugin ${type}.${id}: ${rec?.initError ? `failed to initialise: ${rec.initError.message}` : 'not loaded'}`,
      );
    }
    return rec.instance.instance as T;
  };
  const getByType = <T>(type: string): Map<string, T> => {
    const m = new Map<string, T>();
    for (const r of records) if (r.type === type && r.instance) m.set(r.id, r.instance.instance as T);
    return m;
  };
  for (const reg of orderPlugins(regs)) {
    signal?.throwIfAborted();
    const rec: PluginRecord = {
      type: reg.type,
      id: reg.id,
      requires: [...(reg.requires ?? [])],
      exports: {},
      capabilities: [],
    };
    records.push(rec);
    const ctx: PluginContext = {
      ...base,
      rootDir: `${base.rootDir}/${reg.type}.${reg.id}`,
      stateDir: `${base.stateDir}/${reg.type}.${reg.id}`,
      logger: base.logger,
      get,
      getByType,
      plugins: records,
    };
    try {
      const inst = await reg.init(ctx);
      rec.instance = inst;
      rec.exports = inst.exports ?? {};
      rec.capabilities = inst.capabilities ?? [];
      base.logger.debug({ type: reg.type, id: reg.id }, 'plugin loaded');
    } catch (e) {
      rec.initError = e as Error;
      base.logger.warn({ type: reg.type, id: reg.id, err: e }, 'plugin failed to load');
    }
  }
  return {
    records,
    services: records.flatMap((r) => r.instance?.services ?? []),
    get,
    async close() {
      // Reverse order: dependants go before what they depend on.
      for (const r of [...records].reverse()) {
        try {
          await r.instance?.close?.();
        } catch (e) {
          base.logger.warn({ type: r.type, id: r.id, err: e }, 'plugin close failed');
        }
      }
    },
  };
}
