import { describe, expect, it } from 'vitest';
import { InvalidArgument } from '../src/errors.js';
import type { Adaptor } from '../src/filters.js';
import { adaptObject, matchAll, parseFilter, parseFilters } from '../src/filters.js';

// A corpus in the spirit of containerd's filter tests.
interface Item {
  name: string;
  other?: string;
  labels: Record<string, string>;
}
const corpus: Item[] = [
  { name: 'foo', labels: { foo: 'true' } },
  { name: 'bar', labels: { foo: 'omg_asdf.asdf-qwer' } },
  { name: 'foo', labels: { 'more complex label': 'present', bar: 'true' } },
  { name: 'bar', labels: { bar: 'true' } },
  { name: 'fooer', labels: { 'more complex label with \\ and "': 'present' } },
  { name: 'fooer', labels: { 'more complex label with \\ and ".post': 'present' } },
  { name: 'baz', other: 'too complex, yo', labels: {} },
  { name: 'bazo', other: 'abc', labels: {} },
  { name: 'compound', labels: { 'containerd.io/gc.ref': 'x' } },
];
const adapt = (i: Item): Adaptor => adaptObject({ name: i.name, other: i.other }, { labels: i.labels });
const run = (...filters: string[]): number[] =>
  matchAll(parseFilters(filters), corpus, adapt).map((i) => corpus.indexOf(i));

describe('filters: matching', () => {
  it('empty matches all; presence; equality; labels', () => {
    expect(run()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run('')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run('name')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run('labels.foo')).toEqual([0, 1]);
    expect(run('labels.foo,name')).toEqual([0, 1]);
    expect(run('labels.foo==true')).toEqual([0]);
    expect(run('labels.foo==omg_asdf.asdf-qwer')).toEqual([1]);
    expect(run('name==bar')).toEqual([1, 3]);
    expect(run('name==bar,labels.bar')).toEqual([3]);
    expect(run('name==bar,labels.bar==true')).toEqual([3]);
    expect(run('name==bar,labels.bar==wrong')).toEqual([]);
  });

  it('!= is true when the field is absent', () => {
    expect(run('name!=bar')).toEqual([0, 2, 4, 5, 6, 7, 8]);
    expect(run('labels.foo!=true')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('quoting and regular expressions', () => {
    expect(run('other=="too complex, yo"')).toEqual([6]);
    // unanchored, as in Go: "too complex, yo" has a "c"
    expect(run('other~=[abc]+,name!=foo')).toEqual([6, 7]);
    expect(run('other~=/[abc]+/,name!=foo')).toEqual([6, 7]);
    expect(run('other~=|^[abc]{1,3}$|,name!=foo')).toEqual([7]);
    expect(run('other~=/[abc]{0,1}"\\//,name!=foo')).toEqual([]);
    expect(run('name==foo,labels."more complex label"')).toEqual([2]);
    expect(run('labels."more complex label with \\\\ and \\""==present')).toEqual([4]);
    expect(run('labels."more complex label with \\\\ and \\"".post==present')).toEqual([5]);
  });

  it('labels.a.b looks up key "a.b"; several filters are ORed', () => {
    expect(run('labels."containerd.io/gc.ref"==x')).toEqual([8]);
    expect(run('name==baz', 'name==bazo')).toEqual([6, 7]);
    expect(run('name==nothing', '')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseFilter('labels.a.b==c').match(adaptObject({}, { labels: { 'a.b': 'c' } }))).toBe(true);
  });

  it('regular expressions: Go (RE2) syntax; patterns RE2 refuses are InvalidArgument naming the filter', () => {
    const f = (s: string, v: string) => parseFilter(s).match(adaptObject({ v }));
    expect(f('v~="(?i)^ABC$"', 'abc')).toBe(true);
    expect(f('v~="(?P<x>a)b"', 'ab')).toBe(true);
    expect(f('v~="(?<x>a)b"', 'ab')).toBe(true);
    expect(f('v~=^\\pL+$', 'héllo')).toBe(true);
    // In a quoted value a backslash is escaped, as in a Go string literal.
    expect(f('v~="^[[:alpha:]]+\\\\z"', 'abc')).toBe(true);
    expect(f('v~=^\\Qa.b\\E$', 'a.b')).toBe(true);
    expect(f('v~=^\\Qa.b\\E$', 'axb')).toBe(false);
    expect(f('v~="(?s)^a.b$"', 'a\nb')).toBe(true);
    expect(f('v~=^a.b$', 'a\nb')).toBe(false);
    expect(f('v~=a$', 'a\n')).toBe(false);
    expect(f('v~=^.$', '😀')).toBe(true);
    expect(f('topic~="/tasks/"', 'x')).toBe(false);
    expect(parseFilter('topic~="^/tasks/"').match(adaptObject({ topic: '/tasks/exit' }))).toBe(true);
    const bad: [string, RegExp][] = [
      ['v~="("', /^filter "v~=\\"\(\\"": error parsing regexp: missing closing \): `\(`/],
      ['v~=(a)\\1', /error parsing regexp: invalid escape sequence: `\\1`/],
      ['v~="(?=a)"', /error parsing regexp: invalid or unsupported Perl syntax: `\(\?=`/],
      ['v~="(?!a)"', /invalid or unsupported Perl syntax/],
      ['v~="(?<=a)b"', /error parsing regexp/],
      ['v~=a{1001}', /invalid repeat count/],
      ['v~=a++', /invalid nested repetition operator/],
      ['v~=\\Z', /invalid escape sequence/],
      [`v~="${'a'.repeat(2000)}"`, /is 2000 characters, more than the maximum of 1024/],
      ['v~="[a-z]{300}"', /too complex \(\d+ RE2 instructions, more than the maximum of 256\)/],
    ];
    for (const [s, message] of bad) {
      expect(() => parseFilter(s), s).toThrow(InvalidArgument);
      expect(() => parseFilter(s), s).toThrow(message);
    }
    // A bad pattern fails the request even in an alternative that is never reached.
    expect(() => parseFilters(['', 'v~=('])).toThrow(InvalidArgument);
    expect(() => parseFilters(['v==x', 'v~=('])).toThrow(/^filter "v~=\(": error parsing regexp/);
  });

  it('bounds the work one request can ask for', () => {
    // The patterns' programs together, not only each one.
    const eight = Array.from({ length: 8 }, (_, i) => `v~="^[a-z]{30}${i}"`).join(',');
    expect(() => parseFilter(eight)).toThrow(/regular expressions too complex: \d+ RE2 instructions in all/);
    // The same pattern twice is compiled once and counted once.
    expect(() => parseFilters(['v~="^[a-z]{200}"', 'v~="^[a-z]{200}"'])).not.toThrow();
    expect(() => parseFilters(['a==b'.padEnd(40 * 1024, 'b'), 'a==b'.padEnd(30 * 1024, 'b')])).toThrow(
      /filters: \d+ characters in all, more than the maximum of 65536/,
    );
    expect(() => parseFilter('a==b'.padEnd(64 * 1024, 'b'))).not.toThrow();
  });

  it('the match of a pattern is linear: ^(a|a)+$ on a long value answers at once', () => {
    const f = parseFilter('v~=^(a|a)+$');
    const started = performance.now();
    expect(f.match(adaptObject({ v: `${'a'.repeat(4000)}b` }))).toBe(false);
    expect(f.match(adaptObject({ v: 'a'.repeat(4000) }))).toBe(true);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('filters: parse errors match containerd', () => {
  const cases: [string, string][] = [
    [
      'labels.|foo|==omg_asdf.asdf-qwer',
      'filters: parse error: [labels. >|||< foo|==omg_asdf.asdf-qwer]: invalid quote encountered',
    ],
    [
      'labels.?"more complex label with \\\\ and \\"".post==present',
      'filters: parse error: [labels. >|?|< "more complex label with \\\\ and \\"".post==present]: expected field or quoted',
    ],
    ['name==foo,', 'filters: parse error: [name==foo,]: expected field or quoted'],
    ['labels.', 'filters: parse error: [labels.]: expected field or quoted'],
    ['image~=,id?=?fbaq', 'filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted'],
    [
      'labels.ns/key==value',
      'filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated',
    ],
    ['labels.key==/value', 'filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated'],
  ];
  for (const [input, message] of cases) {
    it(JSON.stringify(input), () => {
      expect(() => parseFilters([input])).toThrow(InvalidArgument);
      expect(() => parseFilters([input])).toThrow(message);
    });
  }

  it('other bad inputs', () => {
    for (const s of [
      '==x',
      'a===b',
      'a=!b',
      'a==',
      'a b',
      'a,,b',
      'a."x',
      'a=="\\q"',
      'a\u0000',
      'a=="x\ny"',
      'a==\ud800',
    ]) {
      expect(() => parseFilter(s), JSON.stringify(s)).toThrow(InvalidArgument);
    }
  });
});

describe('filters: fuzz', () => {
  // Deterministic PRNG so a failure can be replayed.
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s * 1664525 + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }
  const alphabet = [
    'a',
    'b',
    'Z',
    '0',
    '_',
    '.',
    ',',
    '=',
    '!',
    '~',
    '"',
    '/',
    '|',
    '\\',
    ' ',
    '\t',
    'x',
    '(',
    ')',
    '*',
    '+',
    '?',
    '[',
    ']',
    'é',
    '\u0000',
    '\n',
    'labels',
    'name',
    '==',
    '!=',
    '~=',
  ];

  it('random input never crashes: it parses or throws InvalidArgument', () => {
    const next = rng(42);
    const adaptor = adaptObject({ a: 'x', name: 'n' }, { labels: { b: 'y' } });
    for (let i = 0; i < 20000; i++) {
      const len = Math.floor(next() * 24);
      let s = '';
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
      try {
        const f = parseFilter(s);
        expect(typeof f.match(adaptor)).toBe('boolean');
      } catch (e) {
        if (!(e instanceof InvalidArgument)) throw new Error(`input ${JSON.stringify(s)}: ${String(e)}`);
      }
    }
  });

  it('well-formed random selectors always parse and round-trip their values', () => {
    const next = rng(7);
    const word = () => {
      let w = '';
      const n = 1 + Math.floor(next() * 8);
      for (let i = 0; i < n; i++) w += 'abcXYZ019_'[Math.floor(next() * 10)];
      return w;
    };
    for (let i = 0; i < 2000; i++) {
      const key = word();
      const value = `${word()}.${word()}-${word()}`;
      const f = parseFilter(`labels."${key}.x"==${value},name!="${value}"`);
      expect(f.alternatives[0]).toEqual([
        { fieldpath: ['labels', `${key}.x`], operator: '==', value },
        { fieldpath: ['name'], operator: '!=', value },
      ]);
      expect(f.match(adaptObject({ name: 'n' }, { labels: { [`${key}.x`]: value } }))).toBe(true);
    }
  });
});
