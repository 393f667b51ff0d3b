import { closeSync, readFileSync, writeSync } from 'node:fs';
import { pino } from 'pino';
import { deleteTask } from './delete-command.js';
import { parseCommandLine, USAGE, UsageError } from './options.js';
import { createRuncRuntime, runcSys } from './runc-runtime.js';
import { createStatsReader } from './stats.js';
import { Shim } from './shim.js';
import { READY_FD_ENV, startShim } from './start-command.js';

// The ctrd-shim program. Only this file (and bin.ts) writes to the console or sets the exit code.

// The package's package.json: one level up from dist/cli.js, two from the bundle (dist/bundle/bin.js).
export function shimVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@ctrd/shim') return pkg.version ?? '0.0.0';
    } catch {}
  }
  return '0.0.0';
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ctrd-shim: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  const { command, options } = parsed;
  switch (command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'version':
      process.stdout.write(`ctrd-shim ${shimVersion()}\n`);
      return 0;
    case 'start':
      try {
        const r = await startShim(options);
        process.stdout.write(`${r.address}\n`);
        return 0;
      } catch (e) {
        process.stderr.write(`ctrd-shim: ${(e as Error).message}\n`);
        return 1;
      }
    case 'delete':
      try {
        const runtime = createRuncRuntime({ binary: options.runcBinary, root: options.runcRoot });
        const r = await deleteTask(options, runtime);
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return 0;
      } catch (e) {
        process.stderr.write(`ctrd-shim: ${(e as Error).message}\n`);
        return 1;
      }
    case 'serve':
      return serve(options);
  }
}

async function serve(options: ReturnType<typeof parseCommandLine>['options']): Promise<number> {
  const logger = pino({ level: options.logLevel, base: { shim: options.id, ns: options.namespace } });
  const readyFd = process.env[READY_FD_ENV] ? Number(process.env[READY_FD_ENV]) : undefined;
  delete process.env[READY_FD_ENV];
  const say = (msg: string) => {
    if (readyFd === undefined) return;
    try {
      writeSync(readyFd, `${msg}\n`);
      closeSync(readyFd);
    } catch {
      // `start` gave up waiting; nothing to tell.
    }
  };
  const sys = runcSys();
  // runc is posix_spawn'ed and its exits come from the shim's reaper (CTRD_SHIM_SPAWNER=child_process
  // goes back to Node's fork-based spawn, for comparison).
  const reaped =
    process.env.CTRD_SHIM_SPAWNER === 'child_process'
      ? undefined
      : (pid: number) => shim.reaper.watch(pid).then((e) => e.exitStatus);
  const shim: Shim = new Shim(options, {
    runtime: createRuncRuntime({
      binary: options.runcBinary,
      root: options.runcRoot,
      logger,
      waitExit: reaped,
    }),
    waitPid: sys.waitPid,
    peekExited: sys.peekExited,
    setSubreaper: sys.setSubreaper,
    stats: createStatsReader(),
    logger,
    version: shimVersion(),
  });
  try {
    await shim.start();
  } catch (e) {
    logger.error({ err: e }, 'shim failed to start');
    say(`error: ${(e as Error).message}`);
    return 1;
  }
  logger.info({ address: shim.address(), pid: process.pid }, 'shim serving');
  say('ready');
  // SIGTERM/SIGINT from a terminal or a test: stop serving and leave the containers alone. The
  // shim is in its own session, so the daemon's signals never reach it.
  // One shim supervises many containers: a bug hit by one task's call must not take the others'
  // supervision down with it, so stray errors are logged, not fatal.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'));
  const onSignal = () => void shim.stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await shim.done;
  logger.info({}, 'shim exiting');
  return 0;
}
