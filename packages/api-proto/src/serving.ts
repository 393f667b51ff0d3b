import { lstat, unlink } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import type { DescService } from '@bufbuild/protobuf';
import type { Interceptor, ServiceImpl } from '@connectrpc/connect';
import { classify, FailedPrecondition } from './errors.js';
import type { Logger } from './logger.js';

// What every server of ours shares, whatever it speaks (gRPC and Connect in server.ts, ttrpc in
// ttrpc/server.ts): service registrations, close options, the log line for unexpected errors and
// the stale socket check. Kept apart so the ttrpc entry loads no HTTP/2 code.

export interface ServiceRegistration<T extends DescService = DescService> {
  service: T;
  impl: Partial<ServiceImpl<T>>;
}

/** Type-checks one implementation against its descriptor, for the `services` list. */
export function service<T extends DescService>(desc: T, impl: Partial<ServiceImpl<T>>): ServiceRegistration {
  return { service: desc, impl } as unknown as ServiceRegistration;
}

export interface CloseOptions {
  /**
   * How long in-flight calls may take before they are cancelled (with `now`: how long their
   * handlers may take to return once cancelled) before the connections are dropped. Default 10 s.
   */
  graceMs?: number | undefined;
  /**
   * Cancel in-flight calls at once instead of waiting for them, as grpc-go's Server.Stop (what
   * containerd does on SIGTERM) against GracefulStop. Either way a call cut short by the shutdown
   * answers Unavailable.
   */
  now?: boolean | undefined;
}

// Classes are the API's answers; anything else escaping a handler is a bug worth a log line.
export function logUnexpected(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (classify(err) === 'Unknown') log.error({ err, method: req.url }, 'unexpected error in handler');
      throw err;
    }
  };
}

// A socket file left by a crashed server would make listen fail with EADDRINUSE. Remove it only
// when nothing answers on it, so a second server never steals a live one's address.
export async function removeStaleSocket(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new FailedPrecondition(
      `socket ${path}: a file that is not a socket is in the way: remove it or pick another path`,
    );
  }
  const alive = await new Promise<boolean>((resolve) => {
    const sock = netConnect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
  if (alive)
    throw new FailedPrecondition(
      `socket ${path}: another server is listening on it: stop it or pick another path`,
    );
  await unlink(path);
}
