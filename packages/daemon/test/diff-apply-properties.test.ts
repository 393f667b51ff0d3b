import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtrdError } from '@ctrd/api-proto';
import { type TarWriteEntry, writeTar } from '@ctrd/api-proto/tar';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../src/diff/apply.js';
import { getXattrs } from '../src/diff/xattrs.js';

// Random layers against a host canary: any sequence of directories, files with xattrs, symlinks
// (relative, absolute, into the canary, loops), hardlinks, whiteouts, opaque markers and fifos,
// over a small set of names so that entries collide, replace each other and go through each
// other's symlinks. Whatever happens to the layer (applied or refused), the canary is exactly as it
// was, nothing appears beside the root, and a refusal is one of the package's error classes.

const work = mkdtempSync(join(tmpdir(), 'ctrd-apply-prop-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const canary = join(work, 'canary');
mkdirSync(join(canary, 'd'), { recursive: true });
writeFileSync(join(canary, 'f'), 'host', { mode: 0o644 });
writeFileSync(join(canary, 'd', 'g'), 'nested', { mode: 0o600 });
symlinkSync('f', join(canary, 'l'));

function state(dir: string): unknown[] {
  const out: unknown[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    out.push([
      p,
      st.mode,
      st.uid,
      st.mtimeMs,
      st.ctimeMs,
      getXattrs(Buffer.from(p), ['user.x', 'user.y']),
      st.isFile() ? readFileSync(p, 'utf8') : st.isSymbolicLink() ? readlinkSync(p) : '',
    ]);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
  };
  walk(dir);
  return out;
}

const component = fc.constantFrom('a', 'b', 'c', '..', '.', 'd', 'f', 'l');
const relPath = fc.array(component, { minLength: 1, maxLength: 3 }).map((c) => c.join('/'));
const name = fc.oneof(
  { weight: 4, arbitrary: relPath },
  { weight: 1, arbitrary: relPath.map((p) => `${canary}/${p}`) },
  { weight: 1, arbitrary: relPath.map((p) => `../../..${canary}/${p}`) },
);
const linkTarget = fc.oneof(
  relPath,
  fc.constant(canary),
  fc.constant(`${canary}/d`),
  fc.constant(`${canary}/f`),
  fc.constant('/'),
  fc.constant('../../../..'),
  relPath.map((p) => `/${p}`),
);
const xattrs = fc.option(fc.dictionary(fc.constantFrom('user.x', 'user.y'), fc.string({ maxLength: 8 })), {
  nil: undefined,
});
const entry: fc.Arbitrary<TarWriteEntry> = fc.oneof(
  fc
    .record({ name, mode: fc.constantFrom(0o755, 0o700, 0o1777) })
    .map((e) => ({ ...e, type: 'dir' as const })),
  fc
    .record({ name, body: fc.string({ maxLength: 16 }), mode: fc.constantFrom(0o644, 0o4755), xattrs })
    .map(({ xattrs: x, body, ...e }) => ({
      ...e,
      type: 'file' as const,
      body: Buffer.from(body),
      ...(x ? { xattrs: x } : {}),
    })),
  fc.record({ name, linkname: linkTarget }).map((e) => ({ ...e, type: 'symlink' as const })),
  fc.record({ name, linkname: name }).map((e) => ({ ...e, type: 'hardlink' as const })),
  fc
    .record({ dir: fc.option(relPath, { nil: undefined }), what: fc.constantFrom('a', 'b', 'd', 'f', 'l') })
    .map(({ dir, what }) => ({ name: `${dir ? `${dir}/` : ''}.wh.${what}`, type: 'file' as const })),
  fc.option(relPath, { nil: undefined }).map((dir) => ({
    name: `${dir ? `${dir}/` : ''}.wh..wh..opq`,
    type: 'file' as const,
  })),
  name.map((n) => ({ name: n, type: 'fifo' as const, mode: 0o600 })),
);

describe.each([
  { label: 'openat2', noOpenat2: false },
  { label: 'descriptor walk', noOpenat2: true },
])('random layers never touch the host ($label)', ({ noOpenat2 }) => {
  it('leaves the canary and the root beside it unchanged, and fails only with ctrd errors', async () => {
    const before = state(canary);
    let applied = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 24 }), async (entries) => {
        runs++;
        const root = mkdtempSync(join(work, 'root-'));
        try {
          try {
            await applyLayer(root, writeTar(entries), { noOpenat2 });
            applied++;
          } catch (e) {
            if (!(e instanceof CtrdError)) throw e;
          }
          expect(state(canary)).toEqual(before);
          expect(readdirSync(work).sort()).toEqual(['canary', root.slice(work.length + 1)].sort());
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }),
      { numRuns: 150 },
    );
    // The property says something only if many layers go through.
    expect(applied / runs).toBeGreaterThan(0.2);
  });
});
