import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A stand-in runc for unit tests: records its argv (NUL-separated), stdin and --process file,
// writes a pid to --pid-file, prints canned stdout, logs a canned line to --log (or stderr), exits
// with a canned code. Behaviour comes from FAKE_RUNC_* variables passed through Runc's `env`.
const SCRIPT = `#!/bin/sh
dir="$FAKE_RUNC_DIR"
: > "$dir/argv"
for a in "$@"; do printf '%s\\0' "$a" >> "$dir/argv"; done
prev=""
log=""
for a in "$@"; do
  case "$prev" in
    --pid-file) echo "\${FAKE_RUNC_PID:-4242}" > "$a" ;;
    --log) log="$a" ;;
    --process) cp "$a" "$dir/process.json" ;;
  esac
  prev="$a"
done
if [ -n "$FAKE_RUNC_READ_STDIN" ]; then cat > "$dir/stdin"; fi
if [ -n "$FAKE_RUNC_STDOUT" ]; then printf '%s' "$FAKE_RUNC_STDOUT"; fi
if [ -n "$FAKE_RUNC_CHILD_STDOUT" ]; then printf '%s' "$FAKE_RUNC_CHILD_STDOUT"; fi
if [ -n "$FAKE_RUNC_STDERR" ]; then printf '%s\\n' "$FAKE_RUNC_STDERR" >&2; fi
if [ -n "$FAKE_RUNC_LOG" ]; then
  if [ -n "$log" ]; then printf '%s\\n' "$FAKE_RUNC_LOG" >> "$log"; else printf '%s\\n' "$FAKE_RUNC_LOG" >&2; fi
fi
# exec: an abort kills runc by pid, and must leave no sleep behind
if [ -n "$FAKE_RUNC_SLEEP" ]; then exec sleep "$FAKE_RUNC_SLEEP"; fi
exit "\${FAKE_RUNC_EXIT:-0}"
`;

export interface FakeRunc {
  dir: string;
  binary: string;
  /** The argv of the last call (without the binary). */
  argv(): Promise<string[]>;
  called(): Promise<boolean>;
  stdin(): Promise<string>;
  processJson(): Promise<unknown>;
  env(extra?: Record<string, string>): Record<string, string>;
  cleanup(): Promise<void>;
}

export async function makeFakeRunc(): Promise<FakeRunc> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-runc-'));
  const binary = join(dir, 'runc');
  await writeFile(binary, SCRIPT);
  await chmod(binary, 0o755);
  return {
    dir,
    binary,
    async argv() {
      const raw = await readFile(join(dir, 'argv'), 'utf8');
      return raw.split('\0').slice(0, -1);
    },
    async called() {
      return readFile(join(dir, 'argv')).then(
        () => true,
        () => false,
      );
    },
    stdin: () => readFile(join(dir, 'stdin'), 'utf8'),
    async processJson() {
      return JSON.parse(await readFile(join(dir, 'process.json'), 'utf8'));
    },
    env: (extra = {}) => ({ FAKE_RUNC_DIR: dir, ...extra }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
