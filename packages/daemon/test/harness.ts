import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { createInMemoryClient } from '@ctrd/api-proto';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, type PluginSet } from '../src/plugin.js';

// The built-in plugins loaded on a temp root and served in memory: service tests without sockets.

export interface Harness {
  root: string;
  plugins: PluginSet;
  client<T extends DescService>(service: T, namespace?: string, lease?: string): Client<T>;
  close(): Promise<void>;
}

export async function harness(): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'ctrd-svc-'));
  const plugins = await initPlugins(builtinPlugins({ root }), {
    config: { ...defaultConfig, root, stateDir: join(root, 'state') },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    rootDir: root,
    stateDir: join(root, 'state'),
  });
  return {
    root,
    plugins,
    client: (service, namespace = 'default', lease) =>
      createInMemoryClient(service, {
        services: plugins.services,
        namespace: namespace === '' ? undefined : namespace,
        lease,
      }),
    async close() {
      await plugins.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
