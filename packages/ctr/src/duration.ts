import { parseGoDuration } from '@ctrd/api-proto/client';

/**
 * Parses a Go-style duration ("1m30s", "500ms", "2h") into milliseconds, the form containerd's ctr takes
 * for --timeout. A bare number is read as seconds.
 */
export function parseDuration(input: string): number {
  const text = input.trim();
  if (text === '') throw new Error('invalid duration "": use a number with a unit, e.g. 10s');
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const ms = parseGoDuration(text);
  if (ms === undefined)
    throw new Error(`invalid duration "${input}": use a number with a unit, e.g. 10s, 500ms, 1m30s`);
  return ms;
}
