import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exitFilePath, readExitFile, writeExitFile } from '../src/exit-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-exit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exit file', () => {
  it('round-trips pid, status and time', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    await writeExitFile(exitFilePath(dir), { pid: 42, exitStatus: 137, exitedAt: at });
    expect(await readExitFile(exitFilePath(dir))).toEqual({ pid: 42, exitStatus: 137, exitedAt: at });
    const raw = JSON.parse(await readFile(exitFilePath(dir), 'utf8'));
    expect(raw).toEqual({ pid: 42, exit_status: 137, exited_at: '2026-01-02T03:04:05.678Z' });
  });

  it('is missing rather than empty before any exit', async () => {
    expect(await readExitFile(exitFilePath(dir))).toBeUndefined();
  });

  it('replaces atomically: readers only ever see a whole record, and no temp file is left', async () => {
    const path = exitFilePath(dir);
    await writeExitFile(path, { pid: 1, exitStatus: 0, exitedAt: new Date() });
    let stop = false;
    const seen = new Set<number>();
    const reader = (async () => {
      while (!stop) {
        const r = await readExitFile(path);
        expect(r).toBeDefined();
        seen.add(r!.exitStatus);
      }
    })();
    for (let i = 0; i < 50; i++) await writeExitFile(path, { pid: 1, exitStatus: i, exitedAt: new Date() });
    stop = true;
    await reader;
    expect((await readExitFile(path))?.exitStatus).toBe(49);
    expect(await readdir(dir)).toEqual(['exit.json']);
  });

  it('rejects a malformed file with a clear error', async () => {
    await writeFile(exitFilePath(dir), '{"pid":1');
    await expect(readExitFile(exitFilePath(dir))).rejects.toThrow(/exit file .*not valid JSON/);
    await writeFile(exitFilePath(dir), '{"pid":1,"exit_status":-1,"exited_at":"x"}');
    await expect(readExitFile(exitFilePath(dir))).rejects.toThrow(/expected \{pid, exit_status, exited_at\}/);
  });
});
