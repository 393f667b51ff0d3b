import { create } from '@bufbuild/protobuf';
import { Code, type ConnectRouter, ConnectError } from '@connectrpc/connect';
import { fromTimestamp, toTimestamp } from '@ctrd/api-proto/client';
import {
  type LogEntry,
  LogEntrySchema,
  LogStream,
  LogsService,
  type ReadRequest,
  ReadResponseSchema,
} from '@ctrd/api-proto/logs';
import { describe, expect, it } from 'vitest';
import { runCtr } from './helpers.js';

// ctr logs reads ctrd.services.logs.v1.Logs and nothing else: no file of the daemon's host.

const entry = (time: string, stream: 'stdout' | 'stderr', line: string): LogEntry =>
  create(LogEntrySchema, {
    time: toTimestamp(new Date(time)),
    stream: stream === 'stdout' ? LogStream.STDOUT : LogStream.STDERR,
    line,
  });

/** A Logs service over fixed entries, applying since, tail and streams as the shim does. */
class FakeLogs {
  requests: { namespace: string; req: ReadRequest }[] = [];
  entries: LogEntry[] = [
    entry('2026-11-23T08:00:00.000Z', 'stdout', 'one\n'),
    entry('2026-11-23T08:00:01.000Z', 'stderr', 'two\n'),
    entry('2026-11-23T08:00:02.000Z', 'stdout', 'three\n'),
  ];
  /** Sent after the kept entries when follow is set; then the stream ends (the task exited). */
  followed: LogEntry[][] = [];
  error: ConnectError | undefined;

  routes = (router: ConnectRouter): void => {
    const self = this;
    router.service(LogsService, {
      async *read(req, ctx) {
        self.requests.push({ namespace: ctx.requestHeader.get('containerd-namespace') ?? '', req });
        if (self.error) throw self.error;
        const since = fromTimestamp(req.since)?.getTime();
        let kept = self.entries.filter(
          (e) =>
            (req.streams.length === 0 || req.streams.includes(e.stream)) &&
            (since === undefined || (fromTimestamp(e.time)?.getTime() ?? 0) >= since),
        );
        if (req.tail !== undefined) kept = req.tail === 0 ? [] : kept.slice(-req.tail);
        yield create(ReadResponseSchema, { entries: kept });
        if (req.follow) {
          for (const batch of self.followed) {
            await new Promise((r) => setTimeout(r, 5));
            yield create(ReadResponseSchema, { entries: batch });
          }
        }
      },
    });
  };
}

describe('ctr logs', () => {
  it('prints stdout lines to stdout and stderr lines to stderr, from the daemon', async () => {
    const logs = new FakeLogs();
    const res = await runCtr(['logs', 'web'], { routes: logs.routes, env: { CTRD_NAMESPACE: 'k8s.io' } });
    expect(res).toEqual({ code: 0, stdout: 'one\nthree\n', stderr: 'two\n' });
    expect(logs.requests[0]?.req.tail).toBeUndefined();
    expect(logs.requests).toEqual([
      {
        namespace: 'k8s.io',
        req: expect.objectContaining({ containerId: 'web', follow: false, streams: [] }),
      },
    ]);
  });

  it('--tail, --since, --stream, --timestamps and --json', async () => {
    const logs = new FakeLogs();
    const run = (...args: string[]) => runCtr(['logs', ...args, 'web'], { routes: logs.routes });
    expect((await run('--tail', '1')).stdout).toBe('three\n');
    expect(await run('--since', '2026-11-23T08:00:01Z')).toEqual({
      code: 0,
      stdout: 'three\n',
      stderr: 'two\n',
    });
    expect(fromTimestamp(logs.requests[1]?.req.since)?.toISOString()).toBe('2026-11-23T08:00:01.000Z');
    expect(await run('--stream', 'stderr')).toEqual({ code: 0, stdout: '', stderr: 'two\n' });
    expect(logs.requests[2]?.req.streams).toEqual([LogStream.STDERR]);
    expect((await run('--timestamps', '--tail', '1')).stdout).toBe('2026-11-23T08:00:02.000Z three\n');
    const json = await run('--json', '--tail', '2');
    expect(
      json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { time: '2026-11-23T08:00:01.000Z', stream: 'stderr', log: 'two\n' },
      { time: '2026-11-23T08:00:02.000Z', stream: 'stdout', log: 'three\n' },
    ]);
    const bad = await run('--stream', 'both');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--stream');
  });

  it('-f prints what follows until the stream ends (the task exited)', async () => {
    const logs = new FakeLogs();
    logs.followed = [
      [entry('2026-11-23T08:00:03.000Z', 'stdout', 'four\n')],
      [entry('2026-11-23T08:00:04.000Z', 'stderr', 'five\n')],
    ];
    const res = await runCtr(['logs', '-f', '--tail', '1', 'web'], { routes: logs.routes });
    expect(res).toEqual({ code: 0, stdout: 'three\nfour\n', stderr: 'five\n' });
    expect(logs.requests[0]?.req.follow).toBe(true);
  });

  it("passes the daemon's reasons on, with exit 1", async () => {
    const logs = new FakeLogs();
    logs.error = new ConnectError(
      // As ctrd's server sends it: containerd's class suffix, which the client strips.
      'task of container "quiet" in namespace "default" (a task\'s output is kept until the task is deleted): not found',
      Code.NotFound,
    );
    expect(await runCtr(['logs', 'quiet'], { routes: logs.routes })).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'ctr: task of container "quiet" in namespace "default" (a task\'s output is kept until the task is deleted): not found\n',
    });
  });

  it('says so when the daemon keeps no output (a stock containerd)', async () => {
    const logs = new FakeLogs();
    logs.error = new ConnectError('unknown service ctrd.services.logs.v1.Logs', Code.Unimplemented);
    const res = await runCtr(['logs', '-a', '/x/containerd.sock', 'web'], { routes: logs.routes });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      'ctr: the daemon at /x/containerd.sock keeps no container output (it serves no ctrd.services.logs.v1.Logs): ' +
        'a stock containerd keeps none; read the output when the task runs (ctr run, ctr tasks start)\n',
    );
  });

  it('refuses an id that is no identifier before any call, and ignores --state-dir with a note', async () => {
    const logs = new FakeLogs();
    const bad = await runCtr(['logs', '../../etc'], { routes: logs.routes });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ctr: container "\.\.\/\.\.\/etc": identifier must be letters and digits/);
    expect(logs.requests).toEqual([]);
    const old = await runCtr(['logs', '--state-dir', '/run/ctrd', '--tail', '1', 'web'], {
      routes: logs.routes,
    });
    expect(old).toEqual({
      code: 0,
      stdout: 'three\n',
      stderr: 'ctr: --state-dir is ignored: the output comes from the daemon now\n',
    });
  });
});
