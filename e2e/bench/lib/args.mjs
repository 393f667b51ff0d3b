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
