import { statSync } from 'node:fs';
import { Code, ConnectError } from '@connectrpc/connect';
import { errorKind } from '@ctrd/api-proto/client';
import { describeSource, type Resolved, socketPath } from './address.js';

/** A mistake in how ctr was called: exits 2, like oclif's own parse errors. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ErrorContext {
  address?: Resolved;
  timeoutMs?: number;
  /** e.g. `ctr containers rm`, for the "see --help" hint. */
  command?: string;
}

export interface DescribedError {
  message: string;
  exitCode: number;
}

const CONNECT_FAILURES: Record<string, string> = {
  ENOENT: 'no socket at that path (is ctrd running?)',
  ECONNREFUSED: 'connection refused: nothing is listening on that socket (is ctrd running?)',
  EACCES: 'permission denied: run as root or as a member of the socket’s group',
  ENOTSOCK: 'that path is not a socket',
};

/**
 * connect(2) to a path that is not a socket fails with ECONNREFUSED, as if nothing listened on a
 * socket there: what is at the path tells the two apart.
 */
function notASocket(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (st.isSocket()) return undefined;
    const what = st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'another kind of file';
    return `not a socket: it is ${what}`;
  } catch {
    return undefined;
  }
}

/** The errno of a failed connect(2) somewhere in the cause chain: the socket could not be dialled. */
function dialFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const { code, syscall } = e as { code?: unknown; syscall?: unknown };
    if (syscall === 'connect' && typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function lowerFirst(text: string): string {
  return text.length > 0 ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}

/** Turns anything a command threw into the one line ctr prints after `ctr: ` and its exit code. */
export function describeError(err: unknown, context: ErrorContext = {}): DescribedError {
  if (err instanceof UsageError) return { message: err.message, exitCode: 2 };
  const kind = errorKind(err);
  if (kind !== undefined || err instanceof ConnectError) {
    // Only a failed connect(2) on our side: a daemon's message that mentions ENOENT is not a dialling problem.
    const reason = dialFailure(err);
    if (reason && context.address) {
      const where = socketPath(context.address.value);
      const why =
        (reason === 'ECONNREFUSED' || reason === 'ENOTSOCK' ? notASocket(where) : undefined) ??
        CONNECT_FAILURES[reason] ??
        reason;
      return {
        message:
          `cannot connect to ctrd at ${where} (${describeSource(context.address.source)}): ` +
          `${why}; point ctr at another socket with -a/--address or CTRD_ADDRESS`,
        exitCode: 1,
      };
    }
    const text = err instanceof ConnectError ? err.rawMessage : (err as Error).message;
    const code = err instanceof ConnectError ? err.code : undefined;
    if ((kind === 'DeadlineExceeded' || code === Code.DeadlineExceeded) && context.timeoutMs !== undefined) {
      return { message: `${text} (no answer within --timeout ${context.timeoutMs}ms)`, exitCode: 1 };
    }
    if (kind === 'NotImplemented' || code === Code.Unimplemented) {
      return {
        message: `${text} (the daemon does not offer this call: an older ctrd or containerd?)`,
        exitCode: 1,
      };
    }
    return { message: text, exitCode: 1 };
  }
  const oclif = (err as { oclif?: { exit?: number } } | undefined)?.oclif;
  if (err instanceof Error && oclif?.exit !== undefined) {
    // oclif's parse errors: "Missing 1 required arg: ...\nSee more help with --help".
    const hint = context.command ? `see '${context.command} --help'` : 'see --help';
    const message = lowerFirst(
      err.message
        .replace(/^Parsing (--\S+)\s*\n\t/, '$1: ')
        .replace(/\n?See more help with --help/g, '')
        .replace(/\s+$/, ''),
    );
    return { message: `${message}\n${hint}`, exitCode: oclif.exit };
  }
  if (err instanceof Error) return { message: err.message, exitCode: 1 };
  return { message: String(err), exitCode: 1 };
}
