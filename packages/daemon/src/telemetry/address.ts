import { InvalidArgument } from '@ctrd/api-proto';

/** "host:port" or "[v6]:port" (the --metrics-address form); port 0 picks a free one. */
export function parseHostPort(address: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65_535) {
    throw new InvalidArgument(`${what} "${address}": not host:port: use e.g. "127.0.0.1:9090"`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}
