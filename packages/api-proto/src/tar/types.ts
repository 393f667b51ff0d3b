// What a tar entry is, independent of how it was encoded (ustar, GNU long names, PAX).

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as stored (after PAX/GNU long-name resolution), not cleaned. */
  name: string;
  type: TarEntryType;
  /** Permission and set-id bits (the low 12 bits of the stored mode). */
  mode: number;
  uid: number;
  gid: number;
  /** Body length in bytes; 0 for everything but regular files. */
  size: number;
  /** Modification time in seconds since the epoch; PAX may give a fraction. */
  mtime: number;
  /** Target of a symlink or hardlink, '' otherwise. */
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* records, values as raw bytes. */
  xattrs: Record<string, Uint8Array>;
}

export interface TarEntry extends TarHeader {
  /**
   * The entry's bytes. Iterate at most once, before asking for the next entry; an unread body is
   * skipped when the reader moves on.
   */
  body: AsyncIterable<Uint8Array>;
}

export const TYPEFLAG: Readonly<Record<TarEntryType, string>> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  blockdev: '4',
  dir: '5',
  fifo: '6',
};
