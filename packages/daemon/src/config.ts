import { readFile } from 'node:fs/promises';
import { InvalidArgument } from '@ctrd/api-proto';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { formatDuration, parseDuration } from './duration.js';

// One settings object fed by defaults, then the TOML file, then flags. Every flag has a key of the
// same name (snake_case) so a system service and a test daemon are configured the same way.

export const DEFAULT_CONFIG_PATH = '/etc/ctrd/config.toml';

export interface Config {
  id: string;
  debug: boolean;
  logLevel: string;
  root: string;
  stateDir: string;
  listen: string;
  /** Group (name or gid) that owns the socket, so its members may use it (mode 0660). */
  socketGroup: string;
  concurrency: number;
  /** Milliseconds; 0 disables the periodic report. */
  metricsInterval: number;
  metricsAddress: string;
  graphiteAddress: string;
  oomNotify: boolean;
  /** runc for the shims to run ('' = the shim's default, `runc` on PATH). */
  runcBinary: string;
  /** Base of the runc state roots; each namespace gets <runc_root>/<ns> ('' = <state>/runc). */
  runcRoot: string;
  /** The ctrd-shim program ('' = the installed @ctrd/shim's bin). */
  shimBinary: string;
  /** Tasks a shared shim hosts before another shim is started for the namespace. */
  shimTasksCap: number;
  /** How long (ms) a shared shim whose last task was deleted waits for a new one before it stops. */
  shimLinger: number;
}

export const defaultConfig: Readonly<Config> = Object.freeze({
  id: '',
  debug: false,
  logLevel: 'info',
  root: '/var/lib/ctrd',
  stateDir: '/run/ctrd',
  listen: '/run/ctrd/ctrd.sock',
  socketGroup: '',
  concurrency: 10,
  metricsInterval: 60_000,
  metricsAddress: '',
  graphiteAddress: '',
  oomNotify: false,
  runcBinary: '',
  runcRoot: '',
  shimBinary: '',
  shimTasksCap: 100,
  shimLinger: 2000,
});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

type Kind = 'string' | 'boolean' | 'count' | 'duration' | 'level';
// TOML key → config field and how to read it.
export const CONFIG_KEYS: Record<string, { field: keyof Config; kind: Kind }> = {
  id: { field: 'id', kind: 'string' },
  debug: { field: 'debug', kind: 'boolean' },
  log_level: { field: 'logLevel', kind: 'level' },
  root: { field: 'root', kind: 'string' },
  state_dir: { field: 'stateDir', kind: 'string' },
  listen: { field: 'listen', kind: 'string' },
  socket_group: { field: 'socketGroup', kind: 'string' },
  concurrency: { field: 'concurrency', kind: 'count' },
  metrics_interval: { field: 'metricsInterval', kind: 'duration' },
  metrics_address: { field: 'metricsAddress', kind: 'string' },
  graphite_address: { field: 'graphiteAddress', kind: 'string' },
  oom_notify: { field: 'oomNotify', kind: 'boolean' },
  runc_binary: { field: 'runcBinary', kind: 'string' },
  runc_root: { field: 'runcRoot', kind: 'string' },
  shim_binary: { field: 'shimBinary', kind: 'string' },
  shim_tasks_cap: { field: 'shimTasksCap', kind: 'count' },
  shim_linger: { field: 'shimLinger', kind: 'duration' },
};

/** Converts one raw value (from TOML or a flag) for `key`; `what` names it in errors. */
export function convertValue(key: string, raw: unknown, what: string): Config[keyof Config] {
  const spec = CONFIG_KEYS[key];
  if (!spec)
    throw new InvalidArgument(`${what}: unknown setting: known are ${Object.keys(CONFIG_KEYS).join(', ')}`);
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string') throw new InvalidArgument(`${what}: must be a string`);
      return raw;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      throw new InvalidArgument(`${what}: must be true or false`);
    case 'count': {
      const n =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && /^\d+$/.test(raw)
            ? Number(raw)
            : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1)
        throw new InvalidArgument(`${what}: must be a whole number of at least 1`);
      return n;
    }
    case 'duration':
      if (typeof raw !== 'string')
        throw new InvalidArgument(`${what}: must be a duration string such as "1m0s"`);
      return parseDuration(raw, what);
    case 'level':
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw))
        throw new InvalidArgument(`${what}: must be one of ${LOG_LEVELS.join(', ')}`);
      return raw;
  }
}

/** Parses TOML text into partial settings; `source` names the file in errors. */
export function parseConfigToml(text: string, source: string): Partial<Config> {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new InvalidArgument(`config ${source}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const out: Partial<Config> = {};
  for (const [key, raw] of Object.entries(doc)) {
    const spec = CONFIG_KEYS[key];
    if (!spec) {
      throw new InvalidArgument(
        `config ${source}: unknown key "${key}": known keys are ${Object.keys(CONFIG_KEYS).join(', ')}`,
      );
    }
    (out as Record<string, unknown>)[spec.field] = convertValue(key, raw, `config ${source}: ${key}`);
  }
  return out;
}

/**
 * Reads the config file. A missing file at the default path is fine (defaults apply); a missing
 * file the user named explicitly is an error.
 */
export async function loadConfigFile(
  path: string,
  explicit: boolean,
  signal?: AbortSignal,
): Promise<Partial<Config>> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return {};
    throw new InvalidArgument(`config ${path}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  return parseConfigToml(text, path);
}

/** The settings as TOML, every key present (what `ctrd config default` prints). */
export function configToToml(config: Config): string {
  const doc: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const v = config[spec.field];
    doc[key] = spec.kind === 'duration' ? formatDuration(v as number) : v;
  }
  return `${stringifyToml(doc)}\n`;
}
