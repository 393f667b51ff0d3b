import { describe, expect, it } from 'vitest';
import { formatBytes, Progress } from '../src/registry/progress.js';
import { Capture } from './helpers.js';

describe('transfer progress', () => {
  it('on a terminal redraws the whole board in place, then prints the total', () => {
    const out = new Capture();
    let now = 0;
    const p = new Progress(out, { tty: true, now: () => now });
    p.add('layer-sha256:aa', 2048, 'waiting');
    p.add('config-sha256:bb', 100, 'waiting');
    p.set('layer-sha256:aa', 'downloading');
    now = 1000;
    p.advance('layer-sha256:aa', 1024);
    p.set('config-sha256:bb', 'exists');
    p.stop();
    const frames = out.text.split('\x1b[2K');
    // Never started: the one frame drawn at stop has nothing above it to move over.
    expect(out.text).not.toContain('\x1b[2A');
    expect(frames.join('')).toContain(
      'layer-sha256:aa:  downloading |+++++++++++++++---------------| 1.0 KiB/2.0 KiB (1.0 KiB/s)',
    );
    expect(frames.join('')).toContain(
      'config-sha256:bb: exists      |++++++++++++++++++++++++++++++| 100 B/100 B',
    );
    expect(out.text).toMatch(/elapsed: 1\.0 s\ttotal: 1\.0 KiB\t\(1\.0 KiB\/s\)\n$/);
  });

  it('redraws over the lines it drew before', async () => {
    const out = new Capture();
    const p = new Progress(out, { tty: true, intervalMs: 5 }).start();
    p.add('a', 10, 'downloading');
    p.add('b', 10, 'waiting');
    try {
      await expect.poll(() => out.text).toContain('\x1b[2A');
    } finally {
      p.stop();
    }
  });

  it('elsewhere prints one line per status change, never the waiting ones', () => {
    const out = new Capture();
    const p = new Progress(out, { tty: false, now: () => 0 });
    p.add('x', 10, 'waiting');
    p.set('x', 'downloading');
    p.advance('x', 10);
    p.set('x', 'done');
    p.set('x', 'done');
    p.stop();
    const lines = out.text.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^x: downloading \|-+\| 0 B\/10 B$/);
    expect(lines[1]).toMatch(/^x: done +\|\++\| 10 B\/10 B/);
    expect(lines[2]).toMatch(/^elapsed: /);
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024 * 1024)).toBe('5.0 GiB');
  });
});
