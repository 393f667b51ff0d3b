import { InvalidArgument, ResourceExhausted } from '../errors.js';
import { ByteSource } from './byte-source.js';
import { BLOCK, field, headerFormat, isZeroBlock, readNumber, readString, verifyChecksum } from './header.js';
import { type PaxRecords, paxInteger, parsePax, paxString, paxTime } from './pax.js';
import type { TarEntry, TarEntryType } from './types.js';

// A streaming tar reader: one pass over the bytes, no seeking, memory bounded by the header
// caps (a PAX header or GNU long name is the only thing held whole). Every header is
// checksummed, and an archive that ends anywhere but after its end-of-archive marker is an
// error, so a truncated layer never passes for a short one.

export interface TarReaderOptions {
  signal?: AbortSignal;
  /** Largest PAX extended header accepted (default 1 MiB). */
  maxPaxSize?: number;
  /** Longest name or link target accepted, from any encoding (default 64 KiB). */
  maxNameLength?: number;
  /** Accept an archive whose stream ends at a header boundary without the two zero blocks. */
  allowMissingEnd?: boolean;
  /**
   * Read the source to its end after the end-of-archive marker (so a hash over the stream covers
   * the whole blob, as containerd's apply does). Default false: stop at the marker.
   */
  drainTrailing?: boolean;
}

const DEFAULT_MAX_PAX = 1024 * 1024;
const DEFAULT_MAX_NAME = 64 * 1024;

const TYPES: Readonly<Record<string, TarEntryType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chardev',
  '4': 'blockdev',
  '5': 'dir',
  '6': 'fifo',
};

/** Iterates the entries of a tar stream. */
export class TarReader implements AsyncIterable<TarEntry> {
  private used = false;

  constructor(
    private readonly source: AsyncIterable<Uint8Array>,
    private readonly options: TarReaderOptions = {},
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<TarEntry> {
    if (this.used) throw new InvalidArgument('tar: a TarReader can be iterated only once');
    this.used = true;
    return readTar(this.source, this.options);
  }
}

interface BodyState {
  remaining: number;
  padding: number;
  live: boolean;
}

/** The entries of a tar stream, in order. Leaving the loop early closes the source. */
export async function* readTar(
  source: AsyncIterable<Uint8Array>,
  options: TarReaderOptions = {},
): AsyncGenerator<TarEntry> {
  const maxPax = options.maxPaxSize ?? DEFAULT_MAX_PAX;
  const maxName = options.maxNameLength ?? DEFAULT_MAX_NAME;
  const src = new ByteSource(source[Symbol.asyncIterator](), options.signal);
  let local: PaxRecords | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let body: BodyState | undefined;
  let finished = false;

  const meta = async (size: number, cap: number, what: string, at: number): Promise<Uint8Array> => {
    if (size > cap) {
      throw new ResourceExhausted(`tar ${what} at byte ${at}: ${size} bytes exceeds the limit of ${cap}`);
    }
    const data = size === 0 ? new Uint8Array(0) : await src.readExact(size, what);
    if (data === null)
      throw new InvalidArgument(`tar: unexpected end of archive at byte ${src.offset} in ${what}`);
    await src.skip(padding(size), what);
    return data;
  };

  try {
    for (;;) {
      if (body) {
        body.live = false;
        await src.skip(body.remaining + body.padding, 'entry body');
        body = undefined;
      }
      const at = src.offset;
      const block = await src.readExact(BLOCK, 'header');
      if (block === null) {
        if (local || longName !== undefined || longLink !== undefined) {
          throw new InvalidArgument(`tar: unexpected end of archive at byte ${at} after an extended header`);
        }
        if (options.allowMissingEnd) break;
        throw new InvalidArgument(`tar: unexpected end of archive at byte ${at}: no end-of-archive marker`);
      }
      if (isZeroBlock(block)) {
        const second = await src.readExact(BLOCK, 'end-of-archive marker');
        if (second === null) {
          if (options.allowMissingEnd) break;
          throw new InvalidArgument(
            `tar: unexpected end of archive at byte ${src.offset}: one zero block of two`,
          );
        }
        if (!isZeroBlock(second)) {
          throw new InvalidArgument(`tar header at byte ${at + BLOCK}: data after a zero block`);
        }
        break;
      }
      verifyChecksum(block, at);
      const flag = String.fromCharCode(block[156]!);
      const declared = readNumber(field(block, 'size'), 'size');
      if (declared < 0) throw new InvalidArgument(`tar header at byte ${at}: negative size`);
      if (flag === 'x' || flag === 'g') {
        const records = parsePax(await meta(declared, maxPax, 'pax header', at), at);
        // As Go's archive/tar (and so containerd) reads them: a local header's records apply to
        // the next entry, a later local header replacing an earlier one; a global header is
        // checked and set aside, never applied (containerd skips it too).
        if (flag === 'x') local = records;
        continue;
      }
      if (flag === 'L' || flag === 'K') {
        const name = readString(await meta(declared, maxName, 'gnu long name', at));
        if (flag === 'L') longName = name;
        else longLink = name;
        continue;
      }
      const type = TYPES[flag];
      if (!type) {
        const shown = /^[ -~]$/.test(flag) ? `'${flag}'` : `0x${block[156]!.toString(16)}`;
        throw new InvalidArgument(`tar header at byte ${at}: unsupported entry type ${shown}`);
      }

      const format = headerFormat(block);
      let name = readString(field(block, 'name'));
      if (format === 'ustar') {
        const prefix = readString(field(block, 'prefix'));
        if (prefix !== '') name = `${prefix}/${name}`;
      }
      const numeric = (f: 'mode' | 'uid' | 'gid' | 'mtime' | 'devmajor' | 'devminor') =>
        readNumber(field(block, f), f);
      const entry: Omit<TarEntry, 'body'> = {
        name,
        type,
        mode: numeric('mode') & 0o7777,
        uid: numeric('uid'),
        gid: numeric('gid'),
        size: declared,
        mtime: numeric('mtime'),
        linkname: readString(field(block, 'linkname')),
        uname: readString(field(block, 'uname')),
        gname: readString(field(block, 'gname')),
        devmajor: type === 'chardev' || type === 'blockdev' ? numeric('devmajor') : 0,
        devminor: type === 'chardev' || type === 'blockdev' ? numeric('devminor') : 0,
        xattrs: {},
      };
      if (flag === '\0' && name.endsWith('/')) entry.type = 'dir';
      if (local) applyPax(entry, local);
      if (longName !== undefined) entry.name = longName;
      if (longLink !== undefined) entry.linkname = longLink;
      local = undefined;
      longName = undefined;
      longLink = undefined;

      if (entry.name.length > maxName || entry.linkname.length > maxName) {
        throw new ResourceExhausted(`tar header at byte ${at}: name longer than the limit of ${maxName}`);
      }
      if (entry.uid < 0 || entry.gid < 0) {
        throw new InvalidArgument(`tar entry "${shorten(entry.name)}": negative uid or gid`);
      }
      if (entry.devmajor < 0 || entry.devminor < 0) {
        throw new InvalidArgument(`tar entry "${shorten(entry.name)}": negative device number`);
      }
      // Only regular files carry data; a size on a link, directory or device is ignored as Go's
      // archive/tar does.
      if (entry.type !== 'file') entry.size = 0;
      const state: BodyState = { remaining: entry.size, padding: padding(entry.size), live: true };
      body = state;
      yield { ...entry, body: bodyOf(src, state, entry.name) };
    }
    finished = true;
    if (options.drainTrailing) await src.drain();
  } finally {
    if (body) body.live = false;
    if (!finished || !options.drainTrailing) await src.close();
  }
}

function bodyOf(src: ByteSource, state: BodyState, name: string): AsyncIterable<Uint8Array> {
  let claimed = false;
  return {
    [Symbol.asyncIterator]: () => {
      if (claimed) throw new InvalidArgument(`tar entry "${shorten(name)}": body can be read only once`);
      claimed = true;
      return (async function* () {
        while (state.remaining > 0) {
          if (!state.live) {
            throw new InvalidArgument(`tar entry "${shorten(name)}": body read after the reader moved on`);
          }
          const part = await src.readSome(state.remaining, `body of "${shorten(name)}"`);
          state.remaining -= part.length;
          yield part;
        }
      })();
    },
  };
}

function applyPax(entry: Omit<TarEntry, 'body'>, records: PaxRecords): void {
  for (const [key, value] of records) {
    switch (key) {
      case 'path':
        entry.name = paxString(value);
        break;
      case 'linkpath':
        entry.linkname = paxString(value);
        break;
      case 'size':
        entry.size = paxInteger(value, key);
        break;
      case 'uid':
        entry.uid = paxInteger(value, key);
        break;
      case 'gid':
        entry.gid = paxInteger(value, key);
        break;
      case 'mtime':
        entry.mtime = paxTime(value, key);
        break;
      case 'uname':
        entry.uname = paxString(value);
        break;
      case 'gname':
        entry.gname = paxString(value);
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          const name = key.slice('SCHILY.xattr.'.length);
          // Defined, not assigned: an xattr named __proto__ is an xattr like any other.
          if (name !== '')
            Object.defineProperty(entry.xattrs, name, {
              value,
              enumerable: true,
              writable: true,
              configurable: true,
            });
        } else if (key.startsWith('GNU.sparse.')) {
          throw new InvalidArgument(`tar entry "${shorten(entry.name)}": sparse files are not supported`);
        }
    }
  }
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function shorten(name: string): string {
  return name.length > 120 ? `${name.slice(0, 120)}...` : name;
}
