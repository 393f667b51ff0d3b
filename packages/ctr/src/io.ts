import type { Transport } from '@connectrpc/connect';

/**
 * Where a command reads and writes, and what it talks to. The default is the process's own streams and
 * the unix socket; tests hand in buffers and an in-memory transport so no daemon is needed.
 */
export interface CtrIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Replaces the socket connection, e.g. `createRouterTransport(...)` in tests. */
  transport?: Transport;
}

export function processIo(): CtrIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
