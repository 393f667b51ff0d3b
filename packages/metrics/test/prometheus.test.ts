import { afterEach, describe, expect, test } from 'vitest';
import {
  formatPrometheus,
  ManualClock,
  type PrometheusFamily,
  type PrometheusServer,
  RELATIVE_ERROR,
  Registry,
  renderPrometheus,
  servePrometheus,
} from '../src/index.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

/** A strict reader for text format 0.0.4: throws on anything it does not understand. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  let currentName = '';
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      currentName = m[1]!;
      expect(families.has(currentName), `duplicate family ${currentName}`).toBe(false);
      current = { help: m[2]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\'), type: '', samples: [] };
      families.set(currentName, current);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (m) {
      expect(m[1]).toBe(currentName);
      current!.type = m[2]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    expect(name.startsWith(currentName), `${name} outside family ${currentName}`).toBe(true);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const body = m[2].slice(1, -1);
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < body.length) {
        re.lastIndex = pos;
        const lm = re.exec(body);
        if (!lm) throw new Error(`bad labels: ${body}`);
        labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
    }
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value: ${raw}`);
    current!.samples.push({ name, labels, value });
  }
  return families;
}

const servers: PrometheusServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('prometheus exposition', () => {
  test('counters get _total, gauges as is, timers as summaries in seconds', async () => {
    const clock = new ManualClock(0);
    const r = new Registry({ clock, decay: 0 });
    r.counter('containers', { help: 'containers known' }).inc(3);
    r.gauge('fds', () => 18);
    r.meter('events').mark(5);
    const t = r.timer('container-start-time', { help: 'time to start a container' });
    for (const ms of [10, 20, 30, 40, 1000]) t.update(ms * 1e6);
    const fams = parseExposition(await renderPrometheus(r, { namespace: 'ctrd' }));

    expect(fams.get('ctrd_containers_total')).toEqual({
      help: 'containers known',
      type: 'counter',
      samples: [{ name: 'ctrd_containers_total', labels: {}, value: 3 }],
    });
    expect(fams.get('ctrd_fds')?.samples[0]?.value).toBe(18);
    expect(fams.get('ctrd_fds')?.type).toBe('gauge');
    expect(fams.get('ctrd_events_total')?.samples[0]?.value).toBe(5);

    const sum = fams.get('ctrd_container_start_time_seconds')!;
    expect(sum.type).toBe('summary');
    expect(sum.help).toBe('time to start a container');
    const q = (quantile: string): number => sum.samples.find((s) => s.labels.quantile === quantile)!.value;
    expect(Math.abs(q('0.5') - 0.03) / 0.03).toBeLessThanOrEqual(RELATIVE_ERROR);
    expect(q('0.999')).toBe(1);
    for (const quantile of ['0.75', '0.95', '0.99']) expect(q(quantile)).toBeGreaterThan(0);
    expect(sum.samples.find((s) => s.name === 'ctrd_container_start_time_seconds_sum')?.value).toBeCloseTo(
      1.1,
      12,
    );
    expect(sum.samples.find((s) => s.name === 'ctrd_container_start_time_seconds_count')?.value).toBe(5);
  });

  test('label values and help are escaped; names are sanitised; collectors merge by family', async () => {
    const r = new Registry();
    r.gauge('heap used/bytes', () => 1, { help: 'line one\nback\\slash' });
    const weird = 'a\\b"c\nd';
    const collectors = [
      (): PrometheusFamily[] => [
        {
          name: 'container_memory_usage_bytes',
          help: 'memory',
          type: 'gauge',
          samples: [{ labels: { namespace: 'default', id: weird }, value: 10n }],
        },
      ],
      async (): Promise<PrometheusFamily[]> => [
        {
          name: 'container_memory_usage_bytes',
          help: 'memory',
          type: 'gauge',
          samples: [{ labels: { namespace: 'other', id: 'web', 'bad-label': 'x' }, value: 2 ** 64 }],
        },
      ],
    ];
    const text = await renderPrometheus(r, { collectors });
    expect(text).toContain('id="a\\\\b\\"c\\nd"');
    const fams = parseExposition(text);
    expect(fams.get('heap_used_bytes')?.help).toBe('line one\nback\\slash');
    const mem = fams.get('container_memory_usage_bytes')!;
    expect(mem.samples).toHaveLength(2);
    expect(mem.samples[0]).toEqual({
      name: 'container_memory_usage_bytes',
      labels: { namespace: 'default', id: weird },
      value: 10,
    });
    expect(mem.samples[1]?.labels).toEqual({ namespace: 'other', id: 'web', bad_label: 'x' });
    expect(mem.samples[1]?.value).toBe(2 ** 64);
  });

  test('NaN and infinities use the format words; a failing collector does not hide the rest', async () => {
    const text = formatPrometheus([
      {
        name: '1st',
        help: 'h',
        type: 'gauge',
        samples: [
          { value: Number.NaN },
          { value: Infinity, labels: { a: '1' } },
          { value: -Infinity, labels: { a: '2' } },
        ],
      },
    ]);
    expect(text).toBe('# HELP _1st h\n# TYPE _1st gauge\n_1st NaN\n_1st{a="1"} +Inf\n_1st{a="2"} -Inf\n');
    const r = new Registry();
    r.counter('containers').inc();
    const out = await renderPrometheus(r, {
      collectors: [
        () => {
          throw new Error('cgroup gone');
        },
      ],
    });
    const fams = parseExposition(out);
    expect(fams.get('containers_total')?.samples[0]?.value).toBe(1);
    expect(fams.get('scrape_collector_errors')?.samples[0]?.value).toBe(1);
  });

  test('servePrometheus serves /metrics, 404 elsewhere, and closes', async () => {
    const r = new Registry();
    r.counter('containers').inc(4);
    let scrapes = 0;
    const srv = await servePrometheus({
      port: 0,
      registry: r,
      namespace: 'ctrd',
      collectors: [
        () => {
          scrapes++;
          return [
            {
              name: 'container_pids_current',
              help: 'pids',
              type: 'gauge',
              samples: [{ labels: { id: 'x' }, value: 3 }],
            },
          ];
        },
      ],
    });
    servers.push(srv);
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/metrics`);
    const res = await fetch(srv.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const fams = parseExposition(await res.text());
    expect(fams.get('ctrd_containers_total')?.samples[0]?.value).toBe(4);
    expect(fams.get('container_pids_current')?.samples[0]).toEqual({
      name: 'container_pids_current',
      labels: { id: 'x' },
      value: 3,
    });
    expect(scrapes).toBe(1);
    expect((await fetch(`${srv.url}?x=1`)).status).toBe(200);
    const nf = await fetch(`http://127.0.0.1:${srv.port}/`);
    expect(nf.status).toBe(404);
    await nf.text();
    const post = await fetch(srv.url, { method: 'POST' });
    expect(post.status).toBe(405);
    await post.text();
    await srv.close();
    await expect(fetch(srv.url)).rejects.toThrow();
  });

  test('a busy port is a clear error', async () => {
    const srv = await servePrometheus({ port: 0, registry: new Registry() });
    servers.push(srv);
    await expect(servePrometheus({ port: srv.port, registry: new Registry() })).rejects.toThrow(
      `prometheus listener 127.0.0.1:${srv.port}: EADDRINUSE: choose another address`,
    );
  });
});
