import { spawn } from 'node:child_process';
import { constants } from 'node:os';

// Extended attributes without a native addon: Node has no setxattr/getxattr, so one python3
// process does a whole batch (os.setxattr / os.getxattr with follow_symlinks=False, i.e.
// lsetxattr / lgetxattr: a symlink's target is never touched). Without python3 xattrs are a
// known gap: the caller is told, and logs it.

const SET_SCRIPT = `
import json, os, sys
out = []
for path, attrs in json.load(sys.stdin):
    for name, value in attrs:
        try:
            os.setxattr(path, name, bytes.fromhex(value), follow_symlinks=False)
        except OSError as e:
            out.append([path, name, e.errno])
json.dump(out, sys.stdout)
`;

const GET_SCRIPT = `
import json, os, sys
names = json.load(sys.stdin)
out = {}
for path in names["paths"]:
    got = {}
    for name in names["attrs"]:
        try:
            got[name] = os.getxattr(path, name, follow_symlinks=False).hex()
        except OSError:
            pass
    if got:
        out[path] = got
json.dump(out, sys.stdout)
`;

export interface XattrFailure {
  path: string;
  name: string;
  /** errno name: EPERM, ENOTSUP, ... */
  code: string;
}

let available: Promise<boolean> | undefined;

/** Whether the xattr helper (python3) can run here. */
export function xattrToolAvailable(): Promise<boolean> {
  available ??= runPython('print(1)', '', undefined).then(
    () => true,
    () => false,
  );
  return available;
}

function errnoName(n: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === n) return name;
  return `errno ${n}`;
}

function runPython(script: string, input: string, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else
        reject(
          new Error(`python3 xattr helper exited ${code}: ${Buffer.concat(err).toString('utf8').trim()}`),
        );
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Sets xattrs on many paths without following symlinks; returns what failed, per attribute. */
export async function setXattrs(
  items: ReadonlyArray<{ path: string; xattrs: Record<string, Uint8Array> }>,
  signal?: AbortSignal,
): Promise<XattrFailure[]> {
  if (items.length === 0) return [];
  const input = JSON.stringify(
    items.map(({ path, xattrs }) => [
      path,
      Object.entries(xattrs).map(([k, v]) => [k, Buffer.from(v).toString('hex')]),
    ]),
  );
  const out = JSON.parse(await runPython(SET_SCRIPT, input, signal)) as Array<[string, string, number]>;
  return out.map(([path, name, errno]) => ({ path, name, code: errnoName(errno) }));
}

/** Reads the named xattrs of many paths without following symlinks; absent ones are left out. */
export async function getXattrs(
  paths: readonly string[],
  names: readonly string[],
  signal?: AbortSignal,
): Promise<Map<string, Record<string, Uint8Array>>> {
  const result = new Map<string, Record<string, Uint8Array>>();
  if (paths.length === 0) return result;
  const out = JSON.parse(
    await runPython(GET_SCRIPT, JSON.stringify({ paths, attrs: names }), signal),
  ) as Record<string, Record<string, string>>;
  for (const [path, attrs] of Object.entries(out)) {
    result.set(path, Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, Buffer.from(v, 'hex')])));
  }
  return result;
}
