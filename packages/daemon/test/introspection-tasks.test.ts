import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isInvalidArgument } from '@ctrd/api-proto';
import { IntrospectionService } from '@ctrd/api-proto/introspection';
import { VersionService } from '@ctrd/api-proto/version';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, orderPlugins, type PluginRegistration } from '../src/plugin.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

describe('Introspection and Version', () => {
  it('Plugins lists what is registered, with requires, and filters', async () => {
    const intro = h.client(IntrospectionService);
    const all = (await intro.plugins({})).plugins;
    const names = all.map((p) => `${p.type}.${p.id}`);
    expect(names).toEqual(
      builtinPlugins({ root: h.root })
        .map((r) => `${r.type}.${r.id}`)
        .filter((n) => names.includes(n)),
    );
    expect(names).toContain('io.containerd.grpc.v1.containers');
    expect(names).toContain('io.containerd.metadata.v1.sqlite');
    expect(all.every((p) => p.initErr === undefined)).toBe(true);
    const grpc = (await intro.plugins({ filters: ['type==io.containerd.grpc.v1'] })).plugins.map((p) => p.id);
    expect(grpc).toEqual([
      'version',
      'healthcheck',
      'namespaces',
      'containers',
      'leases',
      'events',
      'tasks',
      'logs',
      'snapshots',
      'content',
      'images',
      'diff',
      'introspection',
    ]);
    expect((await intro.plugins({ filters: ['id==containers-service'] })).plugins[0]?.requires).toEqual([
      'io.containerd.metadata.v1',
      'io.containerd.event.v1',
    ]);
    expect(isInvalidArgument(await intro.plugins({ filters: ['id=="'] }).catch((e) => e))).toBe(true);
  });

  it('Server uuid is the one kept in root/uuid', async () => {
    const { uuid } = await h.client(IntrospectionService).server({});
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await readFile(join(h.root, 'uuid'), 'utf8')).trim()).toBe(uuid);
  });

  it('Version answers the package version and a revision that is never empty', async () => {
    const v = await h.client(VersionService).version({});
    expect(v.version).toMatch(/^\d+\.\d+\.\d+/);
    // Unbundled (tsc's output, as here): CTRD_REVISION, else the version; the bundled bin's commit
    // is checked in e2e/test/daemon-health.test.ts.
    expect(v.revision).toBe(process.env.CTRD_REVISION || v.version);
  });

  it('a plugin that fails to load is listed with its error; dependants still order after it', async () => {
    const failing: PluginRegistration = {
      type: 'io.containerd.snapshotter.v1',
      id: 'broken',
      init: () => {
        throw new Error('no overlay support');
      },
    };
    const dependant: PluginRegistration = {
      type: 'io.containerd.grpc.v1',
      id: 'snapshots',
      requires: ['io.containerd.snapshotter.v1'],
      init: (ctx) => ({ instance: ctx.get('io.containerd.snapshotter.v1', 'broken') }),
    };
    expect(orderPlugins([dependant, failing]).map((p) => p.id)).toEqual(['broken', 'snapshots']);
    const set = await initPlugins([dependant, failing], {
      config: { ...defaultConfig },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      rootDir: h.root,
      stateDir: h.root,
    });
    expect(set.records.map((r) => [r.id, r.initError?.message])).toEqual([
      ['broken', 'no overlay support'],
      [
        'snapshots',
        expect.stringMatching(/plugin io.containerd.snapshotter.v1.broken: failed to initialise/),
      ],
    ]);
    await set.close();
  });
});
