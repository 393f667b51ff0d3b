import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, unpackAny } from '@ctrd/api-proto';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { CTR, ctrOk, ctrRun, parseTaskList, sweep } from './tasks-support.js';

// The two task checks a person makes by hand: an interactive `ctr run -t` in a real terminal
// (tmux), and an out-of-memory kill reported as /tasks/oom. Stock ctr 1.6 against the real
// ctrd, ctrd-shim and runc.

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;
const ns = `tt${randomBytes(4).toString('hex')}`;
// A private tmux server whose socket lives in the test's temp dir, so the test never touches
// anyone else's sessions and leaves nothing behind.
const tmux = (...args: string[]) => run('tmux', ['-S', join(dir, 'tmux.sock'), ...args]);

async function screen(): Promise<string> {
  return (await tmux('capture-pane', '-t', 'tty', '-p')).stdout;
}

async function waitForScreen(re: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await screen().catch(() => last);
    if (re.test(last)) return last;
    await sleep(100);
  }
  throw new Error(`terminal never showed ${re}; it shows:\n${last}`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-tt-'));
  rootfs = join(dir, 'rootfs');
  await buildBusyboxRootfs(rootfs);
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd'), args: ['--oom-notify'] });
});

afterAll(async () => {
  await tmux('kill-server').catch(() => {});
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [ns]);
  await rm(dir, { recursive: true, force: true });
});

describe('ctr run -t under tmux', () => {
  it('gives a shell prompt, runs a typed command, and sees a resize', async () => {
    const cmd = [
      CTR,
      '--address',
      d.socket,
      '-n',
      ns,
      'run',
      '-t',
      '--rm',
      '--fifo-dir',
      fifos,
      '--rootfs',
      rootfs,
      'tty1',
      '/bin/sh',
    ].join(' ');
    await tmux('new-session', '-d', '-s', 'tty', '-x', '120', '-y', '40', cmd);
    // If ctr fails, its last words stay on the screen for the failure message.
    await tmux('set-option', '-t', 'tty', 'remain-on-exit', 'on');
    // capture-pane trims trailing blanks, so the prompt reads "/ #".
    await waitForScreen(/^\/ #/m);

    await tmux('send-keys', '-t', 'tty', 'echo typed-$((6*7))', 'Enter');
    await waitForScreen(/^typed-42$/m);

    await tmux('send-keys', '-t', 'tty', 'stty size', 'Enter');
    await waitForScreen(/^40 120$/m);

    await tmux('resize-window', '-t', 'tty', '-x', '100', '-y', '30');
    // The new size reaches the container's pty through ctr (SIGWINCH), the daemon and the shim: ask
    // again until the shell sees it.
    const resized = Date.now() + 60_000;
    let last = '';
    for (;;) {
      await tmux('send-keys', '-t', 'tty', 'stty size', 'Enter');
      await sleep(300);
      last = await screen().catch(() => last);
      if (/^30 100$/m.test(last)) break;
      if (Date.now() > resized) throw new Error(`the shell never saw 30 100; it shows:\n${last}`);
    }

    await tmux('send-keys', '-t', 'tty', 'exit', 'Enter');
    // --rm: once the shell exits, ctr deletes the task and the container.
    const deadline = Date.now() + 60_000;
    let containers = '';
    while (Date.now() < deadline) {
      containers = await ctrOk(d, ['-n', ns, 'c', 'ls', '-q']);
      if (!containers.includes('tty1')) break;
      await sleep(200);
    }
    expect(containers).not.toContain('tty1');
  });
});

describe('out of memory', () => {
  it('a container that allocates past its memory limit is killed and /tasks/oom arrives first', async () => {
    // No swap here, so 16 MiB is a hard wall; the shell tries to hold 64 MiB in a variable.
    const r = await ctrRun(d, [
      '-n',
      ns,
      'run',
      '--rm',
      '--fifo-dir',
      fifos,
      '--memory-limit',
      String(16 * 1024 * 1024),
      '--rootfs',
      rootfs,
      'oom1',
      '/bin/sh',
      '-c',
      'x=$(head -c 67108864 /dev/zero | tr "\\000" a); echo survived ${#x}',
    ]);
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);

    const history = createClient(EventHistoryService, { address: d.address, namespace: ns });
    const topics: string[] = [];
    for await (const env of history.replay({ filters: [`namespace==${ns},event.container_id==oom1`] })) {
      topics.push(env.topic);
      if (env.topic === '/tasks/exit' && env.event) {
        const exit = unpackAny(env.event) as { exitStatus?: number };
        expect(exit.exitStatus).toBe(137);
      }
    }
    expect(topics).toContain('/tasks/oom');
    expect(topics.indexOf('/tasks/oom')).toBeLessThan(topics.indexOf('/tasks/exit'));
    expect(parseTaskList(await ctrOk(d, ['-n', ns, 't', 'ls'])).map((t) => t.id)).not.toContain('oom1');
  });
});
