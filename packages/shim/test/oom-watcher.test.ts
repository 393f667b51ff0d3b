import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OomWatcher, readOomKills } from '../src/oom-watcher.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-oom-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('oom watcher', () => {
  it('reads the v1 and v2 counters', async () => {
    await writeFile(join(dir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n');
    expect(readOomKills({ version: 1, memoryDir: dir, path: '/x' })).toBe(4);
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n');
    expect(readOomKills({ version: 2, memoryDir: dir, path: '/x' })).toBe(1);
    expect(readOomKills({ version: 2, memoryDir: join(dir, 'gone'), path: '/x' })).toBeUndefined();
  });

  it('reports a rise of the counter once, on check and on its shared timer', async () => {
    const file = join(dir, 'memory.oom_control');
    await writeFile(file, 'oom_kill 2\n');
    const w = new OomWatcher(20);
    let ooms = 0;
    w.add('ns/a', { version: 1, memoryDir: dir, path: '/a' }, () => ooms++);
    w.check('ns/a');
    expect(ooms).toBe(0);
    await writeFile(file, 'oom_kill 3\n');
    w.check('ns/a');
    w.check('ns/a');
    expect(ooms).toBe(1);
    await writeFile(file, 'oom_kill 4\n');
    await expect.poll(() => ooms).toBe(2);
    w.remove('ns/a');
    await writeFile(file, 'oom_kill 9\n');
    await new Promise((r) => setTimeout(r, 60));
    expect(ooms).toBe(2);
    w.close();
  });
});
