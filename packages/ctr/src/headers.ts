// A small WHATWG Headers, which the bundle (scripts/bundle.mjs, esbuild's `inject`) gives the code
// it bundles (Connect, @ctrd/api-proto, ctr) in place of the global one. On Node 22 and later the
// global Headers is undici's, loaded the first time anything touches it: 60-70 ms of CPU, more
// than the rest of a `ctr containers ls`, and Connect makes a Headers for every call. The global
// itself is left alone, so fetch() (the registry client) still gets undici's.
//
// Same behaviour as the standard for what gRPC calls use: names are case-insensitive and iterate
// lower-cased in sorted order, values are trimmed of HTTP whitespace, repeated values join with
// ", " (Set-Cookie kept apart), invalid names and values throw a TypeError.

type Init = Iterable<readonly [string, string]> | Record<string, string> | { forEach: unknown };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function checkName(name: string): string {
  const text = String(name);
  if (!TOKEN.test(text)) throw new TypeError(`Headers: invalid header name ${JSON.stringify(text)}`);
  return text.toLowerCase();
}

function checkValue(value: string): string {
  const text = String(value).replace(EDGE_WHITESPACE, '');
  if (/[\0\r\n]/.test(text))
    throw new TypeError(`Headers: invalid value for a header: ${JSON.stringify(text)}`);
  return text;
}

export class CtrHeaders {
  // One list of values per lower-cased name, in insertion order.
  readonly #map = new Map<string, string[]>();

  constructor(init?: Init) {
    if (init === undefined || init === null) return;
    if (typeof (init as { forEach?: unknown }).forEach === 'function' && !Array.isArray(init)) {
      (init as { forEach(cb: (value: string, key: string) => void): void }).forEach((value, key) => {
        this.append(key, value);
      });
    } else if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const pair of init as Iterable<readonly string[]>) {
        if (pair.length !== 2) throw new TypeError('Headers: each pair must be [name, value]');
        this.append(pair[0] as string, pair[1] as string);
      }
    } else {
      for (const [key, value] of Object.entries(init as Record<string, string>)) this.append(key, value);
    }
  }

  append(name: string, value: string): void {
    const key = checkName(name);
    const v = checkValue(value);
    const list = this.#map.get(key);
    if (list) list.push(v);
    else this.#map.set(key, [v]);
  }

  set(name: string, value: string): void {
    this.#map.set(checkName(name), [checkValue(value)]);
  }

  delete(name: string): void {
    this.#map.delete(checkName(name));
  }

  has(name: string): boolean {
    return this.#map.has(checkName(name));
  }

  get(name: string): string | null {
    const list = this.#map.get(checkName(name));
    return list === undefined ? null : list.join(', ');
  }

  getSetCookie(): string[] {
    return [...(this.#map.get('set-cookie') ?? [])];
  }

  *entries(): IterableIterator<[string, string]> {
    for (const key of [...this.#map.keys()].sort()) {
      const list = this.#map.get(key);
      if (!list) continue;
      if (key === 'set-cookie') for (const v of list) yield [key, v];
      else yield [key, list.join(', ')];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  forEach(callback: (value: string, key: string, parent: CtrHeaders) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'Headers';
  }
}

// The name esbuild's `inject` matches against the free identifier `Headers` in bundled code.
export { CtrHeaders as Headers };
