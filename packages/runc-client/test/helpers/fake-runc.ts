import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A fake runc: a shell script that records its argv (NUL-separated) and answers with whatever the
// test put in its directory (stdout, stderr, exit, pid, events). It writes its stderr to --log when
// given, like runc does.
const SCRIPT = `#!/bin/sh
d="$(dirname "$0")"
printf '%s\\0' "$@" > "$d/argv.tmp" && mv "$d/argv.tmp" "$d/argv"
log=""; pidfile=""; prev=""; stdin=""
for a in "$@"; do
  case "$prev" in
    --log) log="$a" ;;
    --pid-file) pidfile="$a" ;;
    --process) cp "$a" "$d/process.json" ;;
    --resources) [ "$a" = "-" ] && stdin=1 ;;
  esac
  prev="$a"
done
[ -n "$stdin" ] && cat > "$d/stdin"
[ -n "$pidfile" ] && [ -f "$d/pid" ] && cat "$d/pid" > "$pidfile"
[ -f "$d/stdout" ] && cat "$d/stdout"
if [ -f "$d/stderr" ]; then
  if [ -n "$log" ]; then cat "$d/stderr" >> "$log"; else cat "$d/stderr" >&2; fi
fi
[ -f "$d/sleep" ] && exec sleep "$(cat "$d/sleep")"
exit "$(cat "$d/exit" 2>/dev/null || echo 0)"
`;

export interface FakeRunc {
  dir: string;
  binary: string;
  /** Canned answers for the next calls. */
  answer(a: { stdout?: string; stderr?: string; exit?: number; pid?: number; sleep?: number }): Promise<void>;
  /** argv of the last call (without the binary), or undefined when the script never ran. */
  argv(): Promise<string[] | undefined>;
  read(name: 'stdin' | 'process.json'): Promise<string>;
  remove(): Promise<void>;
}

export async function makeFakeRunc(): Promise<FakeRunc> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-runc-'));
  const binary = join(dir, 'runc');
  await writeFile(binary, SCRIPT);
  await chmod(binary, 0o755);
  return {
    dir,
    binary,
    async answer(a) {
      for (const [k, v] of Object.entries(a)) {
        if (v === undefined) await rm(join(dir, k), { force: true });
        else await writeFile(join(dir, k), String(v));
      }
    },
    async argv() {
      try {
        const raw = await readFile(join(dir, 'argv'), 'utf8');
        return raw.split('\0').slice(0, -1);
      } catch {
        return undefined;
      }
    },
    read: (name) => readFile(join(dir, name), 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
