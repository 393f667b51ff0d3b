import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  codeFromKind,
  errorKind,
  matchAll,
  parseFilters,
  service,
  type ServiceRegistration,
} from '@ctrd/api-proto';
import { IntrospectionService, type Plugin, PluginSchema, StatusSchema } from '@ctrd/api-proto/introspection';
import type { PluginRecord } from '../plugin.js';

// What the daemon really loaded, from the plugin records, and a server uuid that stays the same
// across restarts (root/uuid).

/** Reads root/uuid, creating it (atomically) the first time. */
export function serverUuid(root: string): string {
  const path = join(root, 'uuid');
  try {
    const v = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(v)) return v;
  } catch {}
  const id = randomUUID();
  writeFileSync(`${path}.tmp`, id, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return id;
}

export class LocalIntrospection {
  constructor(
    private readonly records: () => readonly PluginRecord[],
    readonly uuid: string,
  ) {}

  /** Filters: type, id, capabilities (any of), as containerd's. */
  plugins(filters: readonly string[] = []): Plugin[] {
    const filter = parseFilters(filters);
    const all = this.records().map((r) =>
      create(PluginSchema, {
        type: r.type,
        id: r.id,
        requires: r.requires,
        platforms: [{ os: process.platform, architecture: process.arch === 'x64' ? 'amd64' : process.arch }],
        exports: r.exports,
        capabilities: r.capabilities,
        initErr: r.initError
          ? create(StatusSchema, {
              code: errorKind(r.initError) ? codeFromKind(errorKind(r.initError)!) : 2,
              message: r.initError.message,
            })
          : undefined,
      }),
    );
    return matchAll(filter, all, (p) =>
      adaptObject(
        { type: p.type, id: p.id },
        { capabilities: Object.fromEntries(p.capabilities.map((c) => [c, c])) },
      ),
    );
  }
}

export function introspectionService(local: LocalIntrospection): ServiceRegistration {
  return service(IntrospectionService, {
    plugins: async (req) => ({ plugins: local.plugins(req.filters) }),
    server: async () => ({ uuid: local.uuid }),
  });
}
