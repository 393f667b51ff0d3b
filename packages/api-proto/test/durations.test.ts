import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../src/index.js';

describe('Go durations', () => {
  it('reads what time.ParseDuration reads', () => {
    expect(parseGoDuration('1m0s')).toBe(60_000);
    expect(parseGoDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseGoDuration('500ms')).toBe(500);
    expect(parseGoDuration('.5s')).toBe(500);
    expect(parseGoDuration('1500us')).toBe(1.5);
    expect(parseGoDuration('0')).toBe(0);
  });

  // No sign, unlike Go: nothing in ctrd takes a negative duration.
  it('is undefined for text it does not take', () => {
    for (const bad of ['', ' ', '5', '5x', '1m 0s', 's', '-1s', '1m0'])
      expect(parseGoDuration(bad)).toBeUndefined();
  });

  it('prints like Duration.String', () => {
    expect(formatGoDuration(0)).toBe('0s');
    expect(formatGoDuration(500)).toBe('500ms');
    expect(formatGoDuration(60_000)).toBe('1m0s');
    expect(formatGoDuration(3_723_500)).toBe('1h2m3.5s');
  });
});
