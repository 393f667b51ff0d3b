import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogFile } from '../src/log-file.js';
import { ProcessIO } from '../src/process-io.js';
import { copyOutput, openOutput, openStdin, StdioError } from '../src/stdio.js';
import { dupCloexec, pipe } from '../src/sys.js';

const run = promisify(execFile);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-stdio-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fifo(name: string): Promise<string> {
  const p = join(dir, name);
  await run('mkfifo', [p]);
  return p;
}

describe('stdio', () => {
  it('opens an output fifo without a reader, and a late reader gets everything and EOF', async () => {
    const path = await fifo('out');
    const sink = openOutput(path, 'stdout');
    expect(sink).toBeDefined();
    const source = new PassThrough();
    const log = new LogFile(join(dir, 'container.log'));
    const done = copyOutput(source, 'stdout', sink, log);
    source.write('one\n');
    const reader = createReadStream(path);
    // A fifo's data is lost if its last fd closes before the reader has opened it.
    await new Promise<void>((r) => reader.once('open', () => r()));
    const chunks: Buffer[] = [];
    reader.on('data', (c) => chunks.push(c as Buffer));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    source.end('two\n');
    await done;
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('one\ntwo\n');
    log.close();
    const lines = readFileSync(join(dir, 'container.log'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).log)).toEqual(['one\n', 'two\n']);
  });

  it('appends to a file:// URI', async () => {
    const target = join(dir, 'out.txt');
    const sink = openOutput(`file://${target}`, 'stdout');
    const source = new PassThrough();
    const done = copyOutput(source, 'stdout', sink, undefined);
    source.end('to a file\n');
    await done;
    expect(await readFile(target, 'utf8')).toBe('to a file\n');
  });

  it('refuses a missing fifo, a regular file and an unknown scheme clearly', async () => {
    expect(() => openOutput(join(dir, 'nope'), 'stdout')).toThrow(StdioError);
    expect(() => openOutput(join(dir, 'nope'), 'stdout')).toThrow(/does not exist: create it with mkfifo/);
    await run('touch', [join(dir, 'plain')]);
    expect(() => openOutput(join(dir, 'plain'), 'stderr')).toThrow(/not a fifo/);
    expect(() => openOutput('http://x/y', 'stdout')).toThrow(/unsupported scheme/);
    expect(openOutput('', 'stdout')).toBeUndefined();
  });

  it('stdin: data flows, and EOF reaches the process only after CloseIO and the writer closing', async () => {
    const path = await fifo('in');
    const io = new ProcessIO({ stdin: path, stdout: '', stderr: '', terminal: false }, undefined);
    await io.open('ns', 'id');
    const fds = io.runtimeStdio();
    expect(fds.stdin).toBeGreaterThan(2);
    // Stand in for the process: it holds its own copy of its stdin end, as runc's child would.
    const procIn = new Socket({ fd: dupCloexec(fds.stdin as number), readable: true, writable: false });
    io.started();
    const got: Buffer[] = [];
    procIn.on('data', (c) => got.push(c as Buffer));
    let eof = false;
    procIn.on('end', () => {
      eof = true;
    });
    const w = createWriteStream(path);
    await new Promise<void>((r) => w.write('typed\n', () => r()));
    w.end();
    await expect.poll(() => Buffer.concat(got).toString()).toBe('typed\n');
    // The writer has closed; EOF must still wait for CloseIO.
    await new Promise((r) => setTimeout(r, 100));
    expect(eof).toBe(false);
    io.closeStdin();
    await expect.poll(() => eof).toBe(true);
    io.close();
  });

  it('real pipes carry a process output to its fifo and log', async () => {
    const out = await fifo('out2');
    const log = new LogFile(join(dir, 'c.log'));
    const io = new ProcessIO({ stdin: '', stdout: out, stderr: '', terminal: false }, log);
    await io.open('ns', 'id');
    const { stdout, stderr } = io.runtimeStdio();
    const reader = createReadStream(out);
    // A fifo's data is lost if its last fd closes before the reader has opened it.
    await new Promise<void>((r) => reader.once('open', () => r()));
    const chunks: Buffer[] = [];
    reader.on('data', (c) => chunks.push(c as Buffer));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    // The process's copies of its ends, as runc's child would hold them.
    const w1 = new Socket({ fd: dupCloexec(stdout as number), readable: false, writable: true });
    const w2 = new Socket({ fd: dupCloexec(stderr as number), readable: false, writable: true });
    io.started();
    w1.end('to-out\n');
    w2.end('to-err\n');
    await io.drained();
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('to-out\n');
    log.close();
    const recs = readFileSync(join(dir, 'c.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.map((r) => `${r.stream}:${r.log}`).sort()).toEqual(['stderr:to-err\n', 'stdout:to-out\n']);
    io.close();
  });

  it('pipe() gives a working close-on-exec pair', () => {
    const [r, w] = pipe();
    expect(r).toBeGreaterThan(2);
    expect(w).toBeGreaterThan(2);
    const flags = readFileSync(`/proc/self/fdinfo/${r}`, 'utf8');
    expect(/flags:\s+0?2/.test(flags)).toBe(true);
  });

  it('binary:// hands both streams to a logger binary once it says ready', async () => {
    const logger = join(dir, 'logger.sh');
    await writeFile(
      logger,
      '#!/bin/sh\nexec 5>&-\ncat <&3 > "$2/out.$CONTAINER_NAMESPACE.$CONTAINER_ID" &\ncat <&4 > "$2/err"\nwait\n',
      { mode: 0o755 },
    );
    const log = new LogFile(join(dir, 'c.log'));
    const uri = `binary://${logger}?dir=${encodeURIComponent(dir)}`;
    const io = new ProcessIO({ stdin: '', stdout: uri, stderr: uri, terminal: false }, log);
    await io.open('ns1', 'web');
    const { stdout, stderr } = io.runtimeStdio();
    const w1 = new Socket({ fd: dupCloexec(stdout as number), readable: false, writable: true });
    const w2 = new Socket({ fd: dupCloexec(stderr as number), readable: false, writable: true });
    io.started();
    w1.end('logged out\n');
    w2.end('logged err\n');
    await io.drained();
    // The logger's cats write on their own time.
    const written = (name: string) => readFile(join(dir, name), 'utf8').catch(() => '');
    await expect.poll(() => written('out.ns1.web')).toBe('logged out\n');
    await expect.poll(() => written('err')).toBe('logged err\n');
    io.close();
    log.close();
  });

  it('openStdin of "" is none', () => {
    expect(openStdin('')).toBeUndefined();
  });
});
