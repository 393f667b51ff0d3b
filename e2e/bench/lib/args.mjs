import { parseArgs } from 'node:util';

/** `--name value` flags of a bench, with defaults; exits with a usage line on a bad flag. */
export function benchArgs(usage, options, argv = process.argv.slice(2)) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`${e.message}\nusage: ${usage}\n`);
    process.exit(2);
  }
}

export function intFlag(value, name, min = 1) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} ${value}: expected an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

/** `--target ctrd|containerd|both` as the list of daemons to run; exits with a usage error otherwise. */
export function daemonTargets(value) {
  const targets = value === 'both' ? ['ctrd', 'containerd'] : [value];
  for (const t of targets)
    if (t !== 'ctrd' && t !== 'containerd') {
      process.stderr.write(`--target ${t}: expected ctrd, containerd or both\n`);
      process.exit(2);
    }
  return targets;
}

/** Progress on stderr (stdout carries the report). */
export const log = (msg) => process.stderr.write(`${msg}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
