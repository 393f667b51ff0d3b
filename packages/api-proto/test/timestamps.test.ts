import { create } from '@bufbuild/protobuf';
import { TimestampSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { InvalidArgument } from '../src/errors.js';
import {
  fromTimestamp,
  GO_ZERO_SECONDS,
  isUnsetTimestamp,
  nowTimestamp,
  timestampFromNanos,
  timestampToNanos,
  toTimestamp,
} from '../src/timestamps.js';

describe('timestamps', () => {
  it('converts Date <-> Timestamp with millisecond precision', () => {
    const d = new Date('2024-05-06T07:08:09.123Z');
    const ts = toTimestamp(d)!;
    expect(ts.seconds).toBe(BigInt(Math.floor(d.getTime() / 1000)));
    expect(ts.nanos).toBe(123_000_000);
    expect(fromTimestamp(ts)?.toISOString()).toBe(d.toISOString());
    const before = toTimestamp(new Date(-1500))!;
    expect([before.seconds, before.nanos]).toEqual([-2n, 500_000_000]);
  });

  it('treats Go zero time, {0,0} and missing as unset, and never sends 1970', () => {
    const goZero = create(TimestampSchema, { seconds: GO_ZERO_SECONDS, nanos: 0 });
    expect(GO_ZERO_SECONDS).toBe(-62135596800n);
    expect(isUnsetTimestamp(goZero)).toBe(true);
    expect(fromTimestamp(goZero)).toBeUndefined();
    expect(fromTimestamp(create(TimestampSchema, {}))).toBeUndefined();
    expect(fromTimestamp(undefined)).toBeUndefined();
    expect(toTimestamp(undefined)).toBeUndefined();
    expect(toTimestamp(new Date(0))).toBeUndefined();
    expect(() => toTimestamp(new Date('nope'))).toThrow(InvalidArgument);
  });

  it('nowTimestamp is current and monotonic; nanos round-trip', () => {
    const a = nowTimestamp();
    const b = nowTimestamp();
    expect(timestampToNanos(b) >= timestampToNanos(a)).toBe(true);
    // Current: the same second as Date.now(), give or take a stalled machine (not ms, not 0).
    expect(Math.abs(Number(a.seconds) - Date.now() / 1000)).toBeLessThan(60);
    const ns = 1_700_000_000_123_456_789n;
    expect(timestampToNanos(timestampFromNanos(ns))).toBe(ns);
    expect(timestampFromNanos(0n)).toBeUndefined();
    expect(timestampFromNanos(-1n)).toMatchObject({ seconds: -1n, nanos: 999_999_999 });
  });
});
