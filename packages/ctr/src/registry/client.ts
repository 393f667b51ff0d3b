import { FailedPrecondition, InvalidArgument, NotFound, Unavailable } from '@ctrd/api-proto/client';
import {
  type Descriptor,
  digestHasher,
  isIndexType,
  isManifestType,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseDigest,
  type Reference,
} from '@ctrd/api-proto/oci';
import { repositoryScope } from './auth.js';
import { type BodySource, discard, type FetchFn, RegistryHttp, readBytes } from './http.js';

// A client of one registry speaking the OCI distribution API (v2): resolve a tag to a descriptor,
// fetch manifests and blobs, and push them. Everything a registry sends is checked against the
// descriptor it was asked for: media type, size (never reading past it) and digest.

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');

export interface RegistryClientOptions {
  /** The reference's domain: `docker.io` talks to registry-1.docker.io. */
  domain: string;
  plainHttp?: boolean;
  credentials?: { username: string; password: string } | undefined;
  fetch?: FetchFn;
  retries?: number;
  backoffMs?: number;
}

export interface BlobStream {
  /** The bytes from `offset` to the end, never more than the descriptor's size. */
  body: AsyncIterable<Uint8Array>;
  /** Where the stream starts (the requested offset). */
  offset: number;
}

/** `docker.io` is served by registry-1.docker.io, as Docker and containerd map it. */
export function registryHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

export class RegistryClient {
  readonly domain: string;
  readonly http: RegistryHttp;
  /** Repositories this client pushes to: their tokens need the push scope. */
  readonly #pushRepos = new Set<string>();

  constructor(options: RegistryClientOptions) {
    this.domain = options.domain;
    this.http = new RegistryHttp({
      host: registryHost(options.domain),
      plainHttp: options.plainHttp ?? false,
      credentials: options.credentials,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    });
  }

  /** From now on ask tokens for `repo` with pull and push. */
  forPush(repo: string): this {
    this.#pushRepos.add(repo);
    return this;
  }

  #scopes(repo: string, extra: readonly string[] = []): string[] {
    return [repositoryScope(repo, this.#pushRepos.has(repo)), ...extra];
  }

  /**
   * The descriptor a reference names: HEAD on the manifest for its digest, media type and size;
   * GET (and hash) when the registry does not say them.
   */
  async resolve(ref: Reference, signal?: AbortSignal): Promise<Descriptor> {
    const repo = ref.path;
    const tagOrDigest = ref.digest ?? ref.tag;
    if (!tagOrDigest) throw new InvalidArgument(`image reference ${ref.name}: neither a tag nor a digest`);
    const what = `manifest ${ref.reference}`;
    const url = this.http.url(`${repo}/manifests/${tagOrDigest}`);
    const head = await this.http.request(url, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.#scopes(repo),
      what,
      signal,
      // Some registries refuse HEAD on manifests: GET decides then.
      pass: [404, 405, 400],
    });
    await discard(head);
    if (head.status === 200) {
      const mediaType = contentType(head);
      const digest = head.headers.get('docker-content-digest') ?? ref.digest;
      const size = Number(head.headers.get('content-length') ?? Number.NaN);
      if (
        mediaType &&
        (isIndexType(mediaType) || isManifestType(mediaType)) &&
        digest &&
        Number.isSafeInteger(size)
      ) {
        parseDigest(digest, `${what}: registry digest`);
        if (ref.digest && digest !== ref.digest) {
          throw new FailedPrecondition(`${what}: registry answered for digest ${digest}`);
        }
        checkManifestSize(size, what);
        return { mediaType, digest, size };
      }
    } else if (head.status === 404) {
      throw new NotFound(`${what}: not found`);
    }
    const res = await this.http.request(url, {
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.#scopes(repo),
      what,
      signal,
    });
    const bytes = await readBytes(res, MAX_MANIFEST_BYTES, what);
    const digest = ref.digest ?? computeDigest(bytes, 'sha256');
    if (ref.digest) verifyDigest(bytes, ref.digest, what);
    const mediaType = contentType(res) ?? '';
    return { mediaType: manifestMediaType(mediaType, bytes, what), digest, size: bytes.byteLength };
  }

  /** A manifest or index by its descriptor, at most 4 MiB, digest checked. */
  async fetchManifest(repo: string, desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    const what = `manifest ${desc.digest}`;
    parseDigest(desc.digest, what);
    checkManifestSize(desc.size, what);
    const res = await this.http.request(this.http.url(`${repo}/manifests/${desc.digest}`), {
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.#scopes(repo),
      what,
      signal,
    });
    const bytes = await readBytes(res, Math.min(desc.size, MAX_MANIFEST_BYTES), what);
    if (bytes.byteLength !== desc.size) {
      throw new FailedPrecondition(`${what}: registry sent ${bytes.byteLength} bytes, want ${desc.size}`);
    }
    verifyDigest(bytes, desc.digest, what);
    return bytes;
  }

  /**
   * A blob's bytes from `offset` on (Range). Foreign layers are tried at their URLs first, without
   * any credentials, then at the registry. The stream ends with an error if more bytes come than
   * the descriptor's size; the digest is checked by whoever stores the bytes.
   */
  async fetchBlob(
    repo: string,
    desc: Descriptor,
    opts: { offset?: number; signal?: AbortSignal | undefined } = {},
  ): Promise<BlobStream> {
    const what = `blob ${desc.digest}`;
    parseDigest(desc.digest, what);
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new InvalidArgument(`${what}: invalid size`);
    if (offset < 0 || offset > desc.size) throw new InvalidArgument(`${what}: offset ${offset} out of range`);
    const urls = (desc.urls ?? []).filter((u) => /^https?:\/\//i.test(u));
    let lastError: unknown;
    for (const u of urls) {
      try {
        return await this.#openBlob(
          new URL(u),
          [],
          desc,
          offset,
          `${what} at ${new URL(u).host}`,
          opts.signal,
        );
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        lastError = err;
      }
    }
    try {
      return await this.#openBlob(
        this.http.url(`${repo}/blobs/${desc.digest}`),
        this.#scopes(repo),
        desc,
        offset,
        what,
        opts.signal,
      );
    } catch (err) {
      // A foreign layer the registry does not hold: the URL's error says more.
      if (lastError && err instanceof NotFound) throw lastError;
      throw err;
    }
  }

  async #openBlob(
    url: URL,
    scopes: string[],
    desc: Descriptor,
    offset: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<BlobStream> {
    const remaining = desc.size - offset;
    if (remaining === 0) return { body: (async function* () {})(), offset };
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.http.request(url, { headers, scopes, what, signal });
    let skip = 0;
    if (offset > 0 && res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== offset) {
        await discard(res);
        throw new FailedPrecondition(`${what}: registry answered a different range than bytes=${offset}-`);
      }
    } else if (offset > 0) {
      // The server ignored Range: read past what is already stored.
      skip = offset;
    }
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared !== (res.status === 206 ? remaining : desc.size)) {
      await discard(res);
      throw new FailedPrecondition(
        `${what}: registry declares ${declared} bytes, want ${res.status === 206 ? remaining : desc.size}`,
      );
    }
    return { body: boundedBody(res, skip, remaining, desc.size, what), offset };
  }

  /** HEAD on a blob: true when the registry has it. */
  async hasBlob(repo: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    parseDigest(digest, `blob ${digest}`);
    const res = await this.http.request(this.http.url(`${repo}/blobs/${digest}`), {
      method: 'HEAD',
      scopes: this.#scopes(repo),
      what: `blob ${digest}`,
      signal,
      pass: [404],
    });
    await discard(res);
    return res.status !== 404;
  }

  /** HEAD on a manifest by digest or tag: true when the registry has it. */
  async hasManifest(repo: string, reference: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.http.request(this.http.url(`${repo}/manifests/${reference}`), {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.#scopes(repo),
      what: `manifest ${reference}`,
      signal,
      pass: [404],
    });
    await discard(res);
    return res.status !== 404;
  }

  /**
   * Uploads a blob unless the registry has it: `exists` when it does, `mounted` when a cross-repo
   * mount from `mountFrom` (same registry) did it, else `pushed` (POST for a session, then one PUT
   * with the digest and the whole body, as containerd pushes).
   */
  async pushBlob(
    repo: string,
    desc: Descriptor,
    open: BodySource,
    opts: { mountFrom?: string | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<'exists' | 'mounted' | 'pushed'> {
    const what = `blob ${desc.digest}`;
    parseDigest(desc.digest, what);
    if (await this.hasBlob(repo, desc.digest, opts.signal)) return 'exists';
    const start = this.http.url(`${repo}/blobs/uploads/`);
    const mountFrom = opts.mountFrom && opts.mountFrom !== repo ? opts.mountFrom : undefined;
    if (mountFrom) {
      start.searchParams.set('mount', desc.digest);
      start.searchParams.set('from', mountFrom);
    }
    const scopes = this.#scopes(repo, mountFrom ? [repositoryScope(mountFrom, false)] : []);
    const session = await this.http.request(start, { method: 'POST', scopes, what, signal: opts.signal });
    await discard(session);
    if (session.status === 201) return 'mounted';
    const location = session.headers.get('location');
    if (!location)
      throw new FailedPrecondition(`${what}: registry ${this.http.host}: upload without a location`);
    const put = new URL(location, start);
    put.searchParams.set('digest', desc.digest);
    const res = await this.http.request(put, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: open,
      scopes,
      what,
      signal: opts.signal,
      // A half-sent upload session cannot be replayed: a retry starts at pushBlob again.
      retry: false,
    });
    await discard(res);
    return 'pushed';
  }

  /** PUT a manifest or index under a tag or its digest. */
  async putManifest(
    repo: string,
    reference: string,
    desc: Descriptor,
    bytes: Uint8Array,
    signal?: AbortSignal,
  ): Promise<void> {
    const what = `manifest ${desc.digest}`;
    verifyDigest(bytes, desc.digest, what);
    const res = await this.http.request(this.http.url(`${repo}/manifests/${reference}`), {
      method: 'PUT',
      headers: { 'content-type': desc.mediaType },
      body: () => bytes,
      scopes: this.#scopes(repo),
      what,
      signal,
    });
    await discard(res);
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== desc.digest) {
      throw new FailedPrecondition(`${what}: registry stored it as ${stored.slice(0, 80)}`);
    }
  }
}

function contentType(res: Response): string | undefined {
  const value = res.headers.get('content-type');
  if (!value) return undefined;
  return value.split(';')[0]?.trim().toLowerCase() || undefined;
}

function checkManifestSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgument(`${what}: invalid size ${size}`);
  if (size > MAX_MANIFEST_BYTES) {
    throw new InvalidArgument(`${what}: ${size} bytes, over the limit of ${MAX_MANIFEST_BYTES} bytes`);
  }
}

/**
 * The media type of a fetched manifest: the Content-Type when it names a manifest or index, else
 * the body's own `mediaType`, else what its shape says (OCI documents may omit mediaType).
 */
function manifestMediaType(header: string, bytes: Uint8Array, what: string): string {
  if (isIndexType(header) || isManifestType(header)) return header;
  let doc: { mediaType?: unknown; manifests?: unknown; layers?: unknown; schemaVersion?: unknown };
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new InvalidArgument(`${what}: registry sent ${header || 'a body'} that is not json`);
  }
  if (typeof doc.mediaType === 'string' && (isIndexType(doc.mediaType) || isManifestType(doc.mediaType))) {
    return doc.mediaType;
  }
  if (doc.schemaVersion === 1)
    throw new InvalidArgument(`${what}: docker schema 1 manifests are not supported`);
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (Array.isArray(doc.layers)) return MediaType.ociManifest;
  throw new InvalidArgument(
    `${what}: registry sent ${header || 'a document'} that is neither manifest nor index`,
  );
}

function computeDigest(bytes: Uint8Array, algorithm: string): string {
  return `${algorithm}:${digestHasher(algorithm).update(bytes).digest('hex')}`;
}

export function verifyDigest(bytes: Uint8Array, digest: string, what: string): void {
  const { algorithm } = parseDigest(digest, what);
  const actual = computeDigest(bytes, algorithm);
  if (actual !== digest) {
    throw new FailedPrecondition(`${what}: unexpected digest ${actual}: the registry sent other content`);
  }
}

/** The body from `skip` on, failing as soon as it runs past `limit` bytes or ends short of it. */
async function* boundedBody(
  res: Response,
  skip: number,
  limit: number,
  total: number,
  what: string,
): AsyncGenerator<Uint8Array> {
  if (!res.body) throw new FailedPrecondition(`${what}: registry answered without a body`);
  let toSkip = skip;
  let sent = 0;
  try {
    for await (const raw of res.body as unknown as AsyncIterable<Uint8Array>) {
      let chunk = raw;
      if (toSkip > 0) {
        const n = Math.min(toSkip, chunk.length);
        toSkip -= n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) continue;
      }
      if (sent + chunk.length > limit) {
        throw new FailedPrecondition(
          `${what}: registry sent more than the ${total} bytes the descriptor says`,
        );
      }
      sent += chunk.length;
      yield chunk;
    }
  } finally {
    if (sent < limit) await discard(res);
  }
  if (sent < limit) {
    // A connection that ended early: the bytes so far are good, a retry resumes after them.
    throw new Unavailable(`${what}: registry sent ${total - limit + sent} of ${total} bytes`);
  }
}
