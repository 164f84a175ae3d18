import { describe, expect, it } from 'vitest';
import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import { lineChart, niceMax } from '../../src/console/charts.ts';
import { LiveFeed, STORE_CHECK_MS } from '../../src/console/feed.ts';
import { escapeHtml, html, raw } from '../../src/console/html.ts';
import { ConsoleAuth, cookieValue, sessionCookie } from '../../src/console/auth.ts';
import { EventBus, type DomainEvent } from '../../src/core/events.ts';
import { listPayments, readPaymentFilters } from '../../src/console/payments-list.ts';
import { noCounts, rowsOf, ulidCursor, type PaymentRow, type PaymentSource } from '../../src/console/sources.ts';
import { IdList, pageOf } from '../../src/adapters/memory/id-list.ts';
import { monotonicUlid } from '../../src/core/ids.ts';

const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);

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

  it('tells its clients when the store goes away and comes back (checked every STORE_CHECK_MS while one is connected), and a client that connects during an outage at once', async () => {
    let available = true;
    let checks = 0;
    const feed = new LiveFeed(new EventBus(), () => [], () => {
      checks++;
      return available;
    });
    expect(checks).toBe(0);
    const first: string[] = [];
    const remove = feed.add({ write: (chunk) => void first.push(chunk), end: () => undefined });
    const hello = 'retry: 2000\nevent: hello\ndata: {}\n\n';
    const away = 'event: store\ndata: {"available":false}\n\n';
    const back = 'event: store\ndata: {"available":true}\n\n';
    available = false;
    await new Promise((resolve) => setTimeout(resolve, STORE_CHECK_MS + 200));
    const second: string[] = [];
    const removeSecond = feed.add({ write: (chunk) => void second.push(chunk), end: () => undefined });
    await new Promise((resolve) => setTimeout(resolve, STORE_CHECK_MS + 200));
    expect([first, second]).toEqual([[hello, away], [hello, away]]);
    available = true;
    await new Promise((resolve) => setTimeout(resolve, STORE_CHECK_MS + 200));
    expect([first, second]).toEqual([[hello, away, back], [hello, away, back]]);
    remove();
    removeSecond();
    // No client: no check.
    const after = checks;
    await new Promise((resolve) => setTimeout(resolve, STORE_CHECK_MS + 200));
    expect(checks).toBe(after);
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
    const { value, session } = auth.issue(true, T0);
    expect(auth.verify(value, T0)).toEqual(session);
    expect(other.verify(value, T0)).toBeUndefined();
    expect(auth.verify(value.replace('.1.', '.0.'), T0)).toBeUndefined();
    expect(auth.verify(`${value}.x`, T0)).toBeUndefined();
    expect(auth.csrfMatches(session, auth.csrfToken(session))).toBe(true);
    expect(auth.csrfMatches(auth.issue(true, T0).session, auth.csrfToken(session))).toBe(false);
    expect(auth.csrfMatches(session, undefined)).toBe(false);
    expect(auth.tokenMatches('token-1234')).toBe(true);
    expect(auth.tokenMatches('token-123')).toBe(false);
    expect(new ConsoleAuth(undefined).tokenMatches('')).toBe(false);
    expect(cookieValue('a=1; paysim_console=v.0.m; b=2', 'paysim_console')).toBe('v.0.m');
  });

  it('names its cookie after its key, so consoles on one host (browsers keep cookies per host, not port) keep their own sessions; one key, one name; a key drawn at start, after the browser’s port', () => {
    const shared = randomBytes(32).toString('base64');
    const names = [new ConsoleAuth('token-1234'), new ConsoleAuth('token-5678'), new ConsoleAuth(undefined, shared)].map((auth) => auth.cookieName(8080));
    expect(names.every((name) => /^paysim_console_[\w-]{8}$/.test(name))).toBe(true);
    expect(new Set(names).size).toBe(3);
    // Replicas with one CONSOLE_TOKEN, or one key on Redis: one name whatever the port, and each takes the other's cookies.
    const [a, b] = [new ConsoleAuth('token-1234'), new ConsoleAuth('token-1234')];
    expect([b.cookieName(8080), b.cookieName(9002)]).toEqual([a.cookieName(8080), a.cookieName(8080)]);
    expect(b.verify(a.issue(true, T0).value, T0)).toEqual(expect.objectContaining({ authenticated: true }));
    expect(new ConsoleAuth(undefined, shared).cookieName(9002)).toBe(names[2]);
    // A key drawn at each start (no token, memory): named by the port the browser sent the request to, so a
    // restart's cookie replaces the last (a review: named by the key, one more cookie per restart, until a 431),
    // and two containers publishing one container port on two host ports keep theirs apart (a review).
    const restarts = [1, 2, 3].map(() => new ConsoleAuth(undefined).cookieName(9002));
    expect(restarts).toEqual(['paysim_console_port9002', 'paysim_console_port9002', 'paysim_console_port9002']);
    expect(new ConsoleAuth(undefined).cookieName(9003)).toBe('paysim_console_port9003');
  });

  it('derives its key from CONSOLE_TOKEN with scrypt: an anonymous cookie, given to every visitor, is no cheap test of a guessed token', () => {
    const auth = new ConsoleAuth('token-1234');
    const { value } = auth.issue(false, T0);
    const [nonce, , tag] = value.split('.');
    const key = scryptSync('token-1234', 'paysim-console-session', 32, { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    expect(tag).toBe(createHmac('sha256', key).update(`session:${nonce}:0`).digest('base64url'));
    // Before 2026-12-05: one HMAC of the token, millions of guesses a second.
    const fast = createHmac('sha256', 'paysim-console-session').update('token-1234').digest();
    expect(tag).not.toBe(createHmac('sha256', fast).update(`session:${nonce}:0`).digest('base64url'));
  });

  it('a logged-in session carries its expiry, signed: refused from then on, or with the expiry changed; an anonymous one does not expire', () => {
    const auth = new ConsoleAuth('token-1234', undefined, 60_000);
    const { value, session } = auth.issue(true, T0);
    expect(session).toEqual({ nonce: expect.stringMatching(/^[\w-]{24}$/), authenticated: true, expiresAt: T0 + 60_000 });
    expect(value).toBe(`${session.nonce}.1.${T0 + 60_000}.${value.split('.')[3]}`);
    expect(auth.verify(value, T0 + 59_999)).toEqual(session);
    expect(auth.verify(value, T0 + 60_000)).toBeUndefined();
    expect(auth.verify(value.replace(`.${T0 + 60_000}.`, `.${T0 + 120_000}.`), T0 + 60_000)).toBeUndefined();
    // A logged-in cookie of a version before the expiry (`<nonce>.1.<mac>`) is refused.
    const [nonce, , , mac] = value.split('.');
    expect(auth.verify(`${nonce}.1.${mac}`, T0)).toBeUndefined();
    const anonymous = auth.issue(false, T0);
    expect(anonymous.value).toMatch(/^[\w-]{24}\.0\.[\w-]{43}$/);
    expect(auth.verify(anonymous.value, T0 + 365 * 86_400_000)).toEqual({ nonce: anonymous.session.nonce, authenticated: false });
    expect(sessionCookie(auth.cookieName(80), value, false, 60_000)).toBe(`${auth.cookieName(80)}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=60`);
    expect(sessionCookie(auth.cookieName(80), anonymous.value, true)).toBe(`${auth.cookieName(80)}=${anonymous.value}; Path=/console; HttpOnly; SameSite=Strict; Secure`);
  });
});

describe('console charts', () => {
  it('rounds the y axis up to 1, 2 or 5 times a power of ten', () => {
    expect([niceMax(0), niceMax(3), niceMax(7), niceMax(140), niceMax(0.3)]).toEqual([1, 5, 10, 200, 0.5]);
  });

  it('draws a line through consecutive values, a gap where a value is null, and a dot only for a value standing alone', () => {
    const chart = lineChart({ id: 'c', title: 'T', unit: '%', starts: [0, 10_000, 20_000, 30_000, 40_000, 50_000], series: [{ name: 'rate', cls: 'line-approved', values: [100, 50, null, 0, null, null] }], fixedMax: 100 }).text;
    expect(chart).toContain('<path class="line-approved" d="M48.0,24.0 L164.0,108.0 M396.0,192.0" fill="none"/>');
    expect(chart.match(/<circle [^>]+>/g)).toEqual(['<circle class="line-approved" cx="396.0" cy="192.0" r="2.5" fill="none"/>']);
    expect(chart).toContain('<desc id="c-d">Last 1 minutes (times in UTC). Latest: rate: 0.</desc>');
    // The time axis says its zone.
    expect(chart).toContain(
      '<text class="axis" x="48.0" y="212" text-anchor="middle">00:00:00</text><text class="axis" x="280.0" y="212" text-anchor="middle">00:00:20</text><text class="axis" x="512.0" y="212" text-anchor="middle">00:00:40</text>\n    <text class="axis" x="42" y="12" text-anchor="end">%</text>\n    <text class="axis" x="628" y="12" text-anchor="end">time (UTC)</text>',
    );
    expect(chart).toContain('<p class="chart-summary">Latest: rate: 0</p>');
  });
});

describe('console payments list', () => {
  it('reads on over a long stretch of evicted entries in a store (pages the store cut short, empty): the page reads on past it to the older payments (before, it said the list ended there)', async () => {
    // A memory store's list (IdList and pageOf, as the intents store): the newest 10 and the oldest
    // 10 held, the 26,000 between evicted (dead entries: fewer than half, so not compacted away).
    const ulid = monotonicUlid();
    const ids = Array.from({ length: 26_020 }, () => `pay_${ulid(T0)}`);
    const held = new Set([...ids.slice(0, 10), ...ids.slice(-10)]);
    const list = IdList.of(...ids);
    const row = (id: string): PaymentRow => ({ dialect: 'intent', id, reference: 'R', amount: 100, currency: 'KRW', status: 'PENDING', group: 'pending', createdAt: T0, updatedAt: T0 });
    const source: PaymentSource = {
      dialect: 'intent',
      label: 'Native intents (/v1/sim)',
      list: (query) => Promise.resolve(rowsOf(pageOf(list, query, (id) => (held.has(id) ? { id } : undefined), ({ id }) => row(id)), (r) => r)),
      cursor: ulidCursor('pay'),
      counts: () => Promise.resolve({ ...noCounts(), pending: 20 }),
      get: () => Promise.resolve(undefined),
      find: () => Promise.resolve(undefined),
      concerns: () => false,
    };
    // Before, the page gave up after four empty store pages and said it was the end of the list.
    const listed = await listPayments([source], {}, T0);
    expect(listed.rows.map((r) => r.id)).toEqual([...ids.slice(-10).reverse(), ...ids.slice(0, 10).reverse()]);
    expect(listed.older).toBeNull();
    // From an Older link's cursor that stops just before the stretch: the oldest 10 on the next page.
    const positions = { intent: ids.at(-10) as string };
    const older = await listPayments([source], { before: { at: T0, id: ids.at(-10) as string, since: T0, positions } }, T0);
    expect(older.rows.map((r) => r.id)).toEqual(ids.slice(0, 10).reverse());
    expect(older.older).toBeNull();
  });

  it('an Older page skips at most 5,000 payments made after the first page was read, then says it stopped and links on: never an unbounded read', async () => {
    // 6,000 intents made after the first page (at T0) and 3 before, in one source the pages had not reached.
    const ulid = monotonicUlid();
    const old = Array.from({ length: 3 }, () => `pay_${ulid(T0 - 1000)}`);
    const late = Array.from({ length: 6_000 }, () => `pay_${ulid(T0 + 1000)}`);
    const list = IdList.of(...old, ...late);
    const createdAt = new Map([...old.map((id) => [id, T0 - 1000] as const), ...late.map((id) => [id, T0 + 1000] as const)]);
    const row = (id: string): PaymentRow => ({ dialect: 'intent', id, reference: 'R', amount: 100, currency: 'KRW', status: 'PENDING', group: 'pending', createdAt: createdAt.get(id) as number, updatedAt: T0 });
    const source: PaymentSource = {
      dialect: 'intent',
      label: 'Native intents (/v1/sim)',
      list: (query) => Promise.resolve(rowsOf(pageOf(list, query, (id) => ({ id }), ({ id }) => row(id)), (r) => r)),
      cursor: ulidCursor('pay'),
      counts: () => Promise.resolve({ ...noCounts(), pending: 6_003 }),
      get: () => Promise.resolve(undefined),
      find: () => Promise.resolve(undefined),
      concerns: () => false,
    };
    const before = { at: T0 - 2000, id: 'pay_01KBA7Q4A6J3M8P1T5W9Y2C4HD', since: T0, positions: { intent: undefined } };
    const page = await listPayments([source], { before }, T0 + 5000);
    expect([page.rows, page.read, page.stopped, page.older === null]).toEqual([[], 5_000, true, false]);
    // Its Older link goes on from where it stopped, with the first page's time still: the 3 older ones.
    const next = readPaymentFilters([source], { cursor: page.older as string });
    expect([next.invalid, next.filters.before?.since, next.filters.before?.at]).toEqual([[], T0, T0 - 2000]);
    const rest = await listPayments([source], next.filters, T0 + 6000);
    expect([rest.rows.map((r) => r.id), rest.older]).toEqual([[...old].reverse(), null]);
  });

  it('a source whose empty page does not move on (its next cursor the one asked) is read no further: the page answers with the other sources, never a loop', async () => {
    const asked: Array<string | undefined> = [];
    const stuck: PaymentSource = {
      dialect: 'intent',
      label: 'Native intents (/v1/sim)',
      list: (query) => {
        asked.push(query.cursor);
        // Gives up after 50 reads, so that the loop this test is about (without the check) ends and fails the test instead of hanging it.
        return Promise.resolve({ data: [], cursors: [], nextCursor: asked.length >= 50 ? null : (query.cursor ?? 'pay_01KBA7Q4A6J3M8P1T5W9Y2C4HD') });
      },
      cursor: ulidCursor('pay'),
      counts: () => Promise.resolve(noCounts()),
      get: () => Promise.resolve(undefined),
      find: () => Promise.resolve(undefined),
      concerns: () => false,
    };
    const row: PaymentRow = { dialect: 'v2', id: 'pay_tx_1', reference: 'R', amount: 100, currency: 'KRW', status: 'PENDING', group: 'pending', createdAt: T0, updatedAt: T0 };
    const other: PaymentSource = { ...stuck, dialect: 'v2', label: '/api/v2', list: () => Promise.resolve({ data: [row], cursors: ['1'], nextCursor: null }) };
    const listed = await listPayments([stuck, other], {}, T0);
    expect([listed.rows, listed.older, asked]).toEqual([[row], null, [undefined, 'pay_01KBA7Q4A6J3M8P1T5W9Y2C4HD']]);
  });
});
