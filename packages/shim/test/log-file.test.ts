import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogFile } from '../src/log-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function records(path: string): Promise<Array<{ time: string; stream: string; log: string }>> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

describe('log file', () => {
  it('writes one JSON record per line, per stream, joining split chunks', async () => {
    const path = join(dir, 'container.log');
    const log = new LogFile(path, { now: () => new Date('2026-01-01T00:00:00Z') });
    log.write('stdout', Buffer.from('hel'));
    log.write('stderr', Buffer.from('oops\n'));
    log.write('stdout', Buffer.from('lo\nwor'));
    log.write('stdout', Buffer.from('ld'));
    log.close();
    expect(await records(path)).toEqual([
      { time: '2026-01-01T00:00:00.000Z', stream: 'stderr', log: 'oops\n' },
      { time: '2026-01-01T00:00:00.000Z', stream: 'stdout', log: 'hello\n' },
      { time: '2026-01-01T00:00:00.000Z', stream: 'stdout', log: 'world' },
    ]);
  });

  it('keeps a UTF-8 character split across chunks whole', async () => {
    const path = join(dir, 'container.log');
    const log = new LogFile(path);
    const bytes = Buffer.from('héllo\n');
    log.write('stdout', bytes.subarray(0, 2));
    log.write('stdout', bytes.subarray(2));
    log.close();
    expect((await records(path))[0]?.log).toBe('héllo\n');
  });

  it('rotates at the size bound, keeping one backup, so the total stays bounded', async () => {
    const path = join(dir, 'container.log');
    const log = new LogFile(path, { maxBytes: 4096 });
    for (let i = 0; i < 1000; i++) log.write('stdout', `line ${i} ${'x'.repeat(40)}\n`);
    log.close();
    const cur = await stat(path);
    const old = await stat(`${path}.1`);
    expect(cur.size).toBeLessThanOrEqual(4096);
    expect(old.size).toBeLessThanOrEqual(4096);
    const last = await records(path);
    expect(last.at(-1)?.log).toBe(`line 999 ${'x'.repeat(40)}\n`);
    const prev = await records(`${path}.1`);
    const firstCur = Number(last[0]?.log.split(' ')[1]);
    expect(Number(prev.at(-1)?.log.split(' ')[1])).toBe(firstCur - 1);
  });

  it('splits a line longer than the bound instead of buffering it', async () => {
    const path = join(dir, 'container.log');
    const log = new LogFile(path);
    log.write('stdout', 'y'.repeat(40_000));
    const before = await records(path);
    expect(before.length).toBe(2);
    log.close();
    const all = await records(path);
    expect(all.map((r) => r.log).join('')).toBe('y'.repeat(40_000));
  });
});
