import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { fromTimestamp } from '@ctrd/api-proto/client';
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';

/** RFC 3339 in UTC, or undefined for an unset timestamp (so JSON omits it). */
export function isoTime(ts: Timestamp | undefined): string | undefined {
  return fromTimestamp(ts)?.toISOString();
}

/**
 * A point in time for --since: RFC 3339 (`2026-11-23T08:00:00Z`), a date, Unix seconds, or a duration
 * ago (`10m`, `1h30m`).
 */
export function parseSince(input: string, now: Date = new Date()): Date {
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text) && text.length >= 9) return new Date(Number(text) * 1000);
  if (/^\d/.test(text) && /[a-zµ]$/.test(text)) {
    try {
      return new Date(now.getTime() - parseDuration(text));
    } catch {
      // not a duration: try it as a date below
    }
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--since "${input}": expected a time (2026-11-23T08:00:00Z), Unix seconds, or a duration ago (10m, 1h)`,
    );
  }
  return date;
}
