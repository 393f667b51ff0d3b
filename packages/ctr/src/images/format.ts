import { Flags } from '@oclif/core';
import { type Platform, formatPlatform, parsePlatform } from '@ctrd/api-proto/oci';
import { UsageError } from '../errors.js';
import { DEFAULT_SNAPSHOTTER } from './unpack.js';

/** Sizes as containerd's ctr prints them (progress.Bytes): `2.1 MiB`, `512 B`. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let value = n;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(1)} ${units[i]}`;
}

/** `5 minutes`, `2 days`: how long ago, roughly, as Docker's units.HumanDuration. */
export function humanAge(since: Date, now: Date = new Date()): string {
  const s = Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000));
  if (s < 1) return 'less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'about a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'about an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

export function platformList(platforms: readonly Platform[]): string {
  return [...new Set(platforms.map(formatPlatform))].sort().join(',');
}

/** `--platform` values (repeatable) parsed, usage errors for bad ones. */
export function parsePlatformFlags(values: readonly string[] | undefined): Platform[] {
  return (values ?? []).map((v) => {
    try {
      return parsePlatform(v);
    } catch (err) {
      throw new UsageError(`--platform ${v}: ${(err as Error).message}`);
    }
  });
}

/** The snapshotter ctr uses when --snapshotter is not given: $CONTAINERD_SNAPSHOTTER, else overlayfs. */
export function defaultSnapshotter(env: Record<string, string | undefined>): string {
  return env.CTRD_SNAPSHOTTER || env.CONTAINERD_SNAPSHOTTER || DEFAULT_SNAPSHOTTER;
}

export const snapshotterFlag = Flags.string({
  summary: 'snapshotter name [env: CTRD_SNAPSHOTTER, CONTAINERD_SNAPSHOTTER] [default: overlayfs]',
  helpValue: 'NAME',
});
