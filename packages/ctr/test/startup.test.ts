import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { versionLine } from '../src/cli.js';
import { CtrHeaders } from '../src/headers.js';
import { packageRoot } from './helpers.js';

// What keeps a ctr call short: the built bundle's layout (what each path loads) and the pieces that
// stand in for heavier ones.

const bundle = join(packageRoot, 'dist/bundle');

/** The files an ES module in the bundle imports statically (what loading it reads), itself included. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:from|import)\s*"(\.{1,2}\/[^"]+\.js)"/g)) {
    staticClosure(resolve(dirname(file), m[1] as string), seen);
  }
  return seen;
}

/** The chunk files an ES module in the bundle loads with import(). */
function dynamicImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/import\("(\.{1,2}\/[^"]+\.js)"\)/g)].map((m) =>
    resolve(dirname(file), m[1] as string),
  );
}

const read = (files: Set<string>) => [...files].map((f) => readFileSync(f, 'utf8')).join('\n');
// Markers of what each layer brings: oclif's package.json (inlined), Connect's error class, node:http2.
const OCLIF = /"@oclif\/core"/;
const CONNECT = /\.name\s*=\s*"ConnectError"/;
const HTTP2 = /node-builtin:node:http2/;

describe('the bundle (npm run build)', () => {
  it('answers --version from the entry alone: neither oclif nor the RPC stack is loaded', () => {
    expect(existsSync(join(bundle, 'cli.js'))).toBe(true);
    const text = read(staticClosure(join(bundle, 'cli.js')));
    expect(text).not.toMatch(OCLIF);
    expect(text).not.toMatch(CONNECT);
    expect(text).not.toMatch(HTTP2);
  });

  it('loads oclif for --help and commands, still without the RPC stack; a command brings it', () => {
    const [oclifMain, ...others] = dynamicImports(join(bundle, 'cli.js'));
    expect(others).toEqual([]);
    const help = read(staticClosure(oclifMain as string));
    expect(help).toMatch(OCLIF);
    expect(help).not.toMatch(CONNECT);
    expect(help).not.toMatch(HTTP2);
    const ls = read(staticClosure(join(bundle, 'commands/containers/ls.js')));
    expect(ls).toMatch(CONNECT);
    expect(ls).toMatch(HTTP2);
  });

  it('has one copy of oclif, shared by the entry and every command', () => {
    const chunks = new Set<string>();
    for (const f of [join(bundle, 'commands/version.js'), join(bundle, 'commands/containers/ls.js')]) {
      for (const c of staticClosure(f)) if (OCLIF.test(readFileSync(c, 'utf8'))) chunks.add(c);
    }
    const [oclifMain] = dynamicImports(join(bundle, 'cli.js'));
    for (const c of staticClosure(oclifMain as string))
      if (OCLIF.test(readFileSync(c, 'utf8'))) chunks.add(c);
    expect(chunks.size).toBe(1);
  });

  it('prints the version line oclif printed, for --version and -v, without a daemon', () => {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = spawnSync(process.execPath, [join(packageRoot, 'bin/run.js'), flag], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(
        `@ctrd/ctr/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`,
      );
    }
    expect(versionLine({ name: '@ctrd/ctr', version: '1.2.3' })).toMatch(
      /^@ctrd\/ctr\/1\.2\.3 linux-\S+ node-v\d+/,
    );
  });
});

describe('the bundled Headers', () => {
  type Op = (h: Headers | CtrHeaders) => unknown;
  const dump = (h: Headers | CtrHeaders) => [...h];
  const cases: [string, Op][] = [
    [
      'names are case-insensitive and listed sorted, lower case',
      (h) => {
        h.append('Content-Type', 'application/grpc');
        h.append('grpc-timeout', '10m');
        h.set('X-B', '1');
        h.append('x-a', ' 2 ');
        return [dump(h), h.get('CONTENT-TYPE'), h.has('x-A'), h.get('missing')];
      },
    ],
    [
      'repeated values join, set replaces, delete removes',
      (h) => {
        h.append('x-v', 'a');
        h.append('X-V', 'b');
        const joined = h.get('x-v');
        h.set('x-v', 'c');
        h.append('gone', '1');
        h.delete('GONE');
        return [joined, dump(h), h.has('gone')];
      },
    ],
    [
      'set-cookie stays apart',
      (h) => {
        h.append('Set-Cookie', 'a=1');
        h.append('set-cookie', 'b=2');
        return [dump(h), h.getSetCookie(), h.get('set-cookie')];
      },
    ],
    [
      'forEach passes value, name',
      (h) => {
        h.append('b', '2');
        h.append('a', '1');
        const seen: string[] = [];
        h.forEach((v, k) => {
          seen.push(`${k}=${v}`);
        });
        return [seen, [...h.keys()], [...h.values()]];
      },
    ],
  ];
  for (const [name, op] of cases) {
    it(`${name}, as the standard's`, () => {
      expect(op(new CtrHeaders() as unknown as Headers)).toEqual(op(new Headers()));
    });
  }

  it('is built from a record, pairs or another Headers, as the standard one', () => {
    const inits = [
      { A: '1', b: '2' },
      [
        ['a', '1'],
        ['A', '2'],
      ] as [string, string][],
      new Headers({ z: '9' }),
    ];
    for (const init of inits) expect([...new CtrHeaders(init)]).toEqual([...new Headers(init)]);
    expect([...new CtrHeaders(new CtrHeaders({ q: '1' }))]).toEqual([['q', '1']]);
  });

  it('refuses what the standard refuses', () => {
    expect(() => new CtrHeaders().append('bad name', 'x')).toThrow(TypeError);
    expect(() => new CtrHeaders().set('x', 'a\r\nb')).toThrow(TypeError);
    expect(() => new Headers().append('bad name', 'x')).toThrow(TypeError);
  });
});
