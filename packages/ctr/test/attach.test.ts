import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createRouterTransport } from '@connectrpc/connect';
import { TasksService } from '@ctrd/api-proto/tasks';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessSession } from '../src/attach.js';
import { Clients } from '../src/clients.js';
import { FakeTasks } from './fake-tasks.js';
import { Capture } from './helpers.js';

const fifoDir = mkdtempSync(join(tmpdir(), 'ctr-attach-'));
afterAll(() => rmSync(fifoDir, { recursive: true, force: true }));

describe('ProcessSession', () => {
  it('forwards the signals ctr receives to the process and returns its status', async () => {
    const t = new FakeTasks();
    t.program = async (io) => {
      const signal = await io.killed;
      io.stdout?.write(`got ${signal}\n`);
      return 128 + signal;
    };
    const clients = new Clients({
      address: 'unused',
      namespace: 'default',
      transport: createRouterTransport(t.routes),
    });
    const stdout = new Capture();
    const session = new ProcessSession(
      clients,
      { stdout, stderr: new Capture(), stdin: Readable.from([]), env: {} },
      { containerId: 'web', execId: '', terminal: false, detach: false, fifoDir, handleSignals: true },
    );
    await session.create(async (stdio) => {
      await clients.get(TasksService).create({ containerId: 'web', ...stdio });
    });
    const before = process.listenerCount('SIGUSR2');
    const status = session.run();
    // Handlers go in once the process has started.
    while (process.listenerCount('SIGUSR2') === before)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(t.calls).toContain('Tasks.start default');
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(await status).toBe(128 + 12);
    expect(stdout.text).toBe('got 12\n');
    expect(t.calls).toContain('Tasks.kill 12 default');
    // Handlers and fifos are gone once the process has exited.
    expect(process.listenerCount('SIGUSR2')).toBe(before);
    expect(readdirSync(fifoDir)).toEqual([]);
  });
});
