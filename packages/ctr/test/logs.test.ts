import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnectRouter } from '@connectrpc/connect';
import { Status } from '@ctrd/api-proto/task-types';
import { TasksService } from '@ctrd/api-proto/tasks';
import { FakeDaemon } from './fake-daemon.js';
import { Capture, runCtr } from './helpers.js';

const state = mkdtempSync(join(tmpdir(), 'ctr-logs-'));
afterAll(() => rmSync(state, { recursive: true, force: true }));

const line = (time: string, stream: string, log: string) => `${JSON.stringify({ time, stream, log })}\n`;

describe('ctr logs', () => {
  const bundle = join(state, 'bundles', 'default', 'web');
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, 'container.log.1'), line('2026-11-23T07:00:00.000Z', 'stdout', 'old\n'));
  writeFileSync(
    join(bundle, 'container.log'),
    line('2026-11-23T08:00:00.000Z', 'stdout', 'one\n') +
      line('2026-11-23T08:00:01.000Z', 'stderr', 'two\n') +
      line('2026-11-23T08:00:02.000Z', 'stdout', 'three\n') +
      '{"time":"2026-11-23T08:00:03.000Z","stream":"stdout","log":"partial',
  );
  const env = { CTRD_STATE_DIR: state };
  const d = new FakeDaemon();
  d.addContainer('default', { id: 'web' });
  d.addContainer('default', { id: 'quiet' });

  it('prints stdout lines to stdout and stderr lines to stderr, rotated file first', async () => {
    const res = await runCtr(['logs', 'web'], { routes: d.routes, env });
    expect(res).toEqual({ code: 0, stdout: 'old\none\nthree\n', stderr: 'two\n' });
  });

  it('--tail, --since, --timestamps and --json', async () => {
    expect((await runCtr(['logs', '--tail', '1', 'web'], { routes: d.routes, env })).stdout).toBe('three\n');
    const since = await runCtr(['logs', '--since', '2026-11-23T08:00:01Z', '-n', 'default', 'web'], {
      routes: d.routes,
      env,
    });
    expect(since).toEqual({ code: 0, stdout: 'three\n', stderr: 'two\n' });
    const ts = await runCtr(['logs', '--timestamps', '--tail', '1', 'web'], { routes: d.routes, env });
    expect(ts.stdout).toBe('2026-11-23T08:00:02.000Z three\n');
    const json = await runCtr(['logs', '--json', '--tail', '2', 'web'], { routes: d.routes, env });
    expect(
      json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { time: '2026-11-23T08:00:01.000Z', stream: 'stderr', log: 'two\n' },
      { time: '2026-11-23T08:00:02.000Z', stream: 'stdout', log: 'three\n' },
    ]);
  });

  it('tells "no log yet" from "no such container"', async () => {
    const quiet = await runCtr(['logs', 'quiet'], { routes: d.routes, env });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toContain('ctr: container "quiet" has no log yet at');
    const ghost = await runCtr(['logs', 'ghost'], { routes: d.routes, env });
    expect(ghost).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "ghost" in namespace "default": not found\n',
    });
  });
});

describe('ids that would escape the state dir', () => {
  it('are refused before any file is read', async () => {
    const res = await runCtr(['logs', '../../etc'], {
      routes: new FakeDaemon().routes,
      env: { CTRD_STATE_DIR: state },
    });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^ctr: container "\.\.\/\.\.\/etc": identifier must be letters and digits/);
  });
});

describe('ctr logs -f', () => {
  it('prints lines as they are appended, across a rotation, and stops once there is no live task', async () => {
    const bundle = join(state, 'bundles', 'default', 'follow');
    mkdirSync(bundle, { recursive: true });
    const file = join(bundle, 'container.log');
    writeFileSync(file, line('2026-11-23T08:00:00.000Z', 'stdout', 'first\n'));
    const d = new FakeDaemon();
    d.addContainer('default', { id: 'follow' });
    // The task runs until the test has written everything, then stops.
    let live = true;
    const routes = (router: ConnectRouter) => {
      d.routes(router);
      router.service(TasksService, {
        get: () => ({ process: { id: 'follow', status: live ? Status.RUNNING : Status.STOPPED } }),
      });
    };
    const stdout = new Capture();
    const stderr = new Capture();
    const running = runCtr(['logs', '-f', 'follow'], {
      routes,
      env: { CTRD_STATE_DIR: state },
      stdout,
      stderr,
    });
    await expect.poll(() => stdout.text).toBe('first\n');
    appendFileSync(file, line('2026-11-23T08:00:01.000Z', 'stdout', 'second\n'));
    await expect.poll(() => stdout.text).toBe('first\nsecond\n');
    // The shim rotates right after a write: the file becomes container.log.1 and a new one starts.
    appendFileSync(file, line('2026-11-23T08:00:01.500Z', 'stdout', 'last of the old file\n'));
    renameSync(file, `${file}.1`);
    writeFileSync(file, line('2026-11-23T08:00:02.000Z', 'stderr', 'third\n'));
    await expect.poll(() => stderr.text).toBe('third\n');
    live = false;
    const res = await running;
    expect(res).toEqual({ code: 0, stdout: 'first\nsecond\nlast of the old file\n', stderr: 'third\n' });
  });
});
