import { create } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { TimestampSchema } from '@bufbuild/protobuf/wkt';
import { InvalidArgument } from './errors.js';

// Go clients always send non-nullable timestamps, and a zero time.Time goes out as
// 0001-01-01T00:00:00Z. We read that (and 1970-01-01, which no real event carries) as "unset",
// and never send either: an unset timestamp is simply left out of the message.

/** seconds of Go's zero time.Time. */
export const GO_ZERO_SECONDS = -62135596800n;

/** True when `ts` is missing, Go's zero time, or the all-zero Timestamp. */
export function isUnsetTimestamp(ts: Timestamp | undefined | null): boolean {
  if (!ts) return true;
  if (ts.seconds === GO_ZERO_SECONDS && ts.nanos === 0) return true;
  return ts.seconds === 0n && ts.nanos === 0;
}

/** Timestamp → Date, or undefined when unset (see isUnsetTimestamp). */
export function fromTimestamp(ts: Timestamp | undefined | null): Date | undefined {
  if (!ts || isUnsetTimestamp(ts)) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000));
}

/** Date → Timestamp, or undefined for a missing date, so the field is omitted. */
export function toTimestamp(date: Date | undefined | null): Timestamp | undefined {
  if (!date) return undefined;
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new InvalidArgument('timestamp: invalid date');
  if (ms === 0) return undefined;
  const seconds = Math.floor(ms / 1000);
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 });
}

// Wall clock at load plus the monotonic clock since then: nanosecond resolution, never going
// backwards between two calls in one process.
const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** The current time as a Timestamp with nanosecond resolution. */
export function nowTimestamp(): Timestamp {
  const ns = EPOCH_OFFSET_NS + process.hrtime.bigint();
  return create(TimestampSchema, { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });
}

/** Nanoseconds since the epoch of a Timestamp (0n when unset), for ordering and storage. */
export function timestampToNanos(ts: Timestamp | undefined | null): bigint {
  if (!ts || isUnsetTimestamp(ts)) return 0n;
  return ts.seconds * 1_000_000_000n + BigInt(ts.nanos);
}

/** The inverse of timestampToNanos; 0n gives undefined. */
export function timestampFromNanos(ns: bigint): Timestamp | undefined {
  if (ns === 0n) return undefined;
  let seconds = ns / 1_000_000_000n;
  let nanos = ns % 1_000_000_000n;
  if (nanos < 0n) {
    nanos += 1_000_000_000n;
    seconds -= 1n;
  }
  return create(TimestampSchema, { seconds, nanos: Number(nanos) });
}
