export const DEFAULT_ADDRESS = '/run/ctrd/ctrd.sock';
export const DEFAULT_NAMESPACE = 'default';

/** Where a setting came from, so errors can say which knob to turn. */
export type Source =
  | 'flag'
  | 'CTRD_ADDRESS'
  | 'CONTAINERD_ADDRESS'
  | 'CTRD_NAMESPACE'
  | 'CONTAINERD_NAMESPACE'
  | 'default';

export interface Resolved {
  value: string;
  source: Source;
}

type Env = Record<string, string | undefined>;

function pick(flag: string | undefined, env: Env, names: Source[], fallback: string): Resolved {
  if (flag !== undefined && flag !== '') return { value: flag, source: 'flag' };
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return { value, source: name };
  }
  return { value: fallback, source: 'default' };
}

/** `--address`, then CTRD_ADDRESS, then CONTAINERD_ADDRESS (so scripts written for containerd keep working). */
export function resolveAddress(flag: string | undefined, env: Env): Resolved {
  return pick(flag, env, ['CTRD_ADDRESS', 'CONTAINERD_ADDRESS'], DEFAULT_ADDRESS);
}

export function resolveNamespace(flag: string | undefined, env: Env): Resolved {
  return pick(flag, env, ['CTRD_NAMESPACE', 'CONTAINERD_NAMESPACE'], DEFAULT_NAMESPACE);
}

/** containerd addresses are bare paths; `unix://` and `unix:` prefixes are accepted too. */
export function socketPath(address: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return address;
}

export function describeSource(source: Source): string {
  if (source === 'flag') return 'from --address';
  if (source === 'default') return 'the default';
  return `from ${source}`;
}
