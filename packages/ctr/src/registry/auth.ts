import { InvalidArgument } from '@ctrd/api-proto/client';

// Registry authentication as the distribution spec and Docker's token service describe it: a 401
// carries `WWW-Authenticate` challenges; Basic means send the credentials, Bearer means fetch a
// token from the realm for a scope and send that.

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  /** Lower-case scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses a `WWW-Authenticate` header into its challenges (RFC 7235): `Bearer realm="...",
 * service="...", scope="..."`. Several challenges may share one header, comma-separated.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let s = header.trim();
  let current: Challenge | undefined;
  while (s.length > 0) {
    s = s.replace(/^[\s,]+/, '');
    const name = TOKEN.exec(s)?.[0];
    if (!name) break;
    const afterName = s.slice(name.length);
    const param = /^\s*=\s*/.exec(afterName);
    if (current && param) {
      // name=value inside the current challenge.
      s = afterName.slice(param[0].length);
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        s = s.slice(i + 1);
      } else {
        value = TOKEN.exec(s)?.[0] ?? '';
        s = s.slice(value.length);
      }
      current.params[name.toLowerCase()] = value;
      continue;
    }
    // A new challenge: the scheme, then maybe params (or a token68, which we keep as `token68`).
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    s = afterName;
    const token68 = /^\s+([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)/.exec(s);
    if (token68 && !/^\s+[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=[^=]/.test(s)) {
      current.params.token68 = token68[1] as string;
      s = s.slice(token68[0].length);
    }
  }
  return out;
}

/** `user[:password]` from `--user`; without a password, CTRD_REGISTRY_PASSWORD from the environment. */
export function parseUserFlag(value: string, env: Record<string, string | undefined>): Credentials {
  const colon = value.indexOf(':');
  const username = colon < 0 ? value : value.slice(0, colon);
  if (username === '') throw new InvalidArgument('--user: the user name must not be empty');
  if (colon >= 0) return { username, password: value.slice(colon + 1) };
  const password = env.CTRD_REGISTRY_PASSWORD;
  if (password === undefined) {
    throw new InvalidArgument(
      `--user ${username}: no password: give --user ${username}:PASSWORD or set CTRD_REGISTRY_PASSWORD`,
    );
  }
  return { username, password };
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}

/** The scope string a Bearer token is asked for: `repository:<path>:pull[,push]`. */
export function repositoryScope(repository: string, push: boolean): string {
  return `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
}

/** Scopes merged the way token servers read them: one `scope` parameter each. */
export function tokenUrl(challenge: Challenge, scopes: readonly string[]): URL {
  const realm = challenge.params.realm;
  if (!realm) throw new InvalidArgument('registry auth: bearer challenge without a realm');
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new InvalidArgument(`registry auth: bearer realm "${realm.slice(0, 200)}": not a url`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidArgument(`registry auth: bearer realm "${realm.slice(0, 200)}": not http or https`);
  }
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  const all = new Set<string>(scopes);
  if (challenge.params.scope) for (const s of challenge.params.scope.split(' ')) if (s) all.add(s);
  for (const s of all) url.searchParams.append('scope', s);
  return url;
}

/** The token from a token server's JSON answer (`token` or OAuth's `access_token`). */
export function parseTokenResponse(body: string): { token: string; expiresInSeconds: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new InvalidArgument('registry auth: token server answer is not json');
  }
  const obj = (parsed ?? {}) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token =
    typeof obj.token === 'string' && obj.token !== ''
      ? obj.token
      : typeof obj.access_token === 'string'
        ? obj.access_token
        : '';
  if (token === '') throw new InvalidArgument('registry auth: token server answer carries no token');
  if (/[\r\n]/.test(token)) throw new InvalidArgument('registry auth: token contains a line break');
  // Docker's token spec: 60 s when absent; never trust a token beyond an hour here.
  const expires =
    typeof obj.expires_in === 'number' && Number.isFinite(obj.expires_in) && obj.expires_in > 0
      ? Math.min(obj.expires_in, 3600)
      : 60;
  return { token, expiresInSeconds: expires };
}
