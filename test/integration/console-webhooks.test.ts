import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery, DeliveryStatus, Subject } from '../../src/core/deliveries.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/**
 * The console's Webhooks page over a long delivery log: its filters reach every delivery (the
 * status and subject through the store's own queries, the target URL by a bounded scan that says
 * where it stopped and continues from there), and the list pages to older deliveries.
 */

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.close();
  t = undefined;
});

const BASE = 'http://127.0.0.1:9';

/** Logs a delivery as the dispatcher would have (nothing is sent: it is not queued). */
async function logged(app: TestApp, path: string, status: DeliveryStatus, subject: Subject = { kind: 'intent', id: app.app.core.ids('pay') }): Promise<Delivery> {
  const now = app.clock.now();
  const delivery: Delivery = {
    id: app.app.core.ids('whd'),
    eventId: app.app.core.ids('evt'),
    type: 'payment.approved',
    url: `${BASE}${path}`,
    subject,
    test: false,
    body: '{}',
    extraHeaders: {},
    schemes: ['standard'],
    status,
    attempts: [],
    seriesStart: 0,
    nextAttemptAt: null,
    failureReason: status === 'failed' ? 'gave_up' : null,
    createdAt: now,
    updatedAt: now,
  };
  expect(await app.app.webhooks.log.insert(delivery)).toEqual({ ok: true });
  return delivery;
}

async function webhooksPage(app: TestApp, query: string): Promise<string> {
  const res = await app.app.inject({ method: 'GET', url: `/console/webhooks${query}` });
  expect(res.statusCode).toBe(200);
  return res.body;
}

const listed = (body: string): string[] => [...body.matchAll(/<tr data-delivery="(whd_\w+)">/g)].map((m) => m[1] as string);
const footer = (body: string): string | undefined => /<p class="hint"[^>]* data-shown="\d+">.*?<\/p>/.exec(body)?.[0];
const stopped = (body: string): string | undefined => /<p class="notice" role="status" data-search-stopped=.*?<\/p>/.exec(body)?.[0];
const errors = (body: string): string[] => [...body.matchAll(/<p class="notice notice-error" role="alert">(.*?)<\/p>/g)].map((m) => m[1] as string);

describe('the Webhooks page over a long log', () => {
  it('finds a target URL’s deliveries beyond the newest 5,000: it says where its scan stopped and continues from there; "pending or retrying" is the store’s query', async () => {
    t = await buildTestApp();
    const whs = [await logged(t, '/whs', 'pending'), await logged(t, '/whs', 'retrying'), await logged(t, '/whs', 'failed')];
    const others: Delivery[] = [];
    for (let i = 0; i < 5100; i++) others.push(await logged(t, `/rb/${i}`, 'delivered'));
    const target = encodeURIComponent(`${BASE}/whs`);

    const first = await webhooksPage(t, `?target=${target}`);
    const stop = others[100]!.id; // the 5,000th newest
    expect(listed(first)).toEqual([]);
    expect(first).toContain('<p>No deliveries match.</p>');
    expect(stopped(first)).toBe(
      `<p class="notice" role="status" data-search-stopped="${stop}">Looked at the newest 5000 deliveries and stopped, back to <code>${stop}</code>; 0 matched. Older deliveries were not searched: <a href="/console/webhooks?target=${target}&amp;cursor=${stop}" data-page="continue">continue the search →</a></p>`,
    );
    expect(footer(first)).toBe('<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="0">0 deliveries shown, newest first (filtered); 5103 in the log.</p>');

    const rest = await webhooksPage(t, `?target=${target}&cursor=${stop}`);
    expect(listed(rest)).toEqual(whs.map((d) => d.id).reverse());
    expect(stopped(rest)).toBeUndefined();
    expect(footer(rest)).toBe(
      `<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="3">3 deliveries shown, newest first, older than <code>${stop}</code> (filtered); 5103 in the log. <a href="/console/webhooks?target=${target}" data-page="newest">← Newest</a></p>`,
    );

    // "pending or retrying": the store's status queries, merged: found at once, whatever came after.
    const open = await webhooksPage(t, '?status=pending');
    expect(listed(open)).toEqual([whs[1]!.id, whs[0]!.id]);
    expect(stopped(open)).toBeUndefined();
    expect(footer(open)).toBe('<p class="hint" data-shown="2">2 deliveries shown, newest first (filtered); 5103 in the log.</p>');
    // No page link, so no link to skip to them.
    expect(open).not.toContain('skip-inline');
    expect(listed(await webhooksPage(t, '?status=failed'))).toEqual([whs[2]!.id]);
    const bySubject = await webhooksPage(t, `?subject=intent%3A${whs[0]!.subject!.id}`);
    expect(listed(bySubject)).toEqual([whs[0]!.id]);
    // One is a delivery (before 2026-12-05: "1 deliveries shown", a user test).
    expect(footer(bySubject)).toBe('<p class="hint" data-shown="1">1 delivery shown, newest first (filtered); 5103 in the log.</p>');
  });

  it('pages the log 100 deliveries at a time, with Older and Newest links, and says how many it shows', async () => {
    t = await buildTestApp();
    const all: Delivery[] = [];
    for (let i = 0; i < 250; i++) all.push(await logged(t, `/p/${i}`, i % 2 === 0 ? 'delivered' : 'failed'));
    const newest = all.map((d) => d.id).reverse();

    const one = await webhooksPage(t, '');
    expect(listed(one)).toEqual(newest.slice(0, 100));
    expect(footer(one)).toBe(`<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="100">100 deliveries shown, newest first; 250 in the log. <a href="/console/webhooks?cursor=${newest[99]}" data-page="older">Older →</a></p>`);
    // Before the table, a link (shown when it has the focus) to that footer, past the rows' links and Replay buttons.
    expect(one).toContain('<a class="skip-inline" href="#deliveries-pages">Skip to the page links (Older, Newest)</a><div class="scroll" tabindex="0"><table class="deliveries">');
    const two = await webhooksPage(t, `?cursor=${newest[99]}`);
    expect(listed(two)).toEqual(newest.slice(100, 200));
    expect(footer(two)).toBe(
      `<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="100">100 deliveries shown, newest first, older than <code>${newest[99]}</code>; 250 in the log. <a href="/console/webhooks" data-page="newest">← Newest</a> <a href="/console/webhooks?cursor=${newest[199]}" data-page="older">Older →</a></p>`,
    );
    const three = await webhooksPage(t, `?cursor=${newest[199]}`);
    expect(listed(three)).toEqual(newest.slice(200));
    expect(footer(three)).toBe(`<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="50">50 deliveries shown, newest first, older than <code>${newest[199]}</code>; 250 in the log. <a href="/console/webhooks" data-page="newest">← Newest</a></p>`);
    // The status filter pages too, and its links keep it.
    const failed = await webhooksPage(t, '?status=failed');
    const failedIds = newest.filter((_, i) => i % 2 === 0);
    expect(listed(failed)).toEqual(failedIds.slice(0, 100));
    expect(footer(failed)).toBe(`<p class="hint" id="deliveries-pages" tabindex="-1" data-shown="100">100 deliveries shown, newest first (filtered); 250 in the log. <a href="/console/webhooks?status=failed&amp;cursor=${failedIds[99]}" data-page="older">Older →</a></p>`);
    expect(listed(await webhooksPage(t, `?status=failed&cursor=${failedIds[99]}`))).toEqual(failedIds.slice(100));
  });

  it('links each delivery’s subject to a page that exists: a payment’s own page, and a FluxPay event (the delivery names no order) to its deliveries, as the FluxPay page’s outbox does (before 2026-12-07 a 404)', async () => {
    t = await buildTestApp();
    const ids = t.app.core.ids;
    const subjects: Subject[] = [
      { kind: 'intent', id: ids('pay') },
      { kind: 'v2_payment', id: 'tx-1' },
      { kind: 'booking', id: 'bk_1' },
      { kind: 'fluxpay_event', id: ids('evt') },
    ];
    const made = [];
    for (const subject of subjects) made.push(await logged(t, '/subjects', 'delivered', subject));
    const body = await webhooksPage(t, '');
    const links = made.map((d) => new RegExp(`<tr data-delivery="${d.id}">.*?<a href="([^"]*)">${d.subject?.id}</a>`, 's').exec(body)?.[1]);
    const event = subjects[3]?.id as string;
    expect(links).toEqual([`/console/payments/intent/${subjects[0]?.id}`, '/console/payments/v2/tx-1', '/console/payments/booking/bk_1', `/console/webhooks?subject=fluxpay_event%3A${event}`]);
    // The FluxPay event's link lists that event's deliveries.
    expect(listed(await webhooksPage(t, `?subject=fluxpay_event%3A${event}`))).toEqual([made[3]?.id]);
  });

  it('says a filter value it does not know is not applied, and shows it selected nowhere; status=all is every status', async () => {
    t = await buildTestApp();
    const d = await logged(t, '/x', 'delivered');
    const bogus = await webhooksPage(t, '?status=bogus&subject=bogus&cursor=nope');
    expect(errors(bogus)).toEqual([
      'Status “bogus” is not one of failed, pending, delivered: not applied.',
      'Subject “bogus” is not kind:id with a kind of intent, v2_payment, booking, fluxpay_event: not applied.',
      'Cursor “nope” is invalid (a delivery id, whd_ and 26 characters, from an Older link): showing the newest deliveries.',
    ]);
    expect(/<select id="w-status" name="status">(.*?)<\/select>/.exec(bogus)?.[1]).toBe(
      '<option value="" selected>all</option><option value="failed">failed</option><option value="pending">pending or retrying</option><option value="delivered">delivered</option>',
    );
    expect(bogus).toContain('<input id="w-subject" name="subject" type="search" value="" maxlength="300">');
    expect(listed(bogus)).toEqual([d.id]);
    const all = await webhooksPage(t, '?status=all');
    expect(errors(all)).toEqual([]);
    expect(all).toContain('<option value="" selected>all</option>');
    expect(listed(all)).toEqual([d.id]);
    expect(errors(await webhooksPage(t, '?subject=nope%3Ax'))).toEqual(['Subject “nope:x” is not kind:id with a kind of intent, v2_payment, booking, fluxpay_event: not applied.']);
  });
});
