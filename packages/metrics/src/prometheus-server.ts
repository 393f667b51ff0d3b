import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from './logger.js';
import { PROMETHEUS_CONTENT_TYPE, type PrometheusCollector, renderPrometheus } from './prometheus.js';
import type { Registry } from './registry.js';

export interface ServePrometheusOptions {
  registry: Registry;
  /** Default 127.0.0.1: metrics can reveal container ids, so listening wider is a deliberate choice. */
  host?: string;
  /** 0 picks a free port (see the returned port). */
  port: number;
  collectors?: readonly PrometheusCollector[];
  namespace?: string;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface PrometheusServer {
  host: string;
  port: number;
  /** http://host:port/metrics */
  url: string;
  close(): Promise<void>;
}

/** The request handler on its own, to mount /metrics on an existing http server. */
export function prometheusHandler(
  options: Omit<ServePrometheusOptions, 'host' | 'port' | 'signal'>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const logger = options.logger ?? silentLogger;
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('method not allowed\n');
      return;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    renderPrometheus(options.registry, {
      collectors: options.collectors,
      namespace: options.namespace,
      logger,
      signal: abort.signal,
    }).then(
      (body) => {
        res.writeHead(200, {
          'content-type': PROMETHEUS_CONTENT_TYPE,
          'content-length': Buffer.byteLength(body),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        if (abort.signal.aborted) return;
        logger.warn({ err }, 'prometheus: scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('scrape failed\n');
      },
    );
  };
}

/** Serve the registry and collectors on http://host:port/metrics until close(). */
export async function servePrometheus(options: ServePrometheusOptions): Promise<PrometheusServer> {
  options.signal?.throwIfAborted();
  const host = options.host ?? '127.0.0.1';
  const server = createServer(prometheusHandler(options));
  // Scrapers keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new Error(
          `prometheus listener ${host}:${options.port}: ${err.code ?? err.message}: choose another address`,
          {
            cause: err,
          },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { host, port, url: `http://${urlHost}:${port}/metrics`, close };
}
