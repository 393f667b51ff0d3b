import { describe, expect, it } from 'vitest';
import type { QueuedEvent } from '../src/event-publisher.js';
import { EventPublisher } from '../src/event-publisher.js';

function ev(topic: string): QueuedEvent {
  return { namespace: 'default', topic, typeUrl: 'x', value: new Uint8Array(), timestamp: new Date() };
}

class FakeDaemon {
  up = false;
  received: string[] = [];
  attempts = 0;
  forward = async (e: QueuedEvent) => {
    this.attempts++;
    await new Promise((r) => setTimeout(r, 1));
    if (!this.up) throw new Error('connect ECONNREFUSED');
    this.received.push(e.topic);
  };
}

describe('event publisher', () => {
  it('sends in order when the daemon is up', async () => {
    const d = new FakeDaemon();
    d.up = true;
    const p = new EventPublisher({ forward: d.forward });
    for (const t of ['/tasks/create', '/tasks/start', '/tasks/exit']) p.publish(ev(t));
    await p.drained();
    expect(d.received).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit']);
    expect(p.sent).toBe(3);
  });

  it('waits a moment before sending, so the answer of the call that published goes first', async () => {
    const sent: string[] = [];
    const p = new EventPublisher({
      forward: async (e) => {
        sent.push(e.topic);
      },
    });
    p.publish(ev('/tasks/start'));
    // What a handler does after publishing (build and write its answer) runs in microtasks, and
    // HTTP/2 sends the answer's trailers a loop turn later.
    for (let i = 0; i < 10; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([]);
    await p.drained();
    expect(sent).toEqual(['/tasks/start']);
  });

  it('queues while the daemon is down and delivers everything in order when it returns', async () => {
    const d = new FakeDaemon();
    const p = new EventPublisher({ forward: d.forward, minBackoffMs: 5, maxBackoffMs: 20 });
    for (let i = 0; i < 20; i++) p.publish(ev(`/t/${i}`));
    await expect.poll(() => d.attempts).toBeGreaterThan(2);
    expect(d.received).toEqual([]);
    expect(p.pending).toBe(20);
    d.up = true;
    await p.drained();
    expect(d.received).toEqual(Array.from({ length: 20 }, (_, i) => `/t/${i}`));
    expect(p.dropped).toBe(0);
  });

  it('bounds the queue, dropping the oldest and counting them', async () => {
    const d = new FakeDaemon();
    const p = new EventPublisher({ forward: d.forward, maxQueue: 5, minBackoffMs: 5, maxBackoffMs: 10 });
    for (let i = 0; i < 12; i++) p.publish(ev(`/t/${i}`));
    expect(p.pending).toBe(5);
    expect(p.dropped).toBe(7);
    await expect.poll(() => d.attempts).toBeGreaterThan(1);
    d.up = true;
    await p.drained();
    expect(d.received).toEqual(['/t/7', '/t/8', '/t/9', '/t/10', '/t/11']);
  });

  it('drops an event the daemon refuses for good after a few tries, and goes on', async () => {
    const received: string[] = [];
    const p = new EventPublisher({
      forward: async (e) => {
        if (e.topic === '/bad') throw new Error('invalid topic');
        received.push(e.topic);
      },
      isPermanent: (e) => (e as Error).message === 'invalid topic',
      maxAttempts: 3,
      minBackoffMs: 1,
    });
    p.publish(ev('/bad'));
    p.publish(ev('/good'));
    await p.drained();
    expect(received).toEqual(['/good']);
    expect(p.dropped).toBe(1);
  });

  it('close stops the retry loop', async () => {
    const d = new FakeDaemon();
    const p = new EventPublisher({ forward: d.forward, minBackoffMs: 5 });
    p.publish(ev('/x'));
    await new Promise((r) => setTimeout(r, 20));
    p.close();
    const n = d.attempts;
    await new Promise((r) => setTimeout(r, 50));
    expect(d.attempts).toBeLessThanOrEqual(n + 1);
    await p.drained();
  });
});
