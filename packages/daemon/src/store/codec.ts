// Small conversions between rows and messages, shared by the stores.

export function labelsToText(labels: Readonly<Record<string, string>> | undefined): string {
  return JSON.stringify(labels ?? {});
}

export function labelsFromText(text: string): Record<string, string> {
  return JSON.parse(text) as Record<string, string>;
}

/** Nanoseconds since the epoch, as SQLite's 64-bit integer. */
export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}
