import { InvalidArgument } from './errors.js';
import { compileRegexp, MAX_REGEXP_PROGRAM, type Regexp } from './regexp.js';
import { filterInSlices, type SliceOptions } from './time-slice.js';

// containerd's filter language (filters/parser.go, scanner.go, quote.go), reimplemented so our
// servers accept exactly the strings stock clients send:
//
//   filters   := selector ("," selector)*        AND
//   selector  := fieldpath [op value]            no op: presence test
//   fieldpath := field ("." field)*              field: [A-Za-z0-9_]+ or "quoted"
//   op        := "==" | "!=" | "~="              ~= is a regular expression
//   value     := a run up to "," or space, or "quoted" (~= also /quoted/ and |quoted|)
//
// Several filter strings are ORed; an empty string matches everything.
//
// `~=` patterns are RE2 (regexp.ts), compiled when the filter is parsed: a pattern RE2 refuses is
// InvalidArgument before any object is looked at. (containerd logs it and matches nothing; an
// error tells the user why the list is empty.)

export type Operator = 'present' | '==' | '!=' | '~=';

export interface Selector {
  readonly fieldpath: readonly string[];
  readonly operator: Operator;
  readonly value: string;
}

export interface FieldValue {
  value: string;
  present: boolean;
}

/** Looks a fieldpath up on the object being filtered. */
export type Adaptor = (fieldpath: readonly string[]) => FieldValue;

export interface Filter {
  /** OR of ANDs; an empty outer list, or any empty inner list, matches everything. */
  readonly alternatives: readonly (readonly Selector[])[];
  match(adaptor: Adaptor): boolean;
}

/**
 * Longest filter text of one request (all its strings), in characters: parsing costs about
 * 0.15 µs a character, and every selector is tried on every object listed.
 */
export const MAX_FILTERS_LENGTH = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// scanner

const EOF = -1;
const ILLEGAL = -2;

type Token =
  | { kind: 'eof' | 'illegal'; pos: number; text: string }
  | { kind: 'quoted' | 'value' | 'field' | 'separator' | 'operator'; pos: number; text: string }
  | { kind: 'char'; pos: number; text: string };

const isFieldRune = (c: number): boolean =>
  c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
const isOperatorRune = (c: number): boolean => c === 0x3d || c === 0x21 || c === 0x7e; // = ! ~
const isQuoteRune = (c: number): boolean => c === 0x2f || c === 0x7c || c === 0x22; // / | "
const isSeparatorRune = (c: number): boolean => c === 0x2c || c === 0x2e; // , .
const isSpace = (c: number): boolean => c >= 0 && /^\s$/u.test(String.fromCodePoint(c));
// Go: letters, digits, numbers, graphic or punctuation, except ',' and space.
const isValueRune = (c: number): boolean =>
  c >= 0 && c !== 0x2c && !isSpace(c) && /^[\p{L}\p{N}\p{P}\p{S}\p{M}]$/u.test(String.fromCodePoint(c));

function digitVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return 16;
}

class Scanner {
  pos = 0; // start of the current rune
  ppos = 0; // end of the current rune
  valueMode = false;
  err = '';

  constructor(readonly input: string) {}

  next(): number {
    if (this.ppos >= this.input.length) {
      this.pos = this.ppos;
      return EOF;
    }
    this.pos = this.ppos;
    const c = this.input.codePointAt(this.ppos) ?? EOF;
    this.ppos += c > 0xffff ? 2 : 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      this.error('rune error');
      return ILLEGAL;
    }
    if (c === 0) {
      this.error('unexpected null');
      return ILLEGAL;
    }
    return c;
  }

  peek(): number {
    const { pos, ppos } = this;
    const c = this.next();
    this.pos = pos;
    this.ppos = ppos;
    return c;
  }

  scan(): Token {
    let c = this.next();
    let pos = this.pos;
    for (;;) {
      if (c === EOF) return { kind: 'eof', pos: this.pos, text: '' };
      if (c === ILLEGAL) return { kind: 'illegal', pos: this.pos, text: '' };
      if (isQuoteRune(c)) {
        const ok = this.scanQuoted(c);
        return { kind: ok ? 'quoted' : 'illegal', pos, text: this.input.slice(pos, this.ppos) };
      }
      if (isSeparatorRune(c)) {
        this.valueMode = false;
        return { kind: 'separator', pos, text: this.input.slice(pos, this.ppos) };
      }
      if (isOperatorRune(c)) {
        while (isOperatorRune(this.peek())) this.next();
        this.valueMode = true;
        return { kind: 'operator', pos, text: this.input.slice(pos, this.ppos) };
      }
      if (isSpace(c)) {
        c = this.next();
        pos = this.pos;
        continue;
      }
      if (this.valueMode) {
        while (isValueRune(this.peek())) this.next();
        this.valueMode = false;
        return { kind: 'value', pos, text: this.input.slice(pos, this.ppos) };
      }
      if (isFieldRune(c)) {
        while (isFieldRune(this.peek())) this.next();
        return { kind: 'field', pos, text: this.input.slice(pos, this.ppos) };
      }
      return { kind: 'char', pos: this.pos, text: String.fromCodePoint(c) };
    }
  }

  private scanQuoted(quote: number): boolean {
    let illegal = false;
    let c = this.next();
    while (c !== quote) {
      if (c === 0x0a || c < 0) {
        this.error('quoted literal not terminated');
        return false;
      }
      if (c === 0x5c) {
        const [next, legal] = this.scanEscape(quote);
        c = next;
        if (!legal) illegal = true;
      } else {
        c = this.next();
      }
    }
    return !illegal;
  }

  private scanEscape(quote: number): [number, boolean] {
    const c = this.next();
    switch (c) {
      case 0x61: // a b f n r t v \
      case 0x62:
      case 0x66:
      case 0x6e:
      case 0x72:
      case 0x74:
      case 0x76:
      case 0x5c:
      case quote:
        return [this.next(), true];
      case 0x78: // x
        return this.scanDigits(this.next(), 16, 2);
      case 0x75: // u
        return this.scanDigits(this.next(), 16, 4);
      case 0x55: // U
        return this.scanDigits(this.next(), 16, 8);
      default:
        if (c >= 0x30 && c <= 0x37) return this.scanDigits(c, 8, 3);
        this.error('illegal escape sequence');
        return [c, false];
    }
  }

  private scanDigits(first: number, base: number, count: number): [number, boolean] {
    let c = first;
    let n = count;
    while (n > 0 && digitVal(c) < base) {
      c = this.next();
      n--;
    }
    if (n > 0) {
      this.error('illegal numeric escape sequence');
      return [c, false];
    }
    return [c, true];
  }

  private error(msg: string): void {
    if (this.err === '') this.err = msg;
  }
}

// ---------------------------------------------------------------------------------------------
// unquoting (Go's strconv rules, with / and | treated like ")

function unquote(s: string): string | undefined {
  if (s.length < 2) return undefined;
  const quote = s[0]!;
  if (quote !== s[s.length - 1]) return undefined;
  if (quote !== '"' && quote !== '/' && quote !== '|') return undefined;
  const body = s.slice(1, -1);
  if (body.includes('\n')) return undefined;
  if (!body.includes('\\') && !body.includes(quote)) return body;
  let out = '';
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === quote) return undefined;
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      out += String.fromCodePoint(cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[i + 1];
    i += 2;
    switch (e) {
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = body.slice(i, i + n);
        if (hex.length < n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
        const v = Number.parseInt(hex, 16);
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff && e !== 'x')) return undefined;
        out += String.fromCodePoint(v);
        i += n;
        break;
      }
      case '"':
      case "'":
      case '|':
      case '/':
        if (e !== quote) return undefined;
        out += e;
        break;
      default: {
        if (e === undefined || e < '0' || e > '7') return undefined;
        const oct = body.slice(i - 1, i + 2);
        if (!/^[0-7]{3}$/.test(oct)) return undefined;
        const v = Number.parseInt(oct, 8);
        if (v > 255) return undefined;
        out += String.fromCharCode(v);
        i += 2;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// parser

class ParseError extends Error {}

class Parser {
  private readonly scanner: Scanner;

  constructor(private readonly input: string) {
    this.scanner = new Scanner(input);
  }

  parse(): Selector[] {
    const selectors = [this.selector()];
    for (;;) {
      const c = this.scanner.peek();
      if (c === EOF) return selectors;
      if (c === 0x2c) {
        const t = this.scanner.scan();
        if (t.kind !== 'separator') throw this.err(t.pos, 'expected a separator');
        selectors.push(this.selector());
        continue;
      }
      throw this.err(this.scanner.ppos, `unexpected input: ${c >= 0 ? String.fromCodePoint(c) : 'EOF'}`);
    }
  }

  private selector(): Selector {
    const fieldpath = this.fieldpath();
    const c = this.scanner.peek();
    if (c === 0x2c || c === EOF) return { fieldpath, operator: 'present', value: '' };
    const operator = this.operator();
    const value = this.value(operator === '~=');
    return { fieldpath, operator, value };
  }

  private fieldpath(): string[] {
    const fields = [this.field()];
    while (this.scanner.peek() === 0x2e) {
      const t = this.scanner.scan();
      if (t.kind !== 'separator') throw this.err(t.pos, 'expected a field separator (`.`)');
      fields.push(this.field());
    }
    return fields;
  }

  private field(): string {
    const t = this.scanner.scan();
    if (t.kind === 'field') return t.text;
    if (t.kind === 'quoted') return this.unquote(t.pos, t.text, false);
    if (t.kind === 'illegal') throw this.err(t.pos, this.scanner.err);
    throw this.err(t.pos, 'expected field or quoted');
  }

  private operator(): Operator {
    const t = this.scanner.scan();
    if (t.kind === 'operator') {
      if (t.text === '==' || t.text === '!=' || t.text === '~=') return t.text;
      throw this.err(t.pos, `unsupported operator ${JSON.stringify(t.text)}`);
    }
    if (t.kind === 'illegal') throw this.err(t.pos, this.scanner.err);
    throw this.err(t.pos, 'expected an operator ("=="|"!="|"~=")');
  }

  private value(allowAltQuotes: boolean): string {
    const t = this.scanner.scan();
    if (t.kind === 'value' || t.kind === 'field') return t.text;
    if (t.kind === 'quoted') return this.unquote(t.pos, t.text, allowAltQuotes);
    if (t.kind === 'illegal') throw this.err(t.pos, this.scanner.err);
    throw this.err(t.pos, 'expected value or quoted');
  }

  private unquote(pos: number, s: string, allowAlts: boolean): string {
    if (!allowAlts && s[0] !== '"') throw this.err(pos, 'invalid quote encountered');
    const out = unquote(s);
    if (out === undefined) throw this.err(pos, 'unquoting failed: invalid syntax');
    return out;
  }

  private err(pos: number, msg: string): ParseError {
    const input = this.input;
    if (pos < input.length) {
      const cp = input.codePointAt(pos)!;
      const end = pos + (cp > 0xffff ? 2 : 1);
      return new ParseError(
        `filters: parse error: [${input.slice(0, pos)} >|${input.slice(pos, end)}|< ${input.slice(end)}]: ${msg}`,
      );
    }
    return new ParseError(`filters: parse error: [${input}]: ${msg}`);
  }
}

// ---------------------------------------------------------------------------------------------
// matching

function matchSelector(sel: Selector, adaptor: Adaptor, regexps: ReadonlyMap<string, Regexp>): boolean {
  const { value, present } = adaptor(sel.fieldpath);
  switch (sel.operator) {
    case 'present':
      return present;
    case '==':
      return present && value === sel.value;
    case '!=':
      return value !== sel.value;
    case '~=':
      // Compiled by makeFilter for every ~= selector.
      return regexps.get(sel.value)!.test(value);
  }
}

/** Compiles each distinct `~=` pattern once; InvalidArgument naming the filter when one is bad. */
function compilePatterns(alternatives: readonly (readonly Selector[])[], sources: readonly string[]) {
  const regexps = new Map<string, Regexp>();
  let program = 0;
  alternatives.forEach((sels, i) => {
    for (const sel of sels) {
      if (sel.operator !== '~=' || regexps.has(sel.value)) continue;
      const re = compileRegexp(sel.value, `filter ${JSON.stringify(sources[i])}`);
      program += re.programSize;
      if (program > MAX_REGEXP_PROGRAM) {
        throw new InvalidArgument(
          `filters: regular expressions too complex: ${program} RE2 instructions in all, more than the maximum of ${MAX_REGEXP_PROGRAM}: use fewer or simpler patterns`,
        );
      }
      regexps.set(sel.value, re);
    }
  });
  return regexps;
}

function makeFilter(alternatives: Selector[][], sources: readonly string[]): Filter {
  const regexps = compilePatterns(alternatives, sources);
  return {
    alternatives,
    match(adaptor) {
      if (alternatives.length === 0) return true;
      return alternatives.some((sels) => sels.every((s) => matchSelector(s, adaptor, regexps)));
    },
  };
}

function parseOne(s: string): Selector[] {
  if (s === '') return [];
  try {
    return new Parser(s).parse();
  } catch (e) {
    if (e instanceof ParseError) throw new InvalidArgument(e.message);
    throw e;
  }
}

function checkLength(filters: readonly string[]): void {
  let total = 0;
  for (const f of filters) total += f.length;
  if (total > MAX_FILTERS_LENGTH) {
    throw new InvalidArgument(
      `filters: ${total} characters in all, more than the maximum of ${MAX_FILTERS_LENGTH}: filter more simply`,
    );
  }
}

/**
 * Parses one filter string (comma = AND). Throws InvalidArgument on a syntax error or a bad
 * regular expression.
 */
export function parseFilter(s: string): Filter {
  checkLength([s]);
  return makeFilter(s === '' ? [] : [parseOne(s)], [s]);
}

/** Parses several filter strings, ORed, as the List/Subscribe rpcs take them. */
export function parseFilters(filters: readonly string[] | undefined): Filter {
  const sources = filters ?? [];
  checkLength(sources);
  const alternatives = sources.map(parseOne);
  // Any empty string matches everything, so the whole OR does; its patterns are still checked.
  const filter = makeFilter(alternatives, sources);
  if (alternatives.some((a) => a.length === 0)) return makeFilter([], []);
  return filter;
}

/**
 * An adaptor over plain fields and label-like maps: `fields` answers one-element fieldpaths
 * (`id`, `image`, `runtime.name` joined with dots), `maps` answers `labels.<key>` where the rest
 * of the fieldpath is joined with dots, so `labels.a.b` looks up key `a.b` as containerd does.
 */
export function adaptObject(
  fields: Readonly<Record<string, string | undefined>>,
  maps: Readonly<Record<string, Readonly<Record<string, string>> | undefined>> = {},
): Adaptor {
  return (fieldpath) => {
    if (fieldpath.length === 0) return { value: '', present: false };
    const head = fieldpath[0]!;
    if (fieldpath.length > 1 && Object.hasOwn(maps, head)) {
      const map = maps[head];
      const key = fieldpath.slice(1).join('.');
      if (map && Object.hasOwn(map, key)) return { value: map[key]!, present: true };
      return { value: '', present: false };
    }
    const name = fieldpath.join('.');
    if (Object.hasOwn(fields, name)) {
      const value = fields[name];
      if (value !== undefined) return { value, present: value !== '' };
    }
    return { value: '', present: false };
  };
}

/** The items that match `filter`. */
export function matchAll<T>(filter: Filter, items: Iterable<T>, adapt: (item: T) => Adaptor): T[] {
  const out: T[] = [];
  for (const item of items) if (filter.match(adapt(item))) out.push(item);
  return out;
}

/**
 * matchAll in slices of a few ms with a turn of the event loop between them (time-slice.ts): the
 * form for lists that may be long. Same results, same order.
 */
export async function matchAllSliced<T>(
  filter: Filter,
  items: Iterable<T>,
  adapt: (item: T) => Adaptor,
  opts: SliceOptions = {},
): Promise<T[]> {
  if (filter.alternatives.length === 0) return [...items];
  return filterInSlices(items, (item) => filter.match(adapt(item)), opts);
}
