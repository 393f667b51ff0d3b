import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Every subpath in package.json must map to a source entry that exports generated schemas, and
// service subpaths must export their descriptor as XxxService.
const root = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
};

const services: Record<string, string> = {
  containers: 'ContainersService',
  tasks: 'TasksService',
  events: 'EventsService',
  'events-ttrpc': 'TtrpcEventsService',
  namespaces: 'NamespacesService',
  version: 'VersionService',
  introspection: 'IntrospectionService',
  health: 'HealthService',
  content: 'ContentService',
  images: 'ImagesService',
  snapshots: 'SnapshotsService',
  leases: 'LeasesService',
  diff: 'DiffService',
  shim: 'TaskService',
  eventhistory: 'EventHistoryService',
  logs: 'LogsService',
};

// Helper entries: shared code a client or the daemon loads without the generated schemas.
const helpers = ['client', 'registry', 'oci', 'tar', 'mount', 'ttrpc'];

describe('package exports', () => {
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json');

  it('lists every subpath the contract promises', () => {
    expect(subpaths.map((s) => s.slice(2)).sort()).toEqual(
      [
        ...Object.keys(services),
        'types',
        'task-types',
        'event-types',
        'runc-options',
        'cgroups/v1',
        'cgroups/v2',
        ...helpers.filter((h) => subpaths.includes(`./${h}`)),
      ].sort(),
    );
  });

  for (const sub of subpaths) {
    const name = sub.slice(2);
    it(sub, async () => {
      const entry = pkg.exports[sub] as { types: string; default: string };
      expect(entry.default).toBe(`./dist/${name}.js`);
      expect(entry.types).toBe(`./dist/${name}.d.ts`);
      expect(existsSync(join(root, 'src', `${name}.ts`))).toBe(true);
      const mod = (await import(/* @vite-ignore */ join(root, 'src', `${name}.ts`))) as Record<
        string,
        { kind?: string; typeName?: string }
      >;
      if (helpers.includes(name)) {
        expect(Object.keys(mod).length).toBeGreaterThan(0);
        return;
      }
      const schemas = Object.keys(mod).filter((k) => k.endsWith('Schema') && mod[k]?.kind === 'message');
      expect(schemas.length).toBeGreaterThan(0);
      const svc = services[name];
      if (svc) expect(mod[svc]?.kind).toBe('service');
    });
  }
});
