import { type ExecFileOptions, execFile } from 'node:child_process';
import { promisify } from 'node:util';

// Runs a command to completion and reports what a person would see, whatever its exit code: the tests
// assert on exit codes, so a failing command must not throw.

const execP = promisify(execFile);

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Resolves the exit code (-1 when killed or not started) and both streams; never rejects. */
export async function runCommand(
  file: string,
  args: readonly string[],
  opts: ExecFileOptions = {},
): Promise<Run> {
  try {
    const { stdout, stderr } = await execP(file, args, { encoding: 'utf8', ...opts });
    return { code: 0, stdout: String(stdout), stderr: String(stderr) };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}
