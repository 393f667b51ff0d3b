import type { Interceptor } from '@connectrpc/connect';
import { classify, type Logger, NAMESPACE_HEADER } from '@ctrd/api-proto';

// With --debug, one line per call: method, namespace, duration and outcome. Streams are logged
// when the handler returns its stream, which is when their setup (filters, namespace) succeeded.

export function callLogger(log: Logger): Interceptor {
  return (next) => async (req) => {
    const start = performance.now();
    const method = `${req.service.typeName}/${req.method.name}`;
    const namespace = req.header.get(NAMESPACE_HEADER) ?? undefined;
    try {
      const res = await next(req);
      log.debug(
        { method, namespace, ms: Math.round((performance.now() - start) * 10) / 10, code: 'ok' },
        'call',
      );
      return res;
    } catch (err) {
      const code = classify(err);
      log.debug(
        { method, namespace, ms: Math.round((performance.now() - start) * 10) / 10, code, err: String(err) },
        'call',
      );
      throw err;
    }
  };
}
