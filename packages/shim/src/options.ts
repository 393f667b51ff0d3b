import { isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';
import { validateIdentifier } from '@ctrd/api-proto';

// The command line of ctrd-shim, shared by its subcommands (see README.md "Launch contract").

export interface ShimOptions {
  namespace: string;
  id: string;
  stateDir: string;
  /** The daemon's socket, where events are forwarded. */
  address: string;
  runcBinary: string;
  runcRoot: string;
  oomNotify: boolean;
  debug: boolean;
  logLevel: string;
  bundle?: string | undefined;
}

export class UsageError extends Error {}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const spec = {
  namespace: { type: 'string' },
  id: { type: 'string' },
  'state-dir': { type: 'string' },
  address: { type: 'string' },
  'runc-binary': { type: 'string' },
  'runc-root': { type: 'string' },
  'oom-notify': { type: 'boolean' },
  debug: { type: 'boolean' },
  'log-level': { type: 'string' },
  bundle: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export interface ParsedCommand {
  command: 'start' | 'serve' | 'delete' | 'help' | 'version';
  options: ShimOptions;
}

export const USAGE = `usage:
  ctrd-shim start  --namespace NS --id SHIMID --state-dir DIR --address DAEMON_SOCKET
                   [--runc-binary PATH] [--runc-root DIR] [--oom-notify] [--debug] [--log-level LEVEL]
  ctrd-shim delete --namespace NS --id TASKID --bundle PATH [--runc-binary PATH] [--runc-root DIR]
  ctrd-shim --version`;

export function parseCommandLine(argv: string[]): ParsedCommand {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof spec; allowPositionals: true; strict: true; args: string[] }>
  >;
  try {
    parsed = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', options: defaults() };
  if (positionals[0] === 'version' || argv.includes('--version'))
    return { command: 'version', options: defaults() };
  const command = positionals[0];
  if (command !== 'start' && command !== 'serve' && command !== 'delete') {
    throw new UsageError(
      command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`,
    );
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  const namespace = values.namespace ?? 'default';
  const id = values.id;
  if (id === undefined) throw new UsageError('--id is required');
  try {
    validateIdentifier(namespace, 'namespace');
    validateIdentifier(id, 'id');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const stateDir = values['state-dir'] ?? '/run/ctrd';
  const runcRoot = values['runc-root'] ?? `/run/ctrd/runc/${namespace}`;
  for (const [flag, v] of [
    ['--state-dir', stateDir],
    ['--runc-root', runcRoot],
    ['--bundle', values.bundle],
  ] as const) {
    if (v !== undefined && !isAbsolute(v))
      throw new UsageError(`${flag} ${JSON.stringify(v)}: must be an absolute path`);
  }
  const options: ShimOptions = {
    namespace,
    id,
    stateDir,
    address: values.address ?? '',
    runcBinary: values['runc-binary'] ?? 'runc',
    runcRoot,
    oomNotify: values['oom-notify'] ?? false,
    debug: values.debug ?? false,
    logLevel: values['log-level'] ?? (values.debug ? 'debug' : 'info'),
    bundle: values.bundle,
  };
  if (!LOG_LEVELS.includes(options.logLevel)) {
    throw new UsageError(
      `--log-level ${JSON.stringify(options.logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  if ((command === 'start' || command === 'serve') && options.address === '') {
    throw new UsageError('--address (the daemon socket events go to) is required');
  }
  if (command === 'delete' && options.bundle === undefined) throw new UsageError('--bundle is required');
  return { command, options };
}

function defaults(): ShimOptions {
  return {
    namespace: 'default',
    id: '',
    stateDir: '/run/ctrd',
    address: '',
    runcBinary: 'runc',
    runcRoot: '/run/ctrd/runc/default',
    oomNotify: false,
    debug: false,
    logLevel: 'info',
  };
}

/** The argv that re-creates `opts` for a subcommand. */
export function toArgv(command: string, opts: ShimOptions): string[] {
  const argv = [
    command,
    '--namespace',
    opts.namespace,
    '--id',
    opts.id,
    '--state-dir',
    opts.stateDir,
    '--address',
    opts.address,
    '--runc-binary',
    opts.runcBinary,
    '--runc-root',
    opts.runcRoot,
    '--log-level',
    opts.logLevel,
  ];
  if (opts.oomNotify) argv.push('--oom-notify');
  if (opts.debug) argv.push('--debug');
  return argv;
}
