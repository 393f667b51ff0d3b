import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { Server } from '@ctrd/api-proto';
import {
  createServer,
  NotFound,
  namespaceFromContext,
  OCI_SPEC_URL,
  packAny,
  packJson,
  service,
  toTimestamp,
} from '@ctrd/api-proto';
import { MetricsSchema as CgroupsV1Metrics } from '@ctrd/api-proto/cgroups/v1';
import { MetricsSchema as CgroupsV2Metrics } from '@ctrd/api-proto/cgroups/v2';
import { ContainersService } from '@ctrd/api-proto/containers';
import { TaskExitSchema } from '@ctrd/api-proto/event-types';
import { EventsService } from '@ctrd/api-proto/events';
import { IntrospectionService } from '@ctrd/api-proto/introspection';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { Status } from '@ctrd/api-proto/task-types';
import { TasksService } from '@ctrd/api-proto/tasks';
import { VersionService } from '@ctrd/api-proto/version';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Run, runCommand } from './helpers/run.js';

// The stock containerd ctr (Debian's 1.6.20) driving a tiny server built from our descriptors:
// proof that names, paths, field numbers, headers and error codes match containerd's on the wire.
// The stock containerd daemon is never started.

const CTR = '/usr/bin/ctr';

let dir: string;
let server: Server;
const seen: { method: string; namespace: string }[] = [];
const subscribeFilters: string[][] = [];

function ctr(...args: string[]): Promise<Run> {
  return runCommand(CTR, ['--address', server.socketPath, ...args], { timeout: 30_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-proto-ctr-'));
  const labels: Record<string, Record<string, string>> = {
    default: { 'containerd.io/defaults/snapshotter': 'overlayfs' },
    'team-a': { owner: 'alice', tier: 'gold' },
  };
  server = await createServer({
    socketPath: join(dir, 'ctrd.sock'),
    services: [
      service(VersionService, { version: () => ({ version: 'test-1.2.3', revision: 'rev-abc' }) }),
      service(IntrospectionService, { server: () => ({ uuid: '8f6e2a1c-0000-4000-8000-000000000001' }) }),
      service(NamespacesService, {
        list: (_req, ctx) => {
          seen.push({ method: 'N.List', namespace: namespaceFromContext(ctx) });
          return { namespaces: Object.keys(labels).map((name) => ({ name, labels: labels[name] })) };
        },
        get: (req, ctx) => {
          seen.push({ method: 'N.Get', namespace: namespaceFromContext(ctx) });
          return { namespace: { name: req.name, labels: labels[req.name] ?? {} } };
        },
        update: (req) => {
          throw new NotFound(`namespace ${JSON.stringify(req.namespace?.name)}`);
        },
      }),
      service(EventsService, {
        async *subscribe(req, ctx) {
          subscribeFilters.push(req.filters);
          const at = toTimestamp(new Date('2024-01-02T03:04:05Z'));
          const exit = create(TaskExitSchema, {
            containerId: 'web',
            id: 'web',
            pid: 42,
            exitStatus: 137,
            exitedAt: at,
          });
          yield {
            timestamp: at,
            namespace: 'default',
            topic: '/tasks/exit',
            event: packAny(TaskExitSchema, exit),
          };
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
      }),
      // Enough of Tasks for `ctr t metrics`: v1 metrics for "web", v2 for "web2".
      service(TasksService, {
        get: (req) => ({
          process: { containerId: req.containerId, id: req.containerId, pid: 42, status: Status.RUNNING },
        }),
        metrics: (req) => {
          const id = req.filters[0]?.replace(/^id==/, '') ?? '';
          const data =
            id === 'web2'
              ? packAny(
                  CgroupsV2Metrics,
                  create(CgroupsV2Metrics, {
                    pids: { current: 3n, limit: 100n },
                    memory: { usage: 1048576n },
                  }),
                )
              : packAny(
                  CgroupsV1Metrics,
                  create(CgroupsV1Metrics, {
                    pids: { current: 3n, limit: 100n },
                    memory: { usage: { usage: 1048576n, limit: 2097152n } },
                  }),
                );
          return { metrics: [{ id, timestamp: toTimestamp(new Date('2024-01-02T03:04:05Z')), data }] };
        },
      }),
      // Only List (and Get): ctr's `c ls` tries ListStream first and must fall back on Unimplemented.
      service(ContainersService, {
        get: (req) => ({
          container: {
            id: req.id,
            runtime: { name: 'io.containerd.runc.v2' },
            spec: packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['sh'] } }),
          },
        }),
        list: (_req, ctx) => {
          seen.push({ method: 'C.List', namespace: namespaceFromContext(ctx) });
          return {
            containers: [
              {
                id: 'web',
                image: 'docker.io/library/busybox:latest',
                runtime: { name: 'io.containerd.runc.v2' },
                spec: packJson(OCI_SPEC_URL, { ociVersion: '1.0.2' }),
              },
            ],
          };
        },
      }),
    ],
  });
});

afterAll(async () => {
  await server?.close({ graceMs: 1000 });
  await rm(dir, { recursive: true, force: true });
});

describe('stock ctr against an @ctrd/api-proto server', () => {
  it('ctr version prints the server version and exits 0', async () => {
    const r = await ctr('version');
    expect(r.code).toBe(0);
    // ctr compares client and server versions and only warns on a mismatch
    expect(r.stderr).toBe('WARNING: version mismatch\nWARNING: revision mismatch\n');
    expect(r.stdout).toMatch(/Server:\s+Version:\s+test-1\.2\.3\s+Revision:\s+rev-abc/);
    expect(r.stdout).toMatch(/Client:\s+Version:\s+1\.6\.20/);
  });

  it('ctr namespaces ls lists what N.List returns, with labels from N.Get', async () => {
    seen.length = 0;
    const r = await ctr('namespaces', 'ls');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(lines[0]).toEqual(['NAME', 'LABELS']);
    expect(lines.slice(1).map((l) => l[0])).toEqual(['default', 'team-a']);
    expect(r.stdout).toMatch(/team-a\s+owner=alice,tier=gold/);
    expect(seen.map((s) => s.method)).toEqual(['N.List', 'N.Get', 'N.Get']);
    expect(new Set(seen.map((s) => s.namespace))).toEqual(new Set(['default']));
  });

  it('sends -n as the containerd-namespace header', async () => {
    seen.length = 0;
    expect((await ctr('-n', 'team-a', 'ns', 'ls', '-q')).stdout.trim().split('\n')).toEqual([
      'default',
      'team-a',
    ]);
    expect(seen[0]).toEqual({ method: 'N.List', namespace: 'team-a' });
  });

  it('ctr containers ls falls back from ListStream (Unimplemented) to List', async () => {
    seen.length = 0;
    const r = await ctr('containers', 'ls');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^CONTAINER\s+IMAGE\s+RUNTIME\s*\nweb\s+docker\.io\/library\/busybox:latest\s+io\.containerd\.runc\.v2/,
    );
    expect(seen.map((s) => s.method)).toEqual(['C.List']);
  });

  it('ctr events decodes an Any with a bare type URL (containerd.events.TaskExit)', async () => {
    const child = spawn(CTR, ['--address', server.socketPath, 'events', 'topic=="/tasks/exit"'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no event printed; stdout so far: ${out}`)), 60_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code) => reject(new Error(`ctr events exited early with ${code}`)));
      });
      expect(out.trim()).toBe(
        '2024-01-02 03:04:05 +0000 UTC default /tasks/exit ' +
          '{"container_id":"web","id":"web","pid":42,"exit_status":137,"exited_at":"2024-01-02T03:04:05Z"}',
      );
      expect(subscribeFilters.at(-1)).toEqual(['topic=="/tasks/exit"']);
    } finally {
      // ctr events runs until interrupted; stop the one we started.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    }
  });

  it('ctr containers info decodes the OCI spec carried as JSON in an Any', async () => {
    const r = await ctr('containers', 'info', 'web');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as {
      ID: string;
      Runtime: { Name: string };
      Spec: { ociVersion: string; process: { args: string[] } };
    };
    expect(info.ID).toBe('web');
    expect(info.Runtime.Name).toBe('io.containerd.runc.v2');
    // Go decodes into its Spec struct, so non-omitempty fields (user, cwd) appear as zero values.
    expect(info.Spec.ociVersion).toBe('1.0.2');
    expect(info.Spec.process.args).toEqual(['sh']);
  });

  it('ctr tasks metrics decodes cgroups v1 and v2 Metrics by their bare type URLs', async () => {
    const v1 = await ctr('tasks', 'metrics', 'web');
    expect(v1.code).toBe(0);
    expect(v1.stdout).toMatch(/^ID\s+TIMESTAMP\s*\nweb\s+2024-01-02 03:04:05 \+0000 UTC/);
    expect(v1.stdout).toMatch(/memory\.usage_in_bytes\s+1048576/);
    expect(v1.stdout).toMatch(/memory\.limit_in_bytes\s+2097152/);
    expect(v1.stdout).toMatch(/pids\.limit\s+100/);
    const v2 = await ctr('tasks', 'metrics', 'web2');
    expect(v2.code).toBe(0);
    expect(v2.stdout).toMatch(/memory\.usage\s+1048576/);
    expect(v2.stdout).toMatch(/pids\.current\s+3/);
  });

  it('error classes reach ctr as gRPC codes with containerd-style messages', async () => {
    const r = await ctr('namespaces', 'label', 'ghost', 'a=b');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('ctr: namespace "ghost": not found');
  });
});
