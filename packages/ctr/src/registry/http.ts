import { setTimeout as sleep } from 'node:timers/promises';
import {
  Canceled,
  type CtrdError,
  errorKind,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  ResourceExhausted,
  Unavailable,
  Unknown,
} from '@ctrd/api-proto/client';
import {
  basicAuthorization,
  type Challenge,
  type Credentials,
  parseTokenResponse,
  parseWwwAuthenticate,
  tokenUrl,
} from './auth.js';

// The HTTP side of the registry client: one registry origin, its credentials and tokens, retries
// and redirects. Credentials are scoped to that origin (ContainerDrip, CVE-2020-15157): a request
// to any other origin, be it a foreign-layer URL or where a redirect leads, goes out without an
// Authorization header, and a 401 from it is an error, never a reason to authenticate.

export type FetchFn = typeof fetch;

export interface RegistryHttpOptions {
  /** `host[:port]` of the registry API, e.g. `registry-1.docker.io` or `127.0.0.1:5000`. */
  host: string;
  /** Plain http instead of https (`--plain-http`). */
  plainHttp?: boolean;
  credentials?: Credentials | undefined;
  /** Replaces the global fetch (tests). */
  fetch?: FetchFn;
  /** Attempts after the first on 5xx, 429 and broken connections. Default 4. */
  retries?: number;
  /** First backoff; doubled each retry. Default 250 ms. */
  backoffMs?: number;
  userAgent?: string;
}

/** A request body that can be made again for a retry or after authenticating. */
export type BodySource = () => Uint8Array | AsyncIterable<Uint8Array>;

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: BodySource;
  /** Bearer scopes the request needs, e.g. `repository:library/busybox:pull`. */
  scopes?: readonly string[];
  /** What the request is about, for error messages: `manifest docker.io/library/busybox:latest`. */
  what: string;
  signal?: AbortSignal | undefined;
  /** Statuses returned as they are instead of becoming errors (e.g. 404 for an existence check). */
  pass?: readonly number[];
  /** Retry on 5xx and broken connections (default true). Off for bodies that cannot be replayed. */
  retry?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const MAX_TOKEN_BODY = 1 << 20;
const MAX_ERROR_BODY = 16 << 10;
// The answer of a GET can be retried from the start; errno values of a connection that broke.
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

interface CachedToken {
  header: string;
  expiresAt: number;
}

export class RegistryHttp {
  readonly host: string;
  readonly origin: string;
  readonly plainHttp: boolean;
  readonly #credentials: Credentials | undefined;
  readonly #fetch: FetchFn;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #userAgent: string;
  #basic: string | undefined;
  readonly #tokens = new Map<string, CachedToken>();

  constructor(options: RegistryHttpOptions) {
    if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/.test(options.host)) {
      throw new InvalidArgument(`registry host "${options.host.slice(0, 200)}": not a host[:port]`);
    }
    this.host = options.host;
    this.plainHttp = options.plainHttp ?? false;
    this.origin = new URL(`${this.plainHttp ? 'http' : 'https'}://${options.host}`).origin;
    this.#credentials = options.credentials;
    this.#fetch = options.fetch ?? fetch;
    this.#retries = options.retries ?? 4;
    this.#backoffMs = options.backoffMs ?? 250;
    this.#userAgent = options.userAgent ?? 'ctrd-ctr/0.1';
  }

  /** `https://host/v2/<path>` on the registry's origin. */
  url(path: string): URL {
    return new URL(`/v2/${path}`, this.origin);
  }

  /**
   * Sends a request, following redirects, authenticating on the registry's own 401 and retrying
   * transient failures with backoff. Resolves to a 2xx answer (or one listed in `pass`); every other
   * status becomes an error class naming `what`.
   */
  async request(target: URL | string, options: RequestOptions): Promise<Response> {
    const retries = options.retry === false ? 0 : this.#retries;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.#send(new URL(target), options);
      } catch (err) {
        if (options.signal?.aborted) throw abortError(options.signal, options.what);
        if (errorKind(err) !== undefined) throw err;
        if (attempt < retries && isTransient(err)) {
          await this.#backoff(attempt, undefined, options.signal);
          continue;
        }
        throw this.#networkError(err, options.what);
      }
      if (
        (res.status >= 500 || res.status === 429) &&
        attempt < retries &&
        !options.pass?.includes(res.status)
      ) {
        await discard(res);
        await this.#backoff(attempt, res.headers.get('retry-after'), options.signal);
        continue;
      }
      if ((res.status >= 200 && res.status < 300) || options.pass?.includes(res.status)) return res;
      throw await statusError(res, options.what, this.host);
    }
  }

  async #send(start: URL, options: RequestOptions): Promise<Response> {
    let url = start;
    let method = options.method ?? 'GET';
    let body = options.body;
    let trusted = url.origin === this.origin;
    let authenticated = false;
    for (let hops = 0; hops <= MAX_REDIRECTS; ) {
      const headers: Record<string, string> = {
        'user-agent': this.#userAgent,
        // Blobs are hashed as sent: no transparent decompression of a .tar.gz by fetch.
        'accept-encoding': 'identity',
        ...options.headers,
      };
      if (trusted) {
        const auth = this.#authorization(options.scopes ?? []);
        if (auth) headers.authorization = auth;
      } else {
        delete headers.authorization;
      }
      const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'manual' };
      if (options.signal) init.signal = options.signal;
      if (body) {
        const made = body();
        if (made instanceof Uint8Array) init.body = made;
        else {
          init.body = ReadableStream.from(made) as unknown as NonNullable<RequestInit['body']>;
          init.duplex = 'half';
        }
      }
      const res = await this.#fetch(url, init);
      if (res.status === 401 && trusted && !authenticated) {
        const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
        await discard(res);
        await this.#authenticate(challenges, options.scopes ?? [], options.what, options.signal);
        authenticated = true;
        continue;
      }
      if (REDIRECTS.has(res.status) && res.headers.get('location')) {
        const location = res.headers.get('location') as string;
        await discard(res);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new Unknown(`${options.what}: registry ${this.host}: bad redirect location`);
        }
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new Unknown(`${options.what}: registry ${this.host}: redirect to a non-http url`);
        }
        if (next.protocol === 'http:' && url.protocol === 'https:' && !this.plainHttp) {
          throw new Unknown(
            `${options.what}: registry ${this.host}: redirect from https to plain http refused`,
          );
        }
        // Leaving the registry's origin drops its credentials for the rest of the chain.
        if (next.origin !== this.origin) trusted = false;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        url = next;
        hops++;
        continue;
      }
      return res;
    }
    throw new Unknown(`${options.what}: registry ${this.host}: more than ${MAX_REDIRECTS} redirects`);
  }

  #authorization(scopes: readonly string[]): string | undefined {
    if (this.#basic) return this.#basic;
    const cached = this.#tokens.get(scopeKey(scopes));
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    return undefined;
  }

  async #authenticate(
    challenges: Challenge[],
    scopes: readonly string[],
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      this.#tokens.set(scopeKey(scopes), await this.#fetchToken(bearer, scopes, what, signal));
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.#credentials) {
        throw new FailedPrecondition(
          `${what}: registry ${this.host}: unauthorized: basic authentication required: give --user USER[:PASSWORD]`,
        );
      }
      this.#basic = basicAuthorization(this.#credentials);
      return;
    }
    throw new FailedPrecondition(
      `${what}: registry ${this.host}: unauthorized${challenges.length > 0 ? `: unsupported authentication scheme ${challenges[0]?.scheme}` : ''}`,
    );
  }

  async #fetchToken(
    challenge: Challenge,
    scopes: readonly string[],
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const url = tokenUrl(challenge, scopes);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'application/json' };
    // The realm is where the registry itself sends us for tokens, so it may see the registry's
    // credentials, but never over plain http unless the user chose plain http for this registry.
    if (this.#credentials && (url.protocol === 'https:' || this.plainHttp)) {
      headers.authorization = basicAuthorization(this.#credentials);
    }
    const init: RequestInit = { headers, redirect: 'manual' };
    if (signal) init.signal = signal;
    let res: Response | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.#fetch(url, init);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal, what);
        if (attempt < this.#retries && isTransient(err)) {
          await this.#backoff(attempt, undefined, signal);
          continue;
        }
        throw this.#networkError(err, `${what}: token from ${url.host}`);
      }
      if (res.status >= 500 && attempt < this.#retries) {
        await discard(res);
        await this.#backoff(attempt, res.headers.get('retry-after'), signal);
        continue;
      }
      break;
    }
    if (res.status !== 200) {
      const detail = await errorDetail(res);
      const why = res.status === 401 || res.status === 403 ? 'authorization failed' : 'token request failed';
      throw new FailedPrecondition(
        `${what}: registry ${this.host}: ${why}: token server ${url.host} answered ${res.status}${detail ? `: ${detail}` : ''}`,
      );
    }
    const text = await readText(res, MAX_TOKEN_BODY, `${what}: token from ${url.host}`);
    const { token, expiresInSeconds } = parseTokenResponse(text);
    // Renew a little early so a token does not expire between check and use.
    return { header: `Bearer ${token}`, expiresAt: Date.now() + Math.max(expiresInSeconds - 10, 5) * 1000 };
  }

  async #backoff(attempt: number, retryAfter: string | null | undefined, signal: AbortSignal | undefined) {
    let ms = this.#backoffMs * 2 ** attempt;
    const seconds = retryAfter ? Number(retryAfter) : Number.NaN;
    if (Number.isFinite(seconds) && seconds > 0) ms = Math.min(seconds * 1000, 30_000);
    await sleep(ms, undefined, signal ? { signal } : undefined).catch(() => {
      throw abortError(signal, 'registry request');
    });
  }

  #networkError(err: unknown, what: string): CtrdError {
    const code = errnoOf(err);
    const detail = code ?? (err instanceof Error ? (errorCause(err)?.message ?? err.message) : String(err));
    if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ALTNAME/.test(code)) {
      return new Unavailable(
        `${what}: registry ${this.host}: its certificate is not trusted (${code}): add its CA to the system's, or use --skip-verify (insecure)`,
        { cause: err },
      );
    }
    if (!this.plainHttp && /SSL|TLS|EPROTO/i.test(`${code ?? ''} ${detail}`)) {
      return new Unavailable(
        `${what}: registry ${this.host}: https failed (${detail}): if it serves plain http, use --plain-http`,
        { cause: err },
      );
    }
    return new Unavailable(`${what}: registry ${this.host}: ${detail}`, { cause: err });
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

function errorCause(err: Error): Error | undefined {
  return err.cause instanceof Error ? err.cause : undefined;
}

function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A dropped or refused connection, worth another try; aborts and TLS failures are not. */
export function isTransient(err: unknown): boolean {
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return false;
  const code = errnoOf(err);
  if (code !== undefined) return TRANSIENT_CODES.has(code);
  // undici's "fetch failed" / "terminated" without an errno: a socket that went away.
  return err instanceof TypeError && /fetch failed|terminated|other side closed/i.test(err.message);
}

export function abortError(signal: AbortSignal | undefined, what: string): CtrdError {
  const reason = signal?.reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') return new Canceled(`${what}: timed out`);
  return new Canceled(`${what}: canceled`, { cause: reason });
}

/** Throws away an answer's body so its connection can be reused. */
export async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {}
}

/** Reads a whole body of at most `cap` bytes; ResourceExhausted beyond it, without reading further. */
export async function readBytes(res: Response, cap: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > cap) {
    await discard(res);
    throw new ResourceExhausted(`${what}: ${declared} bytes: larger than the ${cap}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > cap) {
        await discard(res);
        throw new ResourceExhausted(`${what}: larger than the ${cap}-byte limit`);
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks, total);
}

async function readText(res: Response, cap: number, what: string): Promise<string> {
  return Buffer.from(await readBytes(res, cap, what)).toString('utf8');
}

/** The first error of a distribution error body (`{"errors":[{"code","message"}]}`), else its text. */
async function errorDetail(res: Response): Promise<string> {
  let text: string;
  try {
    text = await readText(res, MAX_ERROR_BODY, 'error body');
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (first) {
      const code = typeof first.code === 'string' ? first.code.toLowerCase() : '';
      const message = typeof first.message === 'string' ? first.message : '';
      return [code, message].filter((s) => s !== '').join(': ');
    }
  } catch {}
  return text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(0, 200);
}

/** The error class for a registry's non-2xx answer. */
export async function statusError(res: Response, what: string, host: string): Promise<CtrdError> {
  const detail = await errorDetail(res);
  const suffix = detail ? ` (${detail})` : '';
  switch (res.status) {
    case 404:
      return new NotFound(`${what}: not found${suffix}`);
    case 401:
      return new FailedPrecondition(`${what}: registry ${host}: unauthorized${suffix}`);
    case 403:
      return new FailedPrecondition(`${what}: registry ${host}: denied${suffix}`);
    case 413:
      return new ResourceExhausted(`${what}: registry ${host}: too large${suffix}`);
    case 429:
      return new Unavailable(`${what}: registry ${host}: too many requests${suffix}`);
    default:
      if (res.status >= 500)
        return new Unavailable(`${what}: registry ${host}: status ${res.status}${suffix}`);
      if (res.status === 400) return new InvalidArgument(`${what}: registry ${host}: bad request${suffix}`);
      return new Unknown(`${what}: registry ${host}: unexpected status ${res.status}${suffix}`);
  }
}
