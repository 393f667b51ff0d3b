import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import {
  createInMemoryClient,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isNotImplemented,
  OCI_SPEC_URL,
  packJson,
} from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { LogStream, LogsService } from '@ctrd/api-proto/logs';
import { TasksService } from '@ctrd/api-proto/tasks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, type PluginSet } from '../src/plugin.js';
import { tasksServicePlugin } from '../src/services/tasks.js';
import { FakeLauncher } from './runtime-fake-shim.js';

// ctrd.services.logs.v1.Logs on the real plugin set, through the in-memory transport, with
// in-memory shims (FakeLauncher) whose Logs/Read echo what reached them.

let root: string;
let launcher: FakeLauncher;
let plugins: PluginSet;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrd-logs-'));
  launcher = new FakeLauncher();
  const regs = builtinPlugins({ root }).map((r) =>
    r.id === 'tasks-service' ? tasksServicePlugin({ launcher, watchMs: 0 }) : r,
  );
  plugins = await initPlugins(regs, {
    config: { ...defaultConfig, root, stateDir: join(root, 'state') },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    rootDir: root,
    stateDir: join(root, 'state'),
  });
});
afterEach(async () => {
  await plugins.close();
  await rm(root, { recursive: true, force: true });
});

function client<T extends DescService>(s: T, namespace: string | undefined = 'default'): Client<T> {
  return createInMemoryClient(s, { services: plugins.services, namespace });
}

async function container(id: string, namespace = 'default') {
  const spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['sh'] } });
  await client(ContainersService, namespace).create({
    container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec },
  });
}

async function lines(namespace: string, req: Parameters<Client<typeof LogsService>['read']>[0]) {
  const out: string[] = [];
  for await (const res of client(LogsService, namespace).read(req))
    for (const e of res.entries) out.push(e.line);
  return out;
}

describe('Logs service', () => {
  it("relays the request to the task's shim in the call's namespace and streams its answers", async () => {
    await container('c1', 'ns1');
    await client(TasksService, 'ns1').create({ containerId: 'c1' });
    const req = {
      containerId: 'c1',
      tail: 5,
      since: { seconds: 10n, nanos: 0 },
      streams: [LogStream.STDERR],
    };
    expect(await lines('ns1', req)).toEqual(['ns1/c1\n']);
    expect(await lines('ns1', { containerId: 'c1', follow: true })).toEqual(['ns1/c1\n', 'followed\n']);
    const seen = launcher.logReads[0];
    expect(seen?.namespace).toBe('ns1');
    expect(seen?.request).toMatchObject({ containerId: 'c1', tail: 5, streams: [LogStream.STDERR] });
    expect(seen?.request.since?.seconds).toBe(10n);
  });

  it('says why there is nothing to read: no container, no task, no namespace, no id', async () => {
    await expect(lines('default', { containerId: 'nope' })).rejects.toSatisfy(
      (e: Error) => isNotFound(e) && /container "nope" in namespace "default": not found/.test(e.message),
    );
    await container('c2');
    await expect(lines('default', { containerId: 'c2' })).rejects.toSatisfy(
      (e: Error) =>
        isNotFound(e) &&
        /task of container "c2" in namespace "default" \(a task's output is kept until the task is deleted\): not found/.test(
          e.message,
        ),
    );
    await expect(lines('default', { containerId: '' })).rejects.toSatisfy(isInvalidArgument);
    const noNamespace = createInMemoryClient(LogsService, { services: plugins.services });
    await expect(
      (async () => {
        for await (const _ of noNamespace.read({ containerId: 'c2' })) void _;
      })(),
    ).rejects.toSatisfy(isFailedPrecondition);
  });

  it("answers NotImplemented, naming why, when the task's shim keeps no output", async () => {
    for (const [id, supports] of [
      ['old', false],
      ['other', undefined],
    ] as const) {
      launcher.supportsLogs = supports;
      await container(id);
      await client(TasksService).create({ containerId: id });
      await expect(lines('default', { containerId: id })).rejects.toSatisfy(
        (e: Error) =>
          isNotImplemented(e) &&
          e.message.includes(`task ${id}: its shim keeps no output (only ctrd-shim does)`),
      );
      await client(TasksService).kill({ containerId: id, signal: 9 });
      await client(TasksService).delete({ containerId: id });
    }
  });
});
