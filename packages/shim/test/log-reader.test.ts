import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isResourceExhausted } from '@ctrd/api-proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogFile, type LogRecord } from '../src/log-file.js';
import { BATCH_RECORDS, MAX_PENDING_BYTES, readLog } from '../src/log-reader.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-log-reader-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A log whose clock the test sets. */
function clockedLog(opts: { maxBytes?: number } = {}) {
  let now = new Date('2026-01-01T00:00:00Z');
  const log = new LogFile(join(dir, 'container.log'), { ...opts, now: () => now });
  return {
    log,
    at(iso: string) {
      now = new Date(iso);
    },
  };
}

async function all(gen: AsyncGenerator<LogRecord[]>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const batch of gen) out.push(...batch);
  return out;
}

const lines = (records: LogRecord[]) => records.map((r) => `${r.stream}:${r.log}`);

describe('reading a task log', () => {
  it('gives what is kept, across a rotation, filtered by stream and time, then tailed', async () => {
    const { log, at } = clockedLog({ maxBytes: 200 });
    for (let i = 0; i < 6; i++) {
      at(`2026-01-01T00:00:0${i}Z`);
      log.write(i % 2 === 0 ? 'stdout' : 'stderr', `line ${i}\n`);
    }
    // 6 records of ~70 bytes in a 200-byte file: rotated, so the oldest are gone with the old backup.
    const kept = await all(readLog(log));
    expect(kept.length).toBeGreaterThan(2);
    expect(lines(kept).at(-1)).toBe('stderr:line 5\n');
    expect(kept.map((r) => r.time)).toEqual([...kept.map((r) => r.time)].sort());

    expect(lines(await all(readLog(log, { streams: new Set(['stdout']) })))).toEqual(
      lines(kept).filter((l) => l.startsWith('stdout:')),
    );
    expect(lines(await all(readLog(log, { since: new Date('2026-01-01T00:00:04Z') })))).toEqual([
      'stdout:line 4\n',
      'stderr:line 5\n',
    ]);
    expect(lines(await all(readLog(log, { tail: 1, streams: new Set(['stdout']) })))).toEqual([
      'stdout:line 4\n',
    ]);
    expect(await all(readLog(log, { tail: 0 }))).toEqual([]);
    log.close();
  });

  it('answers in batches', async () => {
    const { log } = clockedLog();
    for (let i = 0; i < BATCH_RECORDS + 5; i++) log.write('stdout', `${i}\n`);
    const sizes: number[] = [];
    for await (const batch of readLog(log)) sizes.push(batch.length);
    expect(sizes).toEqual([BATCH_RECORDS, 5]);
    log.close();
  });

  it('follows new output, each line once, until the task has ended', async () => {
    const { log } = clockedLog();
    log.write('stdout', 'before\n');
    let end!: () => void;
    const ended = new Promise<void>((r) => {
      end = r;
    });
    const got: string[] = [];
    const reading = (async () => {
      for await (const batch of readLog(log, { follow: true, ended })) got.push(...lines(batch));
    })();
    // Written while the reader is still reading what was there: delivered after it, not twice.
    log.write('stderr', 'during\n');
    await new Promise((r) => setTimeout(r, 20));
    log.write('stdout', 'after\n');
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['stdout:before\n', 'stderr:during\n', 'stdout:after\n']);
    log.write('stdout', 'last\n');
    end();
    await reading;
    expect(got.at(-1)).toBe('stdout:last\n');
    log.close();
  });

  it('stops following when the task is deleted (the log closed) or the reader goes', async () => {
    const { log } = clockedLog();
    const never = new Promise<void>(() => {});
    const closedRead = all(readLog(log, { follow: true, ended: never }));
    const abort = new AbortController();
    const other = new LogFile(join(dir, 'other.log'));
    const abortedRead = all(readLog(other, { follow: true, ended: never, signal: abort.signal }));
    log.write('stdout', 'x\n');
    await new Promise((r) => setTimeout(r, 10));
    log.close();
    expect(lines(await closedRead)).toEqual(['stdout:x\n']);
    abort.abort();
    expect(await abortedRead).toEqual([]);
    other.close();
  });

  it('cuts off a follower that falls too far behind', async () => {
    const { log } = clockedLog({ maxBytes: 64 * 1024 * 1024 });
    log.write('stdout', 'first\n');
    const gen = readLog(log, { follow: true, ended: new Promise(() => {}) });
    expect((await gen.next()).value).toHaveLength(1); // then the reader stops reading
    const chunk = `${'y'.repeat(16 * 1024 - 1)}\n`;
    for (let i = 0; i * chunk.length <= MAX_PENDING_BYTES + chunk.length; i++) log.write('stdout', chunk);
    await expect(all(gen)).rejects.toSatisfy(isResourceExhausted);
    log.close();
  });
});
