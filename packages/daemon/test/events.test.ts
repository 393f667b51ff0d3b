import { create } from '@bufbuild/protobuf';
import {
  isFailedPrecondition,
  isInvalidArgument,
  isResourceExhausted,
  nowTimestamp,
  packAny,
  timestampFromNanos,
  timestampToNanos,
} from '@ctrd/api-proto';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { TaskExitSchema } from '@ctrd/api-proto/event-types';
import { type Envelope, EnvelopeSchema, EventsService } from '@ctrd/api-proto/events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PluginType } from '../src/plugin.js';
import { Exchange } from '../src/services/exchange.js';
import { type Harness, harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const exit = (id: string) =>
  packAny(TaskExitSchema, create(TaskExitSchema, { containerId: id, id, exitStatus: 3 }));

/** Resolves once the exchange holds `n` subscriptions: a Subscribe call registers when it reaches it. */
const subscribed = (n: number) =>
  expect.poll(() => h.plugins.get<Exchange>(PluginType.Event, 'exchange').stats().subscribers).toBe(n);

async function take(stream: AsyncIterable<Envelope>, n: number): Promise<Envelope[]> {
  const out: Envelope[] = [];
  if (n === 0) return out;
  for await (const e of stream) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe('Events', () => {
  it('Publish validates namespace and topic and stamps the time', async () => {
    const ev = h.client(EventsService);
    expect(
      isFailedPrecondition(
        await h
          .client(EventsService, '')
          .publish({ topic: '/a' })
          .catch((e) => e),
      ),
    ).toBe(true);
    for (const topic of ['', 'a', '/', '/a//b', '/a/../b', '/ü']) {
      expect(isInvalidArgument(await ev.publish({ topic, event: exit('x') }).catch((e) => e)), topic).toBe(
        true,
      );
    }
    const ac = new AbortController();
    const got = take(h.client(EventsService).subscribe({}, { signal: ac.signal }), 1);
    await subscribed(1);
    const before = timestampToNanos(nowTimestamp());
    await ev.publish({ topic: '/tasks/exit', event: exit('c1') });
    const [env] = await got;
    expect(env!.topic).toBe('/tasks/exit');
    expect(env!.namespace).toBe('default');
    expect(timestampToNanos(env!.timestamp)).toBeGreaterThanOrEqual(before - 1_000_000n);
  });

  it('Forward needs a full envelope with a timestamp', async () => {
    const ev = h.client(EventsService, '');
    expect(isInvalidArgument(await ev.forward({}).catch((e) => e))).toBe(true);
    const noTs = create(EnvelopeSchema, { namespace: 'default', topic: '/tasks/exit', event: exit('a') });
    expect(isInvalidArgument(await ev.forward({ envelope: noTs }).catch((e) => e))).toBe(true);
    const badNs = create(EnvelopeSchema, {
      namespace: 'a/b',
      topic: '/tasks/exit',
      timestamp: nowTimestamp(),
    });
    expect(isInvalidArgument(await ev.forward({ envelope: badNs }).catch((e) => e))).toBe(true);
    const ts = timestampFromNanos(1_700_000_000_000_000_000n);
    const ac = new AbortController();
    const got = take(h.client(EventsService).subscribe({}, { signal: ac.signal }), 1);
    await subscribed(1);
    await ev.forward({
      envelope: { namespace: 'k8s', topic: '/tasks/exit', timestamp: ts, event: exit('a') },
    });
    const [env] = await got;
    expect(env!.namespace).toBe('k8s');
    expect(timestampToNanos(env!.timestamp)).toBe(1_700_000_000_000_000_000n);
  });

  it('Subscribe sees every namespace and applies containerd filters', async () => {
    const ac = new AbortController();
    const sub = h
      .client(EventsService)
      .subscribe(
        { filters: ['namespace==b,topic=="/tasks/exit"', 'event.container_id==wanted'] },
        { signal: ac.signal },
      );
    const got = take(sub, 2);
    await subscribed(1);
    await h.client(EventsService, 'a').publish({ topic: '/tasks/exit', event: exit('other') });
    await h.client(EventsService, 'b').publish({ topic: '/tasks/exit', event: exit('x') });
    await h.client(EventsService, 'a').publish({ topic: '/tasks/start', event: exit('wanted') });
    const envs = await got;
    ac.abort();
    expect(envs.map((e) => [e.namespace, e.topic])).toEqual([
      ['b', '/tasks/exit'],
      ['a', '/tasks/start'],
    ]);
    const bad = await (async () => {
      for await (const _ of h.client(EventsService).subscribe({ filters: ['topic=="'] })) {
      }
    })().catch((e) => e);
    expect(isInvalidArgument(bad)).toBe(true);
  });

  it('a laggard is cut off with ResourceExhausted while others go on', async () => {
    const ex = new Exchange({ queueLimit: 5 });
    const ac = new AbortController();
    const slow = ex.subscribe([], ac.signal)[Symbol.asyncIterator]();
    const fast = ex.subscribe([], ac.signal)[Symbol.asyncIterator]();
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      ex.publish('default', `/t/n${i}`, undefined);
      seen.push((await fast.next()).value.topic);
    }
    expect(seen).toHaveLength(10);
    const err = await slow.next().catch((e) => e);
    expect(isResourceExhausted(err)).toBe(true);
    expect(err.message).toMatch(/more than 5 events pending/);
    ex.publish('default', '/t/after', undefined);
    expect((await fast.next()).value.topic).toBe('/t/after');
    expect(ex.stats().subscribers).toBe(1);
    ac.abort();
  });

  it('EventHistory.Replay: history since a time, filtered, then follow', async () => {
    const ev = h.client(EventsService);
    await ev.publish({ topic: '/a/one', event: exit('1') });
    const mid = nowTimestamp();
    await ev.publish({ topic: '/a/two', event: exit('2') });
    await h.client(EventsService, 'other').publish({ topic: '/a/three', event: exit('3') });
    const hist = h.client(EventHistoryService);
    expect((await take(hist.replay({}), 3)).map((e) => e.topic)).toEqual(['/a/one', '/a/two', '/a/three']);
    const since: string[] = [];
    for await (const e of hist.replay({ since: mid, filters: ['namespace==default'] })) since.push(e.topic);
    expect(since).toEqual(['/a/two']);
    const ac = new AbortController();
    const following = take(
      hist.replay({ filters: ['topic~="^/a/t"'], follow: true }, { signal: ac.signal }),
      3,
    );
    await subscribed(1);
    await ev.publish({ topic: '/a/ten', event: exit('10') });
    expect((await following).map((e) => e.topic)).toEqual(['/a/two', '/a/three', '/a/ten']);
    ac.abort();
  });
});
