import { constants } from 'node:os';
import { UsageError } from './errors.js';

/** `SIGTERM`, `TERM`, `term` or `15` → 15. */
export function parseSignal(input: string): number {
  const text = input.trim().toUpperCase();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n < 65) return n;
  } else {
    const name = text.startsWith('SIG') ? text : `SIG${text}`;
    const n = (constants.signals as Record<string, number | undefined>)[name];
    if (n !== undefined) return n;
  }
  throw new UsageError(`signal "${input}": expected a name such as SIGTERM or KILL, or a number`);
}

/** Signals ctr passes on to the task it attached to (containerd's ctr forwards all but SIGURG/SIGCHLD). */
export const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
];
