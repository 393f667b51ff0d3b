import { RE2JS, RE2JSException } from 're2js';
import { InvalidArgument } from './errors.js';

// Regular expressions that come from a request or a command line (the filters' `~=`). containerd
// compiles them with Go's regexp, which is RE2: the time to match is linear in the input, whatever
// the pattern. A JS RegExp backtracks, so `^(a|a)+$` against a long stored value would hold the
// event loop, and with it the whole daemon, for good. re2js is RE2 in pure JS, with Go's syntax
// (Perl flags: `(?i)`, `(?P<name>…)`, `\pL`, `[[:alpha:]]`, `\z`...) and Go's refusals
// (backreferences, lookaround, repeat counts over 1000), with Go's error texts.
//
// Linear is not free: when RE2's DFA runs out of its state budget it falls back to simulating the
// NFA, at a cost per input character that grows with the program. Measured on this machine, the
// worst patterns of 256 instructions (alternations of `[ab]*a[ab]{20}`, `(?i)` variants) take up
// to ~100 ms on a 4 KiB label value; at 400 instructions, 250 ms. So the program of a request's
// patterns is bounded, as is each pattern's text (parse and compile cost).

/** Longest pattern accepted, in characters. */
export const MAX_REGEXP_LENGTH = 1024;
/** Largest compiled program accepted (RE2 instructions), for one pattern or a request's patterns. */
export const MAX_REGEXP_PROGRAM = 256;

/** A compiled pattern; `test` is an unanchored search, as Go's MatchString. */
export interface Regexp {
  readonly source: string;
  /** RE2 instructions: a rough measure of the cost of each match. */
  readonly programSize: number;
  test(input: string): boolean;
}

function shown(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/**
 * Compiles `source` with RE2 (Go) syntax. Throws InvalidArgument, prefixed by `what`, for a
 * pattern RE2 refuses or one over the bounds above.
 */
export function compileRegexp(source: string, what = 'regular expression'): Regexp {
  if (source.length > MAX_REGEXP_LENGTH) {
    throw new InvalidArgument(
      `${what}: regular expression ${shown(source)} is ${source.length} characters, more than the maximum of ${MAX_REGEXP_LENGTH}`,
    );
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    // re2js throws its own classes for bad patterns; anything else is a bug, not bad input.
    if (!(e instanceof RE2JSException)) throw e;
    throw new InvalidArgument(`${what}: ${e.message}`, { cause: e });
  }
  const programSize = re.programSize();
  if (programSize > MAX_REGEXP_PROGRAM) {
    throw new InvalidArgument(
      `${what}: regular expression ${shown(source)} is too complex (${programSize} RE2 instructions, more than the maximum of ${MAX_REGEXP_PROGRAM}): use a simpler pattern, or == for an exact value`,
    );
  }
  return { source, programSize, test: (input) => re.test(input) };
}
