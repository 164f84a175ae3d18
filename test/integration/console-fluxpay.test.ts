import { afterEach, describe, expect, it, vi } from 'vitest';
import { fluxpayPage, fluxpaySource } from '../../src/console/sources/fluxpay.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import { stampOf } from '../../src/core/fluxpay/model.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import { aPayment, anOrder } from '../adapters/contracts/fluxpay.contract.ts';
import { ids, T0 } from '../adapters/contracts/fixtures.ts';
import { chargeCredits, confirm, createOrder, createPayment, fluxpayApps, fpGet, fpPost, resultOf, usageEvent, postEvent, type Json } from '../helpers/fluxpay.ts';
import type { TestApp } from '../helpers/app.ts';

/**
 * FluxPay in the console (issue 13): its events on the bus (what makes the console live), its
 * orders in the payments view (rows, detail, the cancel action through the service), and the
 * FluxPay page (credit balances, sagas, the outbox with paging, the reconciliation figure, the
 * waiting rooms), with user-supplied ids escaped. The browser side is in test/browser/console.test.ts.
 */

const apps = fluxpayApps();
afterEach(() => apps.closeAll());

const XSS = '<img src=x onerror=alert(1)>';
const XSS_TEXT = '&lt;img src=x onerror=alert(1)&gt;';
/** userId is visible ASCII without spaces (the API refuses the spaced form): the same attack, spelled with slashes. */
const XSS_ID = '<img/src=x/onerror=alert(1)>';
const XSS_ID_TEXT = '&lt;img/src=x/onerror=alert(1)&gt;';
const AT = '2026-01-15T12:00:00.000Z';

function deps(t: TestApp) {
  return { service: t.app.fluxpay.service, store: t.app.core.stores.fluxpay, rooms: t.app.waitingRooms, billing: t.app.core.stores.billing };
}

function record(t: TestApp): DomainEvent[] {
  const seen: DomainEvent[] = [];
  t.app.core.bus.subscribe((event) => {
    if (event.type.startsWith('fluxpay.')) seen.push(event);
  });
  return seen;
}

/** A console session: its cookie and the CSRF token of the page. */
async function session(t: TestApp): Promise<{ cookie: string; csrf: string }> {
  const page = await t.app.inject({ method: 'GET', url: '/console/payments' });
  expect(page.statusCode).toBe(200);
  return { cookie: String(page.headers['set-cookie']).split(';', 1)[0] as string, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] as string };
}

describe('FluxPay on the event bus', () => {
  it('tells the creation of an order and a payment, then each outbox event once the relay has published it, in write order', async () => {
    const t = await apps.app();
    const seen = record(t);
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId);
    expect(seen.map((e) => [e.type, e.id])).toEqual([
      ['fluxpay.order_created', order.orderId],
      ['fluxpay.payment_created', payment.paymentKey],
    ]);
    resultOf(await confirm(t, payment));
    await t.app.fluxpay.relay.idle();
    const outbox = resultOf(await fpGet(t, '/api/v1/outbox?limit=10')) as Json;
    const events = (outbox.events ?? outbox.data ?? outbox.items) as Json[];
    expect(events.map((e) => [e.eventType, e.status])).toEqual([['payment.approved', 'PUBLISHED']]);
    expect(seen.slice(2)).toEqual([
      {
        id: events[0]?.eventId,
        type: 'fluxpay.event',
        occurredAt: Date.parse(AT),
        event: expect.objectContaining({ eventId: events[0]?.eventId, eventType: 'payment.approved', status: 'PUBLISHED', publishedAt: Date.parse(AT), aggregate: `payment:${payment.paymentKey}` }),
      },
    ]);
  });

  it('tells an outbox event on the bus only after the relay published it: none while publication fails', async () => {
    const t = await apps.app();
    const seen = record(t);
    let fail = true;
    t.app.fluxpay.relay.addPublisher(async () => {
      if (fail) throw new Error('subscriber down');
    });
    await chargeCredits(t, 'u1', 5).catch(() => undefined);
    await t.app.fluxpay.relay.idle();
    expect(seen.filter((e) => e.type === 'fluxpay.event')).toEqual([]);
    fail = false;
    await t.app.fluxpay.relay.run();
    await t.app.fluxpay.relay.idle();
    const published = seen.filter((e) => e.type === 'fluxpay.event').map((e) => (e.type === 'fluxpay.event' ? e.event.eventType : ''));
    expect(published).toEqual(['payment.approved', 'credit.charged', 'order.completed']);
  });
});

describe('which FluxPay bus events refresh what', () => {
  it('refreshes the payments view on order and payment changes, the FluxPay page on every FluxPay event, and neither on other events', async () => {
    const t = await apps.app();
    const source = fluxpaySource(deps(t));
    const page = fluxpayPage(deps(t));
    const outboxEvent = (eventType: string) => ({ id: 'evt_1', type: 'fluxpay.event', occurredAt: 0, event: { eventType } }) as unknown as DomainEvent;
    const created = { id: 'ord_1', type: 'fluxpay.order_created', occurredAt: 0 } as unknown as DomainEvent;
    const other = { id: 'pay_1', type: 'payment.approved', occurredAt: 0 } as unknown as DomainEvent;
    const admitted = { id: 'evt_2', type: 'waiting_room.admitted', occurredAt: 0, roomId: 'sale' } as unknown as DomainEvent;
    const entered = { id: 'evt_3', type: 'waiting_room.entered', occurredAt: 0, roomId: 'sale' } as unknown as DomainEvent;
    const changed = { id: 'evt_4', type: 'waiting_room.changed', occurredAt: 0, roomId: 'sale' } as unknown as DomainEvent;
    const cases = [created, outboxEvent('payment.approved'), outboxEvent('order.cancelled'), outboxEvent('credit.charged'), outboxEvent('credit.deducted'), outboxEvent('credit.refunded'), admitted, entered, changed, other];
    expect(cases.map((e) => [source.concerns(e), page.concerns(e)])).toEqual([
      [true, true],
      [true, true],
      [true, true],
      [true, true],
      [false, true],
      [false, true],
      [false, true],
      [false, true],
      [false, true],
      [false, false],
    ]);
  });
});

describe('FluxPay orders in the payments view', () => {
  it('lists each order with its status group, newest first', async () => {
    const t = await apps.app();
    const pending = await createOrder(t, { userId: 'u-a', orderName: 'pending one', amount: 1000 });
    const paid = await createOrder(t, { userId: 'u-b', orderName: 'paid one', amount: 2000 });
    resultOf(await confirm(t, await createPayment(t, paid.orderId)));
    const cancelled = await createOrder(t, { userId: 'u-c', orderName: 'cancelled one', amount: 3000 });
    resultOf(await fpPost(t, `/api/v1/orders/${cancelled.orderId}/cancel`, { reason: 'changed mind' }));
    const rows = (await fluxpaySource(deps(t)).list({ limit: 10 })).data;
    const base = { dialect: 'fluxpay', currency: 'KRW', createdAt: Date.parse(AT), updatedAt: Date.parse(AT) };
    expect(rows).toEqual([
      { ...base, id: cancelled.orderId, reference: 'u-c · cancelled one', amount: 3000, status: 'CANCELLED', group: 'cancelled' },
      { ...base, id: paid.orderId, reference: 'u-b · paid one', amount: 2000, status: 'PAID', group: 'completed' },
      { ...base, id: pending.orderId, reference: 'u-a · pending one', amount: 1000, status: 'PENDING', group: 'pending' },
    ]);
    expect(await fluxpaySource(deps(t)).list({ limit: 1 })).toEqual({ data: [rows[0]], cursors: [cancelled.orderId], nextCursor: cancelled.orderId });
    expect((await fluxpaySource(deps(t)).list({ limit: 10, cursor: cancelled.orderId })).data).toEqual(rows.slice(1));
  });

  it('details an order (by orderId or paymentKey): fields, history with event names, the latest event as delivery subject, and the cancel action', async () => {
    const t = await apps.app();
    const order = await createOrder(t, { userId: 'u-d', orderName: 'detail', amount: 5000 });
    const payment = await createPayment(t, order.orderId);
    resultOf(await confirm(t, payment));
    await t.app.fluxpay.relay.idle();
    const source = fluxpaySource(deps(t));
    const detail = await source.get(order.orderId);
    expect(await source.get(payment.paymentKey)).toEqual(detail);
    expect(await source.get('ord_missing')).toBeUndefined();
    const approved = (await t.app.fluxpay.service.listOutbox({ limit: 5 })).data[0];
    expect(detail?.history).toEqual([
      { at: Date.parse(AT), status: 'PENDING', event: 'fluxpay.order_created', note: 'order created (detail)' },
      { at: Date.parse(AT), status: 'PENDING', event: 'fluxpay.payment_created', note: `payment ${payment.paymentKey} READY (CARD)` },
      { at: Date.parse(AT), status: 'PAID', event: 'payment.approved', note: 'approved (decided by card)' },
    ]);
    expect(detail?.subject).toEqual({ kind: 'fluxpay_event', id: approved?.eventId });
    expect(Object.fromEntries(detail?.fields ?? [])).toMatchObject({
      'User id': 'u-d',
      'Payment key': payment.paymentKey,
      Payment: 'APPROVED · CARD · card …4242',
      'Outbox events': `payment.approved ${approved?.eventId} (PUBLISHED)`,
    });
    expect(detail?.actions.map((a) => [a.name, a.label])).toEqual([['cancel_order', 'Cancel order (refunds its payment)']]);
  });

  it("shows every outbox event of an order on its detail page, however many newer events of other orders the outbox holds", async () => {
    const t = await apps.app();
    const order = await createOrder(t, { userId: 'u-old', orderName: 'old one' });
    resultOf(await confirm(t, await createPayment(t, order.orderId)));
    const approved = (await t.app.fluxpay.service.listOutbox({ limit: 1 })).data[0];
    // 1,250 newer events of other orders (a payment.approved each), written through the store.
    const store = t.app.core.stores.fluxpay;
    for (let i = 0; i < 1250; i++) {
      const other = anOrder();
      const payment = aPayment(other);
      await store.createOrder(other);
      await store.createPayment(payment);
      const decision = { status: 'APPROVED', failureCode: null, decidedBy: 'card' } as const;
      expect((await store.confirmPayment({ paymentKey: payment.paymentKey, orderId: other.orderId, amount: other.amount, decision }, stampOf(ids, T0))).kind).toBe('approved');
    }
    resultOf(await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, { reason: 'late' }));
    const cancelled = (await t.app.fluxpay.service.listOutbox({ limit: 1 })).data[0];
    await t.app.fluxpay.relay.idle();
    expect((await store.outboxStats()).published).toBe(1252);
    const page = await t.app.inject({ method: 'GET', url: `/console/payments/fluxpay/${order.orderId}` });
    expect(page.statusCode).toBe(200);
    expect(/<dt>Outbox events<\/dt><dd>([^<]*)<\/dd>/.exec(page.body)?.[1]).toBe(`payment.approved ${approved?.eventId} (PUBLISHED), order.cancelled ${cancelled?.eventId} (PUBLISHED)`);
    expect(page.body).toContain(`<dt>Deliveries shown</dt><dd>those of its latest event, ${cancelled?.eventId}</dd>`);
  });

  it("asks the outbox for an order's newest 200 events and says when it holds more", async () => {
    const t = await apps.app();
    const order = await createOrder(t);
    resultOf(await confirm(t, await createPayment(t, order.orderId)));
    resultOf(await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, {}));
    await t.app.fluxpay.relay.idle();
    const real = t.app.core.stores.fluxpay;
    const asked: number[] = [];
    const store = new Proxy(real, {
      get(target, key) {
        if (key === 'orderOutbox')
          return async (orderId: string, limit: number) => {
            asked.push(limit);
            return { ...(await target.orderOutbox(orderId, limit)), total: 250 };
          };
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as FluxPayStore;
    const [approved, cancelled] = (await real.orderOutbox(order.orderId, 200)).events;
    const detail = await fluxpaySource({ ...deps(t), store }).get(order.orderId);
    expect(asked).toEqual([200]);
    expect(Object.fromEntries(detail?.fields ?? [])['Outbox events']).toBe(`the newest 2 of 250: payment.approved ${approved?.eventId} (PUBLISHED), order.cancelled ${cancelled?.eventId} (PUBLISHED)`);
  });

  it('cancels an order from the detail page through the service (refunding its payment), and refuses it once cancelled', async () => {
    const t = await apps.app();
    const order = await createOrder(t);
    resultOf(await confirm(t, await createPayment(t, order.orderId)));
    const { cookie, csrf } = await session(t);
    const post = () => t.app.inject({ method: 'POST', url: `/console/payments/fluxpay/${order.orderId}/cancel_order`, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}&reason=by+hand` });
    const res = await post();
    expect([res.statusCode, res.headers.location]).toEqual([303, `/console/payments/fluxpay/${order.orderId}?notice=cancel_order`]);
    const after = resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`));
    expect([after.status, after.cancelReason]).toEqual(['CANCELLED', 'by hand']);
    const page = await t.app.inject({ method: 'GET', url: `/console/payments/fluxpay/${order.orderId}?notice=cancel_order`, headers: { cookie } });
    expect(page.body).toContain('Order cancelled.');
    expect(page.body).toContain('<span class="badge badge-refunded" data-status="CANCELLED">CANCELLED</span>');
    const again = await post();
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain('is CANCELLED; “cancel_order” is not possible now.');
    expect((await reconciliationCount(t))).toBe(0);
  });

  it('escapes a user-supplied userId and orderName in the list and the detail', async () => {
    const t = await apps.app();
    const order = await createOrder(t, { userId: XSS_ID, orderName: XSS });
    const list = await t.app.inject({ method: 'GET', url: '/console/payments?dialect=fluxpay' });
    expect(list.body).not.toContain(XSS);
    expect(list.body).not.toContain(XSS_ID);
    expect(list.body).toContain(`<td class="ref">${XSS_ID_TEXT} · ${XSS_TEXT}</td>`);
    const detail = await t.app.inject({ method: 'GET', url: `/console/payments/fluxpay/${order.orderId}` });
    expect(detail.statusCode).toBe(200);
    expect(detail.body).not.toContain(XSS);
    expect(detail.body).not.toContain(XSS_ID);
    expect(detail.body).toContain(`<dd>${XSS_ID_TEXT}</dd>`);
    expect(detail.body).toContain(`<dd>${XSS_TEXT}</dd>`);
  });

  it('counts every stored order by status group: paid and completed are completed, a cancel after payment is refunded', async () => {
    const t = await apps.app();
    await createOrder(t);
    const paid = await createOrder(t);
    resultOf(await confirm(t, await createPayment(t, paid.orderId)));
    const refunded = await createOrder(t);
    resultOf(await confirm(t, await createPayment(t, refunded.orderId)));
    resultOf(await fpPost(t, `/api/v1/orders/${refunded.orderId}/cancel`, {}));
    const cancelled = await createOrder(t);
    resultOf(await fpPost(t, `/api/v1/orders/${cancelled.orderId}/cancel`, {}));
    await chargeCredits(t, 'user_c', 3); // a CREDIT_CHARGE order, COMPLETED
    expect(await fluxpaySource(deps(t)).counts()).toEqual({ pending: 1, completed: 2, failed: 0, cancelled: 1, refunded: 1 });
    // The same groups as the rows the list shows.
    const rows = (await fluxpaySource(deps(t)).list({ limit: 100 })).data;
    expect(rows.map((r) => r.group).sort()).toEqual(['cancelled', 'completed', 'completed', 'pending', 'refunded']);
  });

  it('counts approved and declined payments in the charts once the relay has published them', async () => {
    const t = await apps.app();
    const a = await createOrder(t);
    resultOf(await confirm(t, await createPayment(t, a.orderId)));
    const b = await createOrder(t);
    const declined = await confirm(t, await createPayment(t, b.orderId), { 'x-sim-scenario': 'fail' });
    expect(declined.statusCode).toBe(402);
    await t.app.fluxpay.relay.idle();
    await t.clock.advance(3000);
    const page = (await t.app.inject({ method: 'GET', url: '/console/charts' })).body;
    expect(page).toContain('<tr data-dialect="fluxpay"><th scope="row">FluxPay orders (/api/v1/orders)</th><td class="num">1</td><td class="num">1</td></tr>');
    expect(page).toContain('<tr data-dialect="intent"><th scope="row">Native intents (/v1/sim)</th><td class="num">0</td><td class="num">0</td></tr>');
    expect(page).toContain('<p id="charts-totals">2 decisions (1 approved, 1 failed); 0 webhook attempts, 0 succeeded (—); attempt latency p50 — ms, p95 — ms, p99 — ms.</p>');
  });
});

async function reconciliationCount(t: TestApp): Promise<number> {
  return (await t.app.fluxpay.service.reconcile()).mismatches.length;
}

describe('the FluxPay page', () => {
  it('shows credit balances as whole rows, escaping the user id', async () => {
    const t = await apps.app();
    await chargeCredits(t, XSS_ID, 30);
    await chargeCredits(t, 'user_b', 7);
    const [credits] = fluxpayPage(deps(t)).panels;
    expect(credits?.id).toBe('fluxpay-credits');
    expect((await credits!.render()).text).toBe(
      '<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">User</th><th scope="col">Balance</th><th scope="col">Charged</th><th scope="col">Used</th><th scope="col">Refunded</th></tr></thead><tbody>' +
        `<tr data-user="${XSS_ID_TEXT}"><td>${XSS_ID_TEXT}</td><td class="num" data-balance="30">30</td><td class="num">30</td><td class="num">0</td><td class="num">0</td></tr>` +
        '<tr data-user="user_b"><td>user_b</td><td class="num" data-balance="7">7</td><td class="num">7</td><td class="num">0</td><td class="num">0</td></tr>' +
        '</tbody></table></div>',
    );
  });

  it('shows sagas with their steps, the reconciliation figure, and says when there is nothing yet', async () => {
    const t = await apps.app();
    const page = fluxpayPage(deps(t));
    const byId = Object.fromEntries(page.panels.map((p) => [p.id, p]));
    expect(Object.keys(byId)).toEqual(['fluxpay-credits', 'fluxpay-sagas', 'fluxpay-outbox', 'fluxpay-subscriptions', 'fluxpay-billing', 'fluxpay-reconciliation', 'fluxpay-waiting-rooms']);
    expect((await byId['fluxpay-credits']!.render()).text).toBe('<p>No credits charged yet.</p>');
    expect((await byId['fluxpay-sagas']!.render()).text).toBe('<p>No usage sagas yet.</p>');
    await chargeCredits(t, 'user_s', 20);
    const started = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_s', usageId: 'use-1', credits: 5 })));
    const sagaId = (started.saga ?? started).sagaId as string;
    const sagas = (await byId['fluxpay-sagas']!.render()).text;
    expect(sagas).toContain(`<tr data-saga="${sagaId}"><td><code>${sagaId}</code></td><td>user_s · use-1</td><td>—</td><td class="num">5</td><td><span class="badge badge-pending" data-status="RUNNING">RUNNING</span></td><td><ol class="steps"><li data-step="CREDITS_DEDUCTED">CREDITS_DEDUCTED <small>action · SUCCEEDED</small></li></ol></td>`);
    // The reconciliation reads every record: it runs when asked, its link keeping the page's query.
    expect((await byId['fluxpay-reconciliation']!.render({ outbox_status: 'pending' })).text).toBe(
      '<p>Not run yet: it reads every FluxPay record (on Redis in one script, which holds Redis while it runs), so it runs when asked, not with the page’s live updates. <a href="/console/fluxpay?outbox_status=pending&amp;reconcile=1" data-reconcile>Run the reconciliation</a> (as <code>GET /api/v1/reconciliation</code>; best after a load).</p>',
    );
    const reconciled = (await byId['fluxpay-reconciliation']!.render({ reconcile: '1' })).text;
    expect(reconciled).toContain('<p class="imbalance ok" data-mismatches="0">Mismatches: <strong>0</strong> — orders, payments, credits, sagas and the ledger agree</p>');
    expect(reconciled).toContain('<p>Run when this page was loaded, not updated live: <a href="/console/fluxpay?reconcile=1" data-reconcile>run it again</a>.</p>');
    const html = (await t.app.inject({ method: 'GET', url: '/console/fluxpay' })).body;
    for (const id of Object.keys(byId)) expect(html).toContain(id === 'fluxpay-reconciliation' ? `<div id="${id}"><p>Not run yet` : `<div id="${id}" data-topics="fluxpay">`);
  });

  it('runs the reconciliation only for a page load that asks for it, never for the live feed’s refreshes (before 2026-12-06, for each: up to five a second)', async () => {
    const t = await apps.app();
    const reconcile = vi.spyOn(t.app.fluxpay.service, 'reconcile');
    const load = (url: string, refresh = false) => t.app.inject({ method: 'GET', url, headers: refresh ? { 'x-console-refresh': '1' } : {} });
    expect((await load('/console/fluxpay')).body).toContain('<div id="fluxpay-reconciliation"><p>Not run yet');
    expect(reconcile).toHaveBeenCalledTimes(0);
    const asked = await load('/console/fluxpay?reconcile=1');
    expect([asked.statusCode, reconcile.mock.calls.length]).toEqual([200, 1]);
    expect(asked.body).toContain('data-mismatches="0"');
    // The live feed's fetch of the same page: the other panels, the reconciliation's region empty (never swapped: no topics).
    const refreshed = await load('/console/fluxpay?reconcile=1', true);
    expect([refreshed.statusCode, reconcile.mock.calls.length]).toEqual([200, 1]);
    expect(refreshed.body).toContain('<div id="fluxpay-reconciliation"></div>');
    expect(refreshed.body).toContain('<div id="fluxpay-credits" data-topics="fluxpay">');
  });

  it('lists the webhook subscriptions (URL linked to its deliveries, events, created) and FLUXPAY_WEBHOOK_URL; a deleted one is gone', async () => {
    const subscriptionsOf = (t: TestApp, defaultWebhookUrl?: string) => fluxpayPage({ ...deps(t), defaultWebhookUrl }).panels.find((p) => p.id === 'fluxpay-subscriptions')!;
    const t = await apps.app();
    expect((await subscriptionsOf(t).render()).text).toBe('<p class="figures">FLUXPAY_WEBHOOK_URL: — (not set)</p><p>No webhook subscriptions.</p>');
    const typed = resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: 'http://127.0.0.1:9/credits?a=1&b=2', events: ['credit.charged', 'credit.deducted'] }));
    const every = resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: 'http://127.0.0.1:9/all', events: [] }));
    const link = (url: string, shown: string) => `<a href="/console/webhooks?target=${encodeURIComponent(url)}"><code>${shown}</code></a>`;
    const row = (sub: Json, url: string, events: string) => `<tr data-subscription="${sub.subscriptionId}"><td><code>${sub.subscriptionId}</code></td><td class="url">${url}</td><td>${events}</td><td>${sub.createdAt}</td></tr>`;
    const table = (rows: string) =>
      `<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Subscription</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Created</th></tr></thead><tbody>${rows}</tbody></table></div>`;
    const fallback = `<p class="figures">FLUXPAY_WEBHOOK_URL: ${link('http://127.0.0.1:9/default', 'http://127.0.0.1:9/default')}</p>`;
    expect((await subscriptionsOf(t, 'http://127.0.0.1:9/default').render()).text).toBe(
      fallback + table(row(typed, link('http://127.0.0.1:9/credits?a=1&b=2', 'http://127.0.0.1:9/credits?a=1&amp;b=2'), 'credit.charged, credit.deducted') + row(every, link('http://127.0.0.1:9/all', 'http://127.0.0.1:9/all'), 'every type')),
    );
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/webhook-subscriptions/${typed.subscriptionId as string}` })).statusCode).toBe(200);
    expect((await subscriptionsOf(t, 'http://127.0.0.1:9/default').render()).text).toBe(fallback + table(row(every, link('http://127.0.0.1:9/all', 'http://127.0.0.1:9/all'), 'every type')));
    // The page the console serves has the panel, with the app's FLUXPAY_WEBHOOK_URL (unset here).
    const page = (await t.app.inject({ method: 'GET', url: '/console/fluxpay' })).body;
    expect(page).toContain('<div id="fluxpay-subscriptions" data-topics="fluxpay">');
    expect(page).toContain('FLUXPAY_WEBHOOK_URL: — (not set)');
    expect(page).toContain(`<tr data-subscription="${every.subscriptionId}">`);
  });

  it('lists the billing subscriptions: how many in each status, the newest first with plan, period, next charge and latest invoice (linked to its order)', async () => {
    const t = await apps.app();
    const panel = () => fluxpayPage(deps(t)).panels.find((p) => p.id === 'fluxpay-billing')!.render();
    const figures = (active: number, pastDue: number, canceled: number, expired: number) =>
      `<p class="figures">ACTIVE <strong data-billing="ACTIVE">${active}</strong> · PAST_DUE <strong data-billing="PAST_DUE">${pastDue}</strong> · CANCELED <strong data-billing="CANCELED">${canceled}</strong> · EXPIRED <strong data-billing="EXPIRED">${expired}</strong></p>`;
    expect((await panel()).text).toBe(`${figures(0, 0, 0, 0)}<p>No billing subscriptions. Make one with <code>POST /api/v1/subscriptions</code>.</p>`);
    const good = { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 };
    const subscribe = async (userId: string, planId = 'basic-monthly') => resultOf(await fpPost(t, '/api/v1/subscriptions', { userId, planId, card: good })).subscriptionId as string;
    const renewed = await subscribe('user_a');
    const dunned = await subscribe('user_d');
    resultOf(await fpPost(t, `/api/v1/subscriptions/${dunned}/card`, { card: { number: '4000000000000002', expMonth: 12, expYear: 2030 } }));
    const expired = await subscribe('user_e');
    resultOf(await fpPost(t, `/api/v1/subscriptions/${expired}/cancel`, {}));
    const downgraded = await subscribe('user_p', 'pro-monthly');
    resultOf(await fpPost(t, `/api/v1/subscriptions/${downgraded}/change-plan`, { planId: 'basic-monthly' }));
    expect((await panel()).text).toContain(`<td>user_p</td><td>pro-monthly <small>→ basic-monthly at renewal</small></td>`);
    // A month on: one renewed, one declined (PAST_DUE, retried a day later), the canceled one EXPIRED, the downgrade made at its renewal; then one more canceled.
    await t.clock.advance(Date.parse('2026-02-15T12:00:00.000Z') - t.clock.now());
    await t.app.fluxpay.relay.idle();
    const canceled = await subscribe('user_c');
    resultOf(await fpPost(t, `/api/v1/subscriptions/${canceled}/cancel`, {}));
    const latestOrder = async (id: string) => (resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`)).invoices as Json[]).at(-1)!.orderId as string;
    const order = (id: string) => `<a href="/console/payments/fluxpay/${id}">${id}</a>`;
    const row = (id: string, user: string, status: string, period: string, next: string, invoice: string) =>
      `<tr data-billing-subscription="${id}"><td><code>${id}</code></td><td>${user}</td><td>basic-monthly</td><td>${status}</td><td>${period}</td><td>${next}</td><td>${invoice}</td></tr>`;
    const badge = (group: string, status: string) => `<span class="badge badge-${group}" data-status="${status}">${status}</span>`;
    const [january, february] = ['2026-01-15T12:00:00.000Z – 2026-02-15T12:00:00.000Z', '2026-02-15T12:00:00.000Z – 2026-03-15T12:00:00.000Z'];
    const rows = [
      row(canceled, 'user_c', badge('cancelled', 'CANCELED'), february, '—', `INITIAL · PAID · 9,900 KRW · ${order(await latestOrder(canceled))}`),
      row(downgraded, 'user_p', badge('completed', 'ACTIVE'), february, '2026-03-15T12:00:00.000Z', `RENEWAL · PAID · 9,900 KRW · ${order(await latestOrder(downgraded))}`),
      row(expired, 'user_e', badge('cancelled', 'EXPIRED'), january, '—', `INITIAL · PAID · 9,900 KRW · ${order(await latestOrder(expired))}`),
      row(dunned, 'user_d', `${badge('pending', 'PAST_DUE')} <small>declined 1×</small>`, january, '2026-02-16T12:00:00.000Z', `RENEWAL · DECLINED (card_declined) · 9,900 KRW · ${order(await latestOrder(dunned))}`),
      row(renewed, 'user_a', badge('completed', 'ACTIVE'), february, '2026-03-15T12:00:00.000Z', `RENEWAL · PAID · 9,900 KRW · ${order(await latestOrder(renewed))}`),
    ];
    const head = '<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Subscription</th><th scope="col">User</th><th scope="col">Plan</th><th scope="col">Status</th><th scope="col">Current period</th><th scope="col">Next charge</th><th scope="col">Latest invoice</th></tr></thead><tbody>';
    expect((await panel()).text).toBe(`${figures(2, 1, 1, 1)}${head}${rows.join('')}</tbody></table></div>`);
    // Past 50: the newest 50, and how many there are.
    for (let i = 0; i < 46; i++) await subscribe(`user_more_${i}`);
    const full = (await panel()).text;
    expect(full.match(/<tr data-billing-subscription=/g)).toHaveLength(50);
    expect(full).not.toContain(renewed);
    expect(full.endsWith('</tbody></table></div><p class="more">Showing the newest 50 of 51.</p>')).toBe(true);
    // On the page the console serves, refreshed with the rest of FluxPay's panels.
    expect((await t.app.inject({ method: 'GET', url: '/console/fluxpay' })).body).toContain('<section class="card panel wide" aria-labelledby="fluxpay-billing-h"><h2 id="fluxpay-billing-h">Billing subscriptions</h2><div id="fluxpay-billing" data-topics="fluxpay"><p class="figures">ACTIVE <strong data-billing="ACTIVE">48</strong>');
  });

  it('pages the outbox and filters it by pending or published', async () => {
    const t = await apps.app();
    for (let i = 0; i < 14; i++) await chargeCredits(t, `user_${i}`, 1); // 3 events each: 42
    await t.app.fluxpay.relay.idle();
    const outbox = fluxpayPage(deps(t)).panels.find((p) => p.id === 'fluxpay-outbox')!;
    const first = (await outbox.render({})).text;
    expect(first).toContain('Pending <strong data-outbox="pending">0</strong> · published <strong data-outbox="published">42</strong>');
    expect(first.match(/<tr data-event=/g)).toHaveLength(25);
    const next = /<p><a href="\/console\/fluxpay\?outbox_cursor=([^"]+)" data-page="older">Older events →<\/a><\/p>$/.exec(first)?.[1];
    expect(next).toBeDefined();
    const second = (await outbox.render({ outbox_cursor: decodeURIComponent(next!) })).text;
    expect(second.match(/<tr data-event=/g)).toHaveLength(17);
    // An older page links back to the first, and has no older one.
    expect(second.endsWith('</tbody></table></div><p><a href="/console/fluxpay" data-page="newest">← Newest events</a></p>')).toBe(true);
    const published = (await outbox.render({ outbox_status: 'PUBLISHED', outbox_cursor: decodeURIComponent(next!) })).text;
    expect(published.endsWith('</tbody></table></div><p><a href="/console/fluxpay?outbox_status=PUBLISHED" data-page="newest">← Newest events</a></p>')).toBe(true);
    // A cursor the API would refuse (400) is said to be invalid, and the newest events are shown.
    const bogus = (await outbox.render({ outbox_cursor: 'bogus', outbox_status: 'sent' })).text;
    expect(bogus.startsWith(
      '<p class="notice notice-error" role="alert">Outbox status “sent” is not one of PENDING, PUBLISHED: not applied.</p>' +
        '<p class="notice notice-error" role="alert">Outbox cursor “bogus” is invalid: it must be evt_ followed by a 26-character ULID (an Older events link’s). Showing the newest events.</p>' +
        '<p class="figures">Pending <strong data-outbox="pending">0</strong> · published <strong data-outbox="published">42</strong></p>',
    )).toBe(true);
    expect(bogus.match(/<tr data-event=/g)).toHaveLength(25);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/outbox?cursor=bogus' })).statusCode).toBe(400);
    expect((await outbox.render({ outbox_status: 'PENDING' })).text).toContain('<p>No outbox events.</p>');
    // Either case, as the API takes it (before, 'published' was refused as not one of PENDING, PUBLISHED).
    expect((await outbox.render({ outbox_status: 'published' })).text).toBe((await outbox.render({ outbox_status: 'PUBLISHED' })).text);
    expect((await outbox.render({ outbox_status: 'Published' })).text).toContain('Outbox status “Published” is not one of PENDING, PUBLISHED: not applied.');
    expect((await outbox.render({ outbox_status: 'PUBLISHED' })).text.match(/<tr data-event=/g)).toHaveLength(25);
    // Through the route, with the page's query string.
    const routed = await t.app.inject({ method: 'GET', url: `/console/fluxpay?outbox_cursor=${next}` });
    expect(routed.body.match(/<tr data-event=/g)).toHaveLength(17);
  });
});

describe('the waiting rooms on the FluxPay page', () => {
  const HEAD =
    '<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Room</th><th scope="col">State</th><th scope="col">Queue</th><th scope="col">Admitted so far</th><th scope="col">Current rate</th><th scope="col">Active tokens</th><th scope="col">Protects</th><th scope="col">Next admission</th></tr></thead><tbody>';
  const TAIL = '</tbody></table></div>';
  const T0 = Date.parse(AT);
  const iso = (ms: number) => new Date(ms).toISOString();
  const put = async (t: TestApp, roomId: string, body: Json) => {
    const res = await t.app.inject({ method: 'PUT', url: `/api/v1/waiting-rooms/${roomId}`, payload: body });
    expect(res.statusCode, res.body).toBe(201);
  };
  const enter = async (t: TestApp, roomId: string, userId: string) => resultOf(await fpPost(t, `/api/v1/waiting-rooms/${roomId}/enter`, { userId }));

  it('shows every room, by id, with its state, queue, admitted so far, current rate and protected services, as the API counts them', async () => {
    const t = await apps.app();
    const panel = () => fluxpayPage(deps(t)).panels.find((p) => p.id === 'fluxpay-waiting-rooms')!;
    expect((await panel().render()).text).toBe('<p>No waiting rooms. Create one with <code>PUT /api/v1/waiting-rooms/{roomId}</code> or the billing policy’s <code>waitingRooms</code>.</p>');

    await put(t, 'sale', { admitPerSecond: 2, admissionTtlSeconds: 60, protectedServiceIds: ['ai-writer', 'image-studio'], maxActive: 10 });
    await put(t, 'held', { admitPerSecond: 0, admissionTtlSeconds: 60, protectedServiceIds: [] });
    await put(t, 'closed', { admitPerSecond: 5, admissionTtlSeconds: 60, protectedServiceIds: ['ai-writer'], active: false });
    for (const user of ['u1', 'u2', 'u3']) await enter(t, 'sale', user);
    for (const user of ['u4', 'u5']) await enter(t, 'held', user);
    const admitted: DomainEvent[] = [];
    t.app.core.bus.subscribe((event) => {
      if (event.type === 'waiting_room.admitted') admitted.push(event);
    });

    const rows = (sale: { queue: number; admitted: number; next: string }) =>
      HEAD +
      '<tr data-room="closed"><td><code>closed</code></td><td><span class="badge badge-cancelled" data-state="inactive">inactive</span></td><td class="num" data-queue="0">0</td><td class="num" data-admitted="0">0</td><td class="num" data-rate="0">0/s <small>(set 5/s)</small></td><td class="num">0</td><td>ai-writer</td><td>—</td></tr>' +
      '<tr data-room="held"><td><code>held</code></td><td><span class="badge badge-pending" data-state="paused">paused</span></td><td class="num" data-queue="2">2</td><td class="num" data-admitted="0">0</td><td class="num" data-rate="0">0/s</td><td class="num">0</td><td>—</td><td>—</td></tr>' +
      `<tr data-room="sale"><td><code>sale</code></td><td><span class="badge badge-completed" data-state="admitting">admitting</span></td><td class="num" data-queue="${sale.queue}">${sale.queue}</td><td class="num" data-admitted="${sale.admitted}">${sale.admitted}</td><td class="num" data-rate="2">2/s</td><td class="num">${sale.admitted} <small>of 10</small></td><td>ai-writer, image-studio</td><td>${sale.next}</td></tr>` +
      TAIL;
    // The first user is admitted at once; the next one 500 ms later (2 a second).
    expect((await panel().render()).text).toBe(rows({ queue: 2, admitted: 1, next: iso(T0 + 500) }));
    const api = resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'));
    expect([api.size, api.admitted, api.currentRate]).toEqual([2, 1, 2]);

    // A second later both are admitted, each told on the bus (what refreshes the panel).
    await t.clock.advance(1000);
    expect(admitted.map((e) => (e.type === 'waiting_room.admitted' ? [e.roomId, e.admittedAt] : []))).toEqual([
      ['sale', T0 + 500],
      ['sale', T0 + 1000],
    ]);
    expect(admitted.every((e) => fluxpayPage(deps(t)).concerns(e))).toBe(true);
    expect((await panel().render()).text).toBe(rows({ queue: 0, admitted: 3, next: '—' }));

    // On the page, in a region refreshed with the FluxPay topic.
    const page = (await t.app.inject({ method: 'GET', url: '/console/fluxpay' })).body;
    expect(page).toContain('<section class="card panel wide" aria-labelledby="fluxpay-waiting-rooms-h"><h2 id="fluxpay-waiting-rooms-h">Waiting rooms</h2><div id="fluxpay-waiting-rooms" data-topics="fluxpay">' + rows({ queue: 0, admitted: 3, next: '—' }) + '</div></section>');
  });
});
