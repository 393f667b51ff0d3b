#!/usr/bin/env node
import { pino } from 'pino';
import { parseCommandLine, USAGE, UsageError, defaultConfigToml } from './cli.js';
import { startDaemon } from './daemon.js';
import { VERSION } from './services/version.js';

// The ctrd process: parse, serve, and on SIGTERM/SIGINT stop accepting, cancel in-flight calls,
// close the store and exit 0. Containers are never stopped here.

async function main(): Promise<number> {
  let cmd: Awaited<ReturnType<typeof parseCommandLine>>;
  try {
    cmd = await parseCommandLine(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ctrd: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`ctrd: ${(e as Error).message}\n`);
    return 1;
  }
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`ctrd ${VERSION}\n`);
      return 0;
    case 'config-default':
      process.stdout.write(defaultConfigToml());
      return 0;
  }
  const { config } = cmd;
  const log = pino(
    { level: config.logLevel, base: { pid: process.pid } },
    pino.destination({ fd: 2, sync: true }),
  );
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, { logger: log, metricsOut: process.stderr });
  } catch (e) {
    log.debug({ err: e }, 'ctrd failed to start');
    process.stderr.write(`ctrd: ${(e as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'ctrd stopping');
      daemon.close({ graceMs: 10_000 }).then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'ctrd stop failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`ctrd: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
