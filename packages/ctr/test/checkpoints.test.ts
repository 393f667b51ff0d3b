import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectRouter } from '@connectrpc/connect';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeDaemon } from './fake-daemon.js';
import { FakeTasks } from './fake-tasks.js';
import { runCtr } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-checkpoints-'));
mkdirSync(join(dir, 'rootfs'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ctr checkpoints', () => {
  it('create checkpoints with containerd 0.x’s options; the list shows NAME TCP UNIX SOCKETS SHELL', async () => {
    const d = new FakeDaemon();
    const t = new FakeTasks();
    t.program = (io) => io.killed.then(() => 0);
    const routes = (router: ConnectRouter) => {
      d.routes(router);
      t.routes(router);
    };
    expect(
      (await runCtr(['run', '-d', '--rootfs', join(dir, 'rootfs'), 'redis', 'redis-server'], { routes }))
        .code,
    ).toBe(0);
    const created = await runCtr(['checkpoints', 'create', '--tcp', '--shell', 'redis', 'test'], { routes });
    expect(created).toEqual({ code: 0, stdout: 'test\n', stderr: '' });
    expect(t.checkpoints[0]?.options).toMatchObject({
      openTcp: true,
      terminal: true,
      exit: false,
      externalUnixSockets: false,
    });
    const image = d.images.get('default')?.get('containerd.io/checkpoint/redis:test');
    expect(image?.labels['containerd.io/checkpoint']).toBe('true');
    expect(image?.target?.mediaType).toBe('application/vnd.containerd.container.criu.checkpoint.criu.tar');

    const list = await runCtr(['checkpoints', 'redis'], { routes });
    expect(list).toEqual({
      code: 0,
      stdout: 'NAME    TCP     UNIX SOCKETS    SHELL\ntest    true    false           true\n',
      stderr: '',
    });
    expect(d.calls).toContain('Images.list labels."containerd.io/checkpoint"==true default');
    expect(JSON.parse((await runCtr(['checkpoint', 'redis', '--json'], { routes })).stdout)).toEqual([
      {
        name: 'test',
        image: 'containerd.io/checkpoint/redis:test',
        tcp: true,
        unixSockets: false,
        shell: true,
      },
    ]);
  });

  it('passes on the runtime’s failure (CRIU) as ctr: <message>', async () => {
    const d = new FakeDaemon();
    const t = new FakeTasks();
    t.program = (io) => io.killed.then(() => 0);
    t.checkpointError = 'runc checkpoint: criu failed: type NOTIFY errno 0';
    const routes = (router: ConnectRouter) => {
      d.routes(router);
      t.routes(router);
    };
    await runCtr(['run', '-d', '--rootfs', join(dir, 'rootfs'), 'web', 'sleep', '9'], { routes });
    const res = await runCtr(['checkpoints', 'create', 'web', 'cp1'], { routes });
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: runc checkpoint: criu failed: type NOTIFY errno 0: unknown\n',
    });
    expect(d.images.size).toBe(0);
  });
});

describe('ctr tasks checkpoint', () => {
  it('names the checkpoint after the time when no name is given', async () => {
    const d = new FakeDaemon();
    const t = new FakeTasks();
    t.program = (io) => io.killed.then(() => 0);
    const routes = (router: ConnectRouter) => {
      d.routes(router);
      t.routes(router);
    };
    await runCtr(['run', '-d', '--rootfs', join(dir, 'rootfs'), 'db', 'sleep', '9'], { routes });
    const res = await runCtr(['t', 'checkpoint', '--exit', 'db'], { routes });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^\d{8}T\d{6}Z\n$/);
    expect(t.checkpoints[0]?.options).toMatchObject({ exit: true });
    expect([...(d.images.get('default')?.keys() ?? [])]).toEqual([
      `containerd.io/checkpoint/db:${res.stdout.trim()}`,
    ]);
  });
});
