import { formatGoDuration, InvalidArgument, parseGoDuration } from '@ctrd/api-proto';

// The daemon's reading of Go durations (config keys and flags): api-proto's parser, with errors that
// name the flag or key.

/** Milliseconds in a Go duration string. `0` alone is allowed without a unit. */
export function parseDuration(text: string, what = 'duration'): number {
  if (text.trim() === '') throw new InvalidArgument(`${what}: empty duration: use e.g. 1m0s or 500ms`);
  const ms = parseGoDuration(text);
  if (ms === undefined) {
    throw new InvalidArgument(`${what}: invalid duration "${text}": use e.g. 1m0s, 30s or 500ms`);
  }
  return ms;
}

/** Go's Duration.String for whole milliseconds: 60000 → `1m0s`, 500 → `500ms`, 0 → `0s`. */
export const formatDuration = formatGoDuration;
