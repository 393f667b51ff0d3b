import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import { RegistryClient } from '../src/registry/client.js';

// A small OCI distribution registry on node:http for the registry client's tests: manifests and
// blobs in memory, Range, uploads (POST + PUT, cross-repo mount), and optional Basic or Bearer
// authentication with its own token endpoint. Every request is recorded with its headers so tests
// can check where credentials went. `intercept` lets a test answer a request itself.

export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeRegistryOptions {
  auth?: 'none' | 'basic' | 'bearer';
  /** user → password accepted by Basic auth and by the token endpoint. */
  users?: Record<string, string>;
  /** Bearer: anonymous tokens allow pulls (as Docker Hub does for public images). */
  anonymousPull?: boolean;
  /** Serve 200 instead of 206 to Range requests. */
  ignoreRange?: boolean;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean | Promise<boolean>;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class FakeRegistry {
  readonly blobs = new Map<string, Buffer>();
  /** Which repositories a blob is linked into (`*`: all, for seeded blobs). */
  readonly links = new Map<string, Set<string>>();
  /** `<repo>@<digest>` → manifest; tags in `tags`. */
  readonly manifests = new Map<string, { mediaType: string; bytes: Buffer }>();
  readonly tags = new Map<string, string>();
  readonly requests: Recorded[] = [];
  readonly tokenRequests: Recorded[] = [];
  intercept: Handler | undefined;
  #server: Server;
  #options: FakeRegistryOptions;
  #uploads = new Map<string, { repo: string; data: Buffer }>();
  #nextUpload = 1;
  port = 0;

  constructor(options: FakeRegistryOptions = {}) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.#handle(req, res, Buffer.concat(chunks)).catch((err) => {
          res.statusCode = 500;
          res.end(String(err));
        });
      });
    });
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get origin(): string {
    return `http://${this.host}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  addBlob(data: Uint8Array | string): { digest: string; size: number } {
    const buf = Buffer.from(data);
    const digest = sha256(buf);
    this.blobs.set(digest, buf);
    this.links.set(digest, new Set(['*']));
    return { digest, size: buf.length };
  }

  addManifest(repo: string, tag: string | undefined, mediaType: string, doc: unknown | Buffer): string {
    const bytes = Buffer.isBuffer(doc) ? doc : Buffer.from(JSON.stringify(doc));
    const digest = sha256(bytes);
    this.manifests.set(`${repo}@${digest}`, { mediaType, bytes });
    if (tag) this.tags.set(`${repo}:${tag}`, digest);
    return digest;
  }

  manifest(repo: string, ref: string): { mediaType: string; bytes: Buffer; digest: string } | undefined {
    const digest = ref.includes(':') ? ref : this.tags.get(`${repo}:${ref}`);
    if (!digest) return undefined;
    const m = this.manifests.get(`${repo}@${digest}`);
    return m ? { ...m, digest } : undefined;
  }

  #authorized(req: IncomingMessage, repo: string, push: boolean): boolean {
    const auth = req.headers.authorization ?? '';
    const mode = this.#options.auth ?? 'none';
    if (mode === 'none') return true;
    if (mode === 'basic') return this.#checkBasic(auth);
    const m = /^Bearer tok:(.*)$/.exec(auth);
    if (!m) return false;
    const granted = (m[1] as string).split(' ');
    return (
      granted.includes(`repository:${repo}:${push ? 'pull,push' : 'pull'}`) ||
      (!push && granted.includes(`repository:${repo}:pull,push`))
    );
  }

  #checkBasic(auth: string): boolean {
    const m = /^Basic (.+)$/.exec(auth);
    if (!m) return false;
    const [user, ...rest] = Buffer.from(m[1] as string, 'base64')
      .toString()
      .split(':');
    return user !== undefined && this.#options.users?.[user] === rest.join(':');
  }

  #challenge(res: ServerResponse, repo: string, push: boolean): void {
    const mode = this.#options.auth ?? 'none';
    if (mode === 'basic') res.setHeader('www-authenticate', 'Basic realm="fake"');
    else {
      res.setHeader(
        'www-authenticate',
        `Bearer realm="${this.origin}/token",service="fake-registry",scope="repository:${repo}:${push ? 'pull,push' : 'pull'}"`,
      );
    }
    res.statusCode = 401;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  }

  async #handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const rec = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
    const url = new URL(req.url ?? '/', this.origin);
    if (url.pathname === '/token') {
      this.tokenRequests.push(rec);
      const auth = req.headers.authorization ?? '';
      const scopes = url.searchParams.getAll('scope');
      if (auth !== '' && !this.#checkBasic(auth)) {
        res.statusCode = 401;
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      // Anonymous callers get pull scopes only (when allowed at all).
      const granted =
        auth === '' ? (this.#options.anonymousPull ? scopes.filter((s) => s.endsWith(':pull')) : []) : scopes;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: `tok:${granted.join(' ')}`, expires_in: 300 }));
      return;
    }
    this.requests.push(rec);
    if (this.intercept && (await this.intercept(req, res, body))) return;
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    const up = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(url.pathname);
    const method = req.method ?? 'GET';
    if (up) {
      const repo = up[1] as string;
      if (!this.#authorized(req, repo, true)) {
        this.#challenge(res, repo, true);
        return;
      }
      this.#upload(req, res, url, repo, up[2] as string, body);
      return;
    }
    if (!m) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    const push = method === 'PUT';
    if (!this.#authorized(req, repo, push)) {
      this.#challenge(res, repo, push);
      return;
    }
    if (kind === 'manifests') {
      if (method === 'PUT') {
        const digest = sha256(body);
        this.manifests.set(`${repo}@${digest}`, {
          mediaType: String(req.headers['content-type']),
          bytes: body,
        });
        if (!ref.includes(':')) this.tags.set(`${repo}:${ref}`, digest);
        res.statusCode = 201;
        res.setHeader('docker-content-digest', digest);
        res.end();
        return;
      }
      const found = this.manifest(repo, ref);
      if (!found) {
        notFound(res, 'MANIFEST_UNKNOWN');
        return;
      }
      res.setHeader('content-type', found.mediaType);
      res.setHeader('docker-content-digest', found.digest);
      res.setHeader('content-length', String(found.bytes.length));
      res.end(method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    const blob = this.#linked(ref, repo) ? this.blobs.get(ref) : undefined;
    if (!blob) {
      notFound(res, 'BLOB_UNKNOWN');
      return;
    }
    res.setHeader('docker-content-digest', ref);
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range && !this.#options.ignoreRange) {
      const start = Number(range[1]);
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${blob.length - 1}/${blob.length}`);
      res.setHeader('content-length', String(blob.length - start));
      res.end(method === 'HEAD' ? undefined : blob.subarray(start));
      return;
    }
    res.setHeader('content-length', String(blob.length));
    res.end(method === 'HEAD' ? undefined : blob);
  }

  #linked(digest: string, repo: string): boolean {
    const links = this.links.get(digest);
    return links !== undefined && (links.has('*') || links.has(repo));
  }

  #link(digest: string, repo: string): void {
    const links = this.links.get(digest) ?? new Set<string>();
    links.add(repo);
    this.links.set(digest, links);
  }

  #upload(req: IncomingMessage, res: ServerResponse, url: URL, repo: string, id: string, body: Buffer): void {
    const method = req.method ?? '';
    if (method === 'POST') {
      const mount = url.searchParams.get('mount');
      const from = url.searchParams.get('from');
      if (mount && from && this.#linked(mount, from)) {
        this.#link(mount, repo);
        res.statusCode = 201;
        res.setHeader('location', `/v2/${repo}/blobs/${mount}`);
        res.end();
        return;
      }
      const uid = String(this.#nextUpload++);
      this.#uploads.set(uid, { repo, data: Buffer.alloc(0) });
      res.statusCode = 202;
      res.setHeader('location', `/v2/${repo}/blobs/uploads/${uid}?_state=x`);
      res.end();
      return;
    }
    const session = this.#uploads.get(id);
    if (!session) {
      notFound(res, 'BLOB_UPLOAD_UNKNOWN');
      return;
    }
    session.data = Buffer.concat([session.data, body]);
    if (method === 'PATCH') {
      res.statusCode = 202;
      res.setHeader('location', `/v2/${repo}/blobs/uploads/${id}`);
      res.end();
      return;
    }
    const digest = url.searchParams.get('digest') ?? '';
    if (sha256(session.data) !== digest) {
      res.statusCode = 400;
      res.end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] }));
      return;
    }
    this.#uploads.delete(id);
    this.blobs.set(digest, session.data);
    this.#link(digest, repo);
    res.statusCode = 201;
    res.setHeader('location', `/v2/${repo}/blobs/${digest}`);
    res.setHeader('docker-content-digest', digest);
    res.end();
  }
}

function notFound(res: ServerResponse, code: string): void {
  res.statusCode = 404;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ errors: [{ code, message: 'not known to registry' }] }));
}

/** A plain server recording requests, answered by `handler`. */
export async function recordingServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ origin: string; host: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } });
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A started FakeRegistry, closed when the test that started it finishes. */
export async function startRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const r = await new FakeRegistry(options).start();
  onTestFinished(() => r.close());
  return r;
}

/** A client of `r` over plain http that retries quickly. */
export function registryClient(
  r: FakeRegistry,
  credentials?: { username: string; password: string },
): RegistryClient {
  return new RegistryClient({ domain: r.host, plainHttp: true, credentials, backoffMs: 1, retries: 2 });
}
