import { describe, expect, it } from 'vitest';
import { bucketStarts, decisionSeries, niceMax, percentile, webhookSeries } from '../../src/console/charts.ts';
import { LiveFeed } from '../../src/console/feed.ts';
import { escapeHtml, html, raw } from '../../src/console/html.ts';
import { ConsoleAuth, cookieValue } from '../../src/console/auth.ts';
import { EventBus, type DomainEvent } from '../../src/core/events.ts';
import type { Delivery } from '../../src/core/deliveries.ts';

describe('console html', () => {
  it('escapes every interpolated value, keeps html`` fragments, and drops null, undefined and false', () => {
    const name = '<img src=x onerror=alert(1)>';
    expect(html`<td title="${name}">${name}</td>`.text).toBe('<td title="&lt;img src=x onerror=alert(1)&gt;">&lt;img src=x onerror=alert(1)&gt;</td>');
    expect(html`<p>${html`<b>${'"&\''}</b>`}${null}${undefined}${false}${[1, '<', raw('<i>')]}</p>`.text).toBe('<p><b>&quot;&amp;&#39;</b>1&lt;<i></p>');
    expect(escapeHtml('`')).toBe('&#96;');
  });
});

describe('console live feed', () => {
  const event = (type: string): DomainEvent => ({ id: 'evt_1', type, occurredAt: 0 }) as unknown as DomainEvent;

  it('subscribes to the bus only while a client is connected, and coalesces events into one message naming the topics', async () => {
    const bus = new EventBus();
    let subscriptions = 0;
    const subscribe = bus.subscribe.bind(bus);
    bus.subscribe = (handler) => {
      subscriptions++;
      const off = subscribe(handler);
      return () => {
        subscriptions--;
        return off();
      };
    };
    const feed = new LiveFeed(bus, (e) => (e.type.startsWith('webhook.') ? ['webhooks'] : ['payments']));
    expect([feed.subscribed, subscriptions]).toEqual([false, 0]);
    const written: string[] = [];
    const remove = feed.add({ write: (chunk) => void written.push(chunk), end: () => undefined });
    expect([feed.subscribed, subscriptions]).toEqual([true, 1]);
    const removeSecond = feed.add({ write: () => undefined, end: () => undefined });
    expect(subscriptions).toBe(1);
    for (let i = 0; i < 100; i++) bus.publish(event(i % 2 === 0 ? 'payment.approved' : 'webhook.delivered'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written).toEqual(['retry: 2000\nevent: hello\ndata: {}\n\n', 'event: change\ndata: {"topics":["payments","webhooks"]}\n\n']);
    remove();
    expect(subscriptions).toBe(1);
    removeSecond();
    expect([feed.subscribed, subscriptions, feed.clients]).toEqual([false, 0, 0]);
    bus.publish(event('payment.approved'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written.length).toBe(2);
  });

  it('ends every stream on close', () => {
    const feed = new LiveFeed(new EventBus(), () => []);
    let ended = 0;
    feed.add({ write: () => undefined, end: () => void ended++ });
    feed.add({ write: () => undefined, end: () => void ended++ });
    feed.close();
    expect([ended, feed.subscribed, feed.clients]).toEqual([2, false, 0]);
  });
});

describe('console session and CSRF tokens', () => {
  it('verifies its own cookies only, and ties the CSRF token to the session', () => {
    const auth = new ConsoleAuth('token-1234');
    const other = new ConsoleAuth('token-5678');
    const { value, session } = auth.issue(true);
    expect(auth.verify(value)).toEqual(session);
    expect(other.verify(value)).toBeUndefined();
    expect(auth.verify(value.replace('.1.', '.0.'))).toBeUndefined();
    expect(auth.verify(`${value}.x`)).toBeUndefined();
    expect(auth.csrfMatches(session, auth.csrfToken(session))).toBe(true);
    expect(auth.csrfMatches(auth.issue(true).session, auth.csrfToken(session))).toBe(false);
    expect(auth.csrfMatches(session, undefined)).toBe(false);
    expect(auth.tokenMatches('token-1234')).toBe(true);
    expect(auth.tokenMatches('token-123')).toBe(false);
    expect(new ConsoleAuth(undefined).tokenMatches('')).toBe(false);
    expect(cookieValue('a=1; paysim_console=v.0.m; b=2', 'paysim_console')).toBe('v.0.m');
  });
});

describe('console charts', () => {
  it('buckets decisions per second by outcome over the window', () => {
    const now = 1_000_000_005_000;
    const starts = bucketStarts(now, 300_000, 10_000);
    expect(starts.length).toBe(30);
    expect(starts.at(-1)).toBe(1_000_000_000_000);
    const { series } = decisionSeries(
      [
        { at: now, outcome: 'approved' },
        { at: now - 1, outcome: 'approved' },
        { at: now, outcome: 'failed' },
        { at: now - 400_000, outcome: 'failed' }, // outside the window
      ],
      now,
    );
    expect(series.map((s) => [s.name, s.values.at(-1), s.values.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)])).toEqual([
      ['approved / s', 0.2, 0.2],
      ['failed / s', 0.1, 0.1],
    ]);
  });

  it('computes the success rate and nearest-rank latency percentiles of the attempts in each bucket', () => {
    expect(percentile([], 50)).toBeNull();
    expect([percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 95), percentile([5], 99)]).toEqual([2, 4, 5]);
    expect([niceMax(0), niceMax(3), niceMax(7), niceMax(140)]).toEqual([1, 5, 10, 200]);
    const now = 1_000_000_000_000;
    const attempt = (statusCode: number | null, durationMs: number) => ({ at: now, statusCode, durationMs, error: statusCode === null ? 'timeout' : null });
    const delivery = { attempts: [attempt(200, 10), attempt(500, 30), attempt(null, 1000), attempt(204, 20)] } as unknown as Delivery;
    const w = webhookSeries([delivery], now);
    expect(w.attempts).toBe(4);
    expect(w.rate[0]?.values.at(-1)).toBe(50);
    expect(w.latency.map((s) => s.values.at(-1))).toEqual([20, 1000, 1000]);
    expect(w.rate[0]?.values.slice(0, -1).every((v) => v === null)).toBe(true);
  });
});
