const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go-style duration ("1m30s", "500ms", "2h") into milliseconds, the form containerd's ctr takes
 * for --timeout. A bare number is read as seconds.
 */
export function parseDuration(input: string): number {
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    re.lastIndex = index;
    const match = re.exec(text);
    if (!match)
      throw new Error(`invalid duration "${input}": use a number with a unit, e.g. 10s, 500ms, 1m30s`);
    total += Number(match[1]) * (UNITS[match[2] as string] as number);
    index = re.lastIndex;
  }
  if (text === '') throw new Error('invalid duration "": use a number with a unit, e.g. 10s');
  return total;
}
