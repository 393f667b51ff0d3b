import { parseArgs } from 'node:util';
import { isInvalidArgument } from '@ctrd/api-proto';
import {
  CONFIG_KEYS,
  type Config,
  configToToml,
  convertValue,
  DEFAULT_CONFIG_PATH,
  defaultConfig,
  loadConfigFile,
} from './config.js';

// The command line: flags in the seed's spelling, each also a config-file key (dashes become
// underscores). Flags beat the file, the file beats the defaults.

export const USAGE = `usage: ctrd [flags]
       ctrd config default

High performance container daemon serving containerd's v1 API.

flags:
  --config PATH             TOML config file (default ${DEFAULT_CONFIG_PATH}; missing default is fine)
  --id ID                   daemon id
  --debug                   debug logging, one line per API call
  --log-level LEVEL         trace, debug, info, warn, error, fatal (default info)
  --root DIR                persistent state: metadata, content, snapshots (default /var/lib/ctrd)
  --state-dir DIR           runtime state: bundles, shim sockets (default /run/ctrd)
  -l, --listen PATH         API socket (default /run/ctrd/ctrd.sock)
  --socket-group GROUP      group owning the socket (mode 0660)
  -c, --concurrency N       concurrent operations on the runtime (default 10)
  --metrics-interval DUR    report interval, e.g. 1m0s, 30s; 0 disables (default 1m0s)
  --metrics-address ADDR    serve Prometheus metrics on this address
  --graphite-address ADDR   send metrics to graphite at host:port
  --oom-notify              report out-of-memory events
  --runc-binary PATH        runc for the shims (default runc on PATH)
  --runc-root DIR           base of runc's state roots, one per namespace (default <state-dir>/runc)
  --shim-binary PATH        the ctrd-shim program (default the installed @ctrd/shim)
  --shim-tasks-cap N        tasks per shared shim before another is started (default 100)
  --shim-linger DUR         how long an emptied shared shim waits for a new task before it stops;
                            0 stops it at once (default 2s)
  -h, --help                this help
  -v, --version             print the version
`;

const options = {
  config: { type: 'string' },
  id: { type: 'string' },
  debug: { type: 'boolean' },
  'log-level': { type: 'string' },
  root: { type: 'string' },
  'state-dir': { type: 'string' },
  listen: { type: 'string', short: 'l' },
  'socket-group': { type: 'string' },
  concurrency: { type: 'string', short: 'c' },
  'metrics-interval': { type: 'string' },
  'metrics-address': { type: 'string' },
  'graphite-address': { type: 'string' },
  'oom-notify': { type: 'boolean' },
  'runc-binary': { type: 'string' },
  'runc-root': { type: 'string' },
  'shim-binary': { type: 'string' },
  'shim-tasks-cap': { type: 'string' },
  'shim-linger': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'config-default' }
  | { kind: 'run'; config: Config };

/** A mistake on the command line: exit 2 with usage. */
export class UsageError extends Error {}

export async function parseCommandLine(argv: readonly string[], signal?: AbortSignal): Promise<Command> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positionals.length > 0) {
    if (positionals.join(' ') === 'config default') return { kind: 'config-default' };
    throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  }
  const fromFile = await loadConfigFile(
    values.config ?? DEFAULT_CONFIG_PATH,
    values.config !== undefined,
    signal,
  );
  const config: Config = { ...defaultConfig, ...fromFile };
  for (const [flag, raw] of Object.entries(values)) {
    if (flag === 'config' || raw === undefined) continue;
    const key = flag.replaceAll('-', '_');
    if (!CONFIG_KEYS[key]) continue;
    try {
      (config as unknown as Record<string, unknown>)[CONFIG_KEYS[key].field] = convertValue(
        key,
        raw,
        `--${flag}`,
      );
    } catch (e) {
      if (isInvalidArgument(e)) throw new UsageError((e as Error).message);
      throw e;
    }
  }
  if (config.debug) config.logLevel = 'debug';
  return { kind: 'run', config };
}

export function defaultConfigToml(): string {
  return configToToml({ ...defaultConfig });
}
