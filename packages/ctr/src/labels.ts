import { UsageError } from './errors.js';

/** The OCI bundle a container was started from (`containers start ID BUNDLE`), shown as its PATH. */
export const BUNDLE_LABEL = 'io.ctrd/bundle';

/** `key=value` arguments; `key=` (or a bare `key`) means "clear this label", as in containerd's ctr. */
export function parseLabelArgs(args: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq === -1 ? arg : arg.slice(0, eq);
    if (key === '') throw new UsageError(`label "${arg}": expected KEY=VALUE`);
    labels[key] = eq === -1 ? '' : arg.slice(eq + 1);
  }
  return labels;
}

/** `a=1,b=2`, keys sorted so output is stable. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  return Object.keys(labels ?? {})
    .sort()
    .map((k) => `${k}=${(labels as Record<string, string>)[k]}`)
    .join(',');
}

export function sortedLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels ?? {}).sort()) out[k] = (labels as Record<string, string>)[k] as string;
  return out;
}
