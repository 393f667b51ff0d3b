import { open, stat } from 'node:fs/promises';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  log: string;
}

/** The shim's per-task log: JSON lines `{ time, stream, log }`, rotated once to `<file>.1`. */
export const LOG_FILE_NAME = 'container.log';

export function parseLogLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const rec = JSON.parse(line) as Partial<LogRecord>;
      if (typeof rec.log === 'string' && (rec.stream === 'stdout' || rec.stream === 'stderr')) {
        out.push({ time: String(rec.time ?? ''), stream: rec.stream, log: rec.log });
      }
    } catch {
      // A line cut by rotation or a crash: skip it rather than stop the whole log.
    }
  }
  return out;
}

/** Everything in the file from `offset`, up to the last complete line; returns the new offset. */
export async function readFrom(
  path: string,
  offset: number,
): Promise<{ records: LogRecord[]; offset: number }> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], offset };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size <= offset) return { records: [], offset: size < offset ? 0 : offset };
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    return {
      records: parseLogLines(text.slice(0, end)),
      offset: offset + Buffer.byteLength(text.slice(0, end)),
    };
  } finally {
    await fh.close();
  }
}

export async function fileId(path: string): Promise<{ ino: number; size: number } | undefined> {
  try {
    const s = await stat(path);
    return { ino: s.ino, size: s.size };
  } catch {
    return undefined;
  }
}
