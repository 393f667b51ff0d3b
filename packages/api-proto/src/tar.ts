// @ctrd/api-proto/tar: streaming tar reading and writing and layer decompression, shared by the
// daemon (layer apply and diff) and the CLI (image import and export).

export type { Compression, DecompressOptions } from './tar/decompress.js';
export { decompressStream, detectCompression, gzipStream, hasNativeZstd } from './tar/decompress.js';
export { decodeName, encodeName, hasEscapedBytes } from './tar/names.js';
export type { TarReaderOptions } from './tar/reader.js';
export { readTar, TarReader } from './tar/reader.js';
export type { TarEntry, TarEntryType, TarHeader } from './tar/types.js';
export type { TarWriteEntry } from './tar/writer.js';
export { encodeEntry, TarWriter, writeTar } from './tar/writer.js';
