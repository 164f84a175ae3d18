import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/deliveries.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually, startReceiver } from '../helpers/receiver.ts';

/**
 * The console's server side without a browser (test/browser/console.test.ts drives it in
 * Chromium): it is off with CONSOLE_ENABLED=false, its CSP and cookies stay under /console (the
 * APIs answer exactly as without it), forms are validated like the APIs' bodies, and a secret
 * never shows up in a page.
 */

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.close();
  t = undefined;
});

/** A console session: its cookie and the CSRF token of the page. */
async function session(app: TestApp['app']): Promise<{ cookie: string; csrf: string }> {
  const page = await app.inject({ method: 'GET', url: '/console/payments' });
  expect(page.statusCode).toBe(200);
  const cookie = String(page.headers['set-cookie']).split(';', 1)[0] as string;
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] as string;
  return { cookie, csrf };
}

/** The login form (CONSOLE_TOKEN set): its anonymous session's cookie and the form's CSRF token. */
async function loginForm(app: TestApp['app']): Promise<{ cookie: string; csrf: string }> {
  const page = await app.inject({ method: 'GET', url: '/console/login' });
  expect(page.statusCode).toBe(200);
  const cookie = String(page.headers['set-cookie']).split(';', 1)[0] as string;
  expect(cookie).toMatch(/^paysim_console_[\w-]+=[\w-]+\.0\.[\w-]+$/);
  const csrf = /<input type="hidden" name="_csrf" value="([^"]+)">/.exec(page.body)?.[1] as string;
  expect(csrf).toMatch(/^[\w-]{43}$/);
  return { cookie, csrf };
}

function postLogin(app: TestApp['app'], cookie: string, payload: string) {
  return app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, payload });
}

async function logIn(app: TestApp['app'], token: string): Promise<string> {
  const form = await loginForm(app);
  const login = await postLogin(app, form.cookie, `_csrf=${form.csrf}&token=${token}`);
  expect(login.statusCode).toBe(303);
  return String(login.headers['set-cookie']).split(';', 1)[0] as string;
}

describe('the console on the server', () => {
  it('is absent with CONSOLE_ENABLED=false: /console is a 404 in the native shape', async () => {
    t = await buildTestApp({ CONSOLE_ENABLED: 'false' });
    const res = await t.app.inject({ method: 'GET', url: '/console/payments' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No route GET /console/payments.', trace_id: expect.any(String) } });
  });

  it('names the process that served the page (host name and process id) to whoever may see the console, not on the login form', async () => {
    t = await buildTestApp({});
    const page = await t.app.inject({ method: 'GET', url: '/console/charts' });
    expect(page.body).toContain(`<a href="/console">paysim console</a> <span class="served-by" id="served-by">served by ${hostname()}, process ${String(process.pid)}</span></p>`);
    await t.app.close();
    t = await buildTestApp({ CONSOLE_TOKEN: 'console-token-0123456789abcdef' });
    const form = await t.app.inject({ method: 'GET', url: '/console/login' });
    expect([form.statusCode, form.body.includes('served-by'), form.body.includes(hostname())]).toEqual([200, false, false]);
    const cookie = await logIn(t.app, 'console-token-0123456789abcdef');
    const loggedIn = await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } });
    expect(loggedIn.body).toContain(`<span class="served-by" id="served-by">served by ${hostname()}, process ${String(process.pid)}</span>`);
  });

  it('sends its CSP and session cookie under /console only: an API answer has the same headers with or without the console', async () => {
    const headersOf = async (env: Record<string, string>): Promise<string[]> => {
      const app = await buildTestApp(env);
      try {
        const res = await app.app.inject({ method: 'GET', url: '/v1/sim/intents?limit=1' });
        expect(res.statusCode).toBe(200);
        return Object.keys(res.headers).sort();
      } finally {
        await app.app.close();
      }
    };
    expect(await headersOf({ CONSOLE_ENABLED: 'true' })).toEqual(await headersOf({ CONSOLE_ENABLED: 'false' }));
    t = await buildTestApp();
    const page = await t.app.inject({ method: 'GET', url: '/console/payments' });
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;connect-src 'self';form-action 'self';frame-ancestors 'none';base-uri 'none';object-src 'none'",
    );
    expect(page.headers['set-cookie']).toMatch(/^paysim_console_[\w-]+=[\w-]+\.0\.[\w-]+; Path=\/console; HttpOnly; SameSite=Strict$/);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    // As frame-ancestors 'none' says (helmet's default, SAMEORIGIN, disagreed: a review).
    expect(page.headers['x-frame-options']).toBe('DENY');
  });

  it('keeps its routes out of the OpenAPI document', async () => {
    t = await buildTestApp();
    const doc = t.app.swagger() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
  });

  it('validates a form like the API validates its body, and creates nothing from a bad one', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const post = (payload: string) =>
      t!.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload });
    const bad = await post(`_csrf=${csrf}&reservation_id=R1&amount=12.5&currency=KRW&scenario=approve`);
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('<p class="notice notice-error" role="alert">amount must be a whole number from 1 to 100000000000</p>');
    const badScenario = await post(`_csrf=${csrf}&reservation_id=R1&amount=100&scenario=maybe`);
    expect(badScenario.statusCode).toBe(400);
    expect(badScenario.body).toContain('scenario must be one of approve, fail, delay, random, mix');
    const badUrl = await post(`_csrf=${csrf}&reservation_id=R1&amount=100&webhook_url=ftp%3A%2F%2Fx`);
    expect(badUrl.statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json()).toEqual({ data: [], next_cursor: null });

    const good = await post(`_csrf=${csrf}&reservation_id=R1&amount=100&currency=EUR&scenario=fail`);
    expect(good.statusCode).toBe(303);
    const listed = (await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json() as { data: Array<{ payment_intent_id: string; reservation_id: string; amount: number; currency: string; scenario: string; status: string }> };
    expect(listed.data.map((i) => [i.reservation_id, i.amount, i.currency, i.scenario, i.status])).toEqual([['R1', 100, 'EUR', 'fail', 'PENDING']]);
    expect(good.headers.location).toBe(`/console/payments/intent/${listed.data[0]?.payment_intent_id}?notice=created`);
  });

  it('makes payments decided by scenario mix from the create forms: with the form’s weights, or MIX’s when it is set and none are given; refuses in its own words', async () => {
    type Intent = { reservation_id: string; scenario: string; status: string };
    const intentsOf = async (): Promise<Array<[string, string, string]>> =>
      ((await t!.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json() as { data: Intent[] }).data.map((i) => [i.reservation_id, i.scenario, i.status]);
    // MIX not set: the form says so, and the weights given decide.
    t = await buildTestApp({ DEFAULT_FAIL_DELAY_MS: '0' });
    let { cookie, csrf } = await session(t.app);
    const page = (await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } })).body;
    expect(page).toContain(
      '<fieldset class="weights"><legend>Mix weights (scenario mix)</legend>\n      <div class="field"><label for="c-mix-approve">approve</label><input id="c-mix-approve" name="mix_approve" type="number" min="0" max="1000000" step="1" inputmode="numeric" aria-describedby="c-mix-hint"></div>',
    );
    expect(page).toContain('<small id="c-mix-hint">Each payment picks an outcome with probability weight / total. Needed for mix: MIX is not set.</small>');
    const post = (path: string, payload: string) => t!.app.inject({ method: 'POST', url: `/console/payments/new/${path}`, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}&${payload}` });
    const refusals: Array<[string, string]> = [
      ['scenario=mix', 'Scenario mix needs weights: give approve, fail or delay a weight (MIX is not set, so there are no default weights).'],
      ['scenario=mix&mix_approve=0&mix_fail=0&mix_delay=', 'Scenario mix needs at least one weight above 0.'],
      ['scenario=mix&mix_fail=1.5', 'The fail weight must be a whole number from 0 to 1,000,000.'],
      ['scenario=approve&mix_fail=1', 'Mix weights are for scenario mix, and the scenario chosen is approve: choose mix, or empty the weights.'],
    ];
    for (const [form, message] of refusals) {
      const res = await post('intent', `reservation_id=R-mix&amount=100&${form}`);
      expect([res.statusCode, /<p class="notice notice-error" role="alert">([^<]*)<\/p>/.exec(res.body)?.[1]]).toEqual([400, message]);
    }
    expect(await intentsOf()).toEqual([]);
    expect((await post('intent', 'reservation_id=R-mix-fail&amount=100&scenario=mix&mix_approve=0&mix_fail=1&mix_delay=0')).statusCode).toBe(303);
    const v2 = await post('v2', 'tx_id=tx-mix-1&order_id=1&user_id=1&amount=100&callback_url=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scenario=mix&mix_fail=3');
    expect(v2.statusCode).toBe(303);
    // Weights with the /api/v2 form's default scenario mean mix, as X-Sim-Mix without X-Sim-Scenario does.
    expect((await post('v2', 'tx_id=tx-mix-2&order_id=1&user_id=1&amount=100&callback_url=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scenario=&mix_fail=3')).statusCode).toBe(303);
    await t.clock.advance(10);
    expect(await intentsOf()).toEqual([['R-mix-fail', 'mix', 'FAILED']]);
    for (const tx of ['tx-mix-1', 'tx-mix-2']) expect((await t.app.v2Payments.get(`pay_${tx}`))).toMatchObject({ scenario: 'mix', status: 'PAYMENT_FAILED' });
    await t.app.close();

    // MIX set: mix without weights takes its weights; weights given still win.
    t = await buildTestApp({ MIX: 'fail:1', DEFAULT_FAIL_DELAY_MS: '0', DEFAULT_APPROVE_DELAY_MS: '0' });
    ({ cookie, csrf } = await session(t.app));
    expect((await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } })).body).toContain('<small id="v-mix-hint">Each payment picks an outcome with probability weight / total. Empty: the MIX setting’s fail:1.</small>');
    expect((await post('intent', 'reservation_id=R-mix-setting&amount=100&scenario=mix')).statusCode).toBe(303);
    await t.clock.advance(10);
    expect((await post('intent', 'reservation_id=R-mix-form&amount=100&scenario=mix&mix_approve=1')).statusCode).toBe(303);
    await t.clock.advance(10);
    expect(await intentsOf()).toEqual([
      ['R-mix-form', 'mix', 'APPROVED'],
      ['R-mix-setting', 'mix', 'FAILED'],
    ]);
  });

  it('refuses an action on a payment in a state that does not allow it, through the service', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'R2', amount: 100, scenario: 'approve' } });
    const id = (made.json() as { payment_intent_id: string }).payment_intent_id;
    const refund = await t.app.inject({ method: 'POST', url: `/console/payments/intent/${id}/refund`, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}` });
    expect(refund.statusCode).toBe(409);
    expect(refund.body).toContain(`Payment ${id} is PENDING; “refund” is not possible now.`);
    const unknown = await t.app.inject({ method: 'GET', url: '/console/payments/intent/pay_nope' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toContain('Payment pay_nope does not exist (or is no longer kept).');
  });

  it('says what became of a test webhook: queued, not sent (the queue full: in the log as failed), or refused for a disabled URL', async () => {
    const rx = await startReceiver((req) => (req.url === '/gone' ? { status: 410 } : { hang: true }));
    try {
      t = await buildTestApp({ WEBHOOK_CONCURRENCY: '1', WEBHOOK_QUEUE_MAX: '1', WEBHOOK_TIMEOUT_MS: '30000', WEBHOOK_MAX_RPS: '0' });
      const { cookie, csrf } = await session(t.app);
      const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'R-test', amount: 100 } });
      const id = (made.json() as { payment_intent_id: string }).payment_intent_id;
      const send = (url: string) =>
        t!.app.inject({ method: 'POST', url: '/console/webhooks/test', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}&payment_intent_id=${id}&type=payment.approved&webhook_url=${encodeURIComponent(url)}` });
      const notice = async (url: string) => {
        const res = await send(url);
        expect(res.statusCode).toBe(303);
        const page = await t!.app.inject({ method: 'GET', url: String(res.headers.location), headers: { cookie } });
        return /class="notice notice-ok"[^>]*>([^<]*)</.exec(page.body)?.[1];
      };
      // A URL that answered 410 is disabled: the form is then refused with why and what to do.
      expect(await notice(rx.url('/gone'))).toBe('Test webhook queued.');
      await rx.waitFor(1);
      await eventually(async () => ((await t!.app.webhooks.dispatcher.isUrlDisabled(rx.url('/gone'))) ? true : undefined), 'the URL disabled');
      const refused = await send(rx.url('/gone'));
      expect(refused.statusCode).toBe(409);
      expect(refused.body).toContain(`${rx.url('/gone')} is disabled since it answered 410 Gone: re-enable it (DELETE /v1/sim/webhooks/disabled-urls?url=…, or the console&#39;s Webhooks page) to send to it again.`);

      expect(await notice(rx.url('/hang'))).toBe('Test webhook queued.');
      await rx.waitFor(2);
      // One in flight, the next waits (WEBHOOK_QUEUE_MAX), the one after fails at once.
      expect(await notice(rx.url('/hang'))).toBe('Test webhook queued.');
      expect(await notice(rx.url('/hang'))).toBe('Test webhook not sent: WEBHOOK_QUEUE_MAX deliveries already wait to start. It is in the log as failed (queue_full).');
    } finally {
      await rx.close();
    }
  });

  it('shows amounts as the API means them: minor units in the currency’s major units (3 digits for BHD, none for KRW), with thousands separators, the ledger included', async () => {
    t = await buildTestApp({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0', EVENT_PROCESSING_DELAY_MS: '0' });
    const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'R-bhd', amount: 1234567, currency: 'BHD', scenario: 'delay' } });
    const id = (made.json() as { payment_intent_id: string }).payment_intent_id;
    const listed = (await t.app.inject({ method: 'GET', url: '/console/payments?dialect=intent' })).body;
    expect(listed).toContain(`<td class="ref">R-bhd</td><td class="num">1,234.567 BHD</td>`);
    const detail = (await t.app.inject({ method: 'GET', url: `/console/payments/intent/${id}` })).body;
    expect(detail).toContain('<div><dt>Amount</dt><dd>1,234.567 BHD</dd></div><div><dt>Refunded</dt><dd>0.000 BHD</dd></div>');
    // A booking paid in KRW (whole won: its minor unit): the ledger as the other tables show amounts.
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_m' }, payload: { performanceId: 'perf_001', quantity: 5, paymentMethod: 'CREDIT_CARD' } });
    const { bookingId, totalAmount } = booked.json() as { bookingId: string; totalAmount: number };
    expect(totalAmount).toBe(150000);
    const paid = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_m' }, payload: { bookingId, paymentMethodToken: 'tok_visa', cvv: '100' } });
    expect(paid.statusCode, paid.body).toBe(200);
    await t.clock.advance(10);
    expect((await t.app.inject({ method: 'GET', url: '/bookings/my', headers: { 'x-user-id': 'user_m' } })).json()).toMatchObject([{ bookingId, status: 'confirmed' }]);
    const bookings = (await t.app.inject({ method: 'GET', url: '/console/bookings' })).body;
    expect(/<div id="ledger" data-topics="bookings">[^]*?<tbody>([^]*?)<\/tbody>/.exec(bookings)?.[1]).toBe(
      '<tr><td>CUSTOMER_PAYABLE</td><td>KRW</td><td class="num">150,000 KRW</td><td class="num">0 KRW</td><td class="num">150,000 KRW</td></tr>' +
        '<tr><td>MERCHANT_BALANCE</td><td>KRW</td><td class="num">0 KRW</td><td class="num">150,000 KRW</td><td class="num">-150,000 KRW</td></tr>',
    );
    expect(bookings).toContain(`<td class="num">150,000 KRW</td><td><span class="badge badge-completed" data-status="confirmed">confirmed</span>`);
  });

  it('counts payments by status over everything stored, beyond the page it shows; a search counts only what the page read, and says so', async () => {
    t = await buildTestApp();
    const { intents } = t.app.core;
    for (let i = 0; i < 520; i++) await intents.create({ reservationId: `R-count-${i}`, amount: 100, currency: 'KRW', scenario: i < 20 ? 'fail' : 'delay', delayMs: i < 20 ? 100 : 600_000 });
    await t.clock.advance(200); // the first 20 are decided: FAILED
    const cancelled = (await intents.list({ limit: 1 })).data[0]!;
    await intents.cancel(cancelled.id);
    const countsOf = (body: string) => Object.fromEntries([...body.matchAll(/<strong data-count="(\w+)">(\d+)<\/strong>/g)].map((m) => [m[1], Number(m[2])]));
    const page = (await t.app.inject({ method: 'GET', url: '/console/payments?dialect=intent' })).body;
    expect(countsOf(page)).toEqual({ pending: 499, completed: 0, failed: 20, cancelled: 1, refunded: 0 });
    expect(page).toContain('<p class="hint" data-counts-cover="all">Counts: every stored payment of Native intents (/v1/sim).</p>');
    expect(page.match(/<tr data-id=/g)).toHaveLength(100);
    expect(page).toMatch(/<p class="hint" id="payments-pages" tabindex="-1" data-shown="100">100 shown, newest first\. <a href="\/console\/payments\?dialect=intent&amp;cursor=[\w-]+" data-page="older">Older →<\/a><\/p>/);
    // Before the table, a link (shown when it has the focus) to that footer, past the rows' 100 links.
    expect(page).toContain('<a class="skip-inline" href="#payments-pages">Skip to the page links (Older, Newest)</a><div class="scroll" tabindex="0"><table class="payments">');
    // All dialects together: the others have nothing yet.
    expect(countsOf((await t.app.inject({ method: 'GET', url: '/console/payments' })).body)).toEqual({ pending: 499, completed: 0, failed: 20, cancelled: 1, refunded: 0 });
    // The page reads from the newest (R-count-519) until a 101st matches: R-count-199 … 100 shown, read down to R-count-20 (500 read).
    // R-count-19 … 10 and 1 are on the next page, which reads the last 20.
    const searched = (await t.app.inject({ method: 'GET', url: '/console/payments?dialect=intent&q=R-count-1' })).body;
    expect(searched).toContain('<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the 500 of Native intents (/v1/sim) this page read.</p>');
    expect(countsOf(searched)).toEqual({ pending: 100, completed: 0, failed: 0, cancelled: 0, refunded: 0 });
    const next = /<a href="([^"]+)" data-page="older">/.exec(searched)?.[1]?.replaceAll('&amp;', '&');
    const rest = (await t.app.inject({ method: 'GET', url: next! })).body;
    expect(rest).toContain('<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the 20 of Native intents (/v1/sim) this page read.</p>');
    expect(countsOf(rest)).toEqual({ pending: 0, completed: 0, failed: 11, cancelled: 0, refunded: 0 });
  });

  it('finds a payment by its exact id however old it is (a lookup before the scan), in any dialect', async () => {
    t = await buildTestApp();
    const { intents } = t.app.core;
    const oldest = await intents.create({ reservationId: 'R-oldest', amount: 100, currency: 'KRW', scenario: 'delay', delayMs: 600_000 });
    for (let i = 0; i < 500; i++) await intents.create({ reservationId: `R-new-${i}`, amount: 100, currency: 'KRW', scenario: 'delay', delayMs: 600_000 });
    const v2 = await t.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: 'tx-exact', order_id: 1, user_id: 1, amount: 1000, callback_url: 'http://127.0.0.1:9/cb' } });
    expect(v2.statusCode, v2.body).toBe(200);
    const v2Id = (v2.json() as { payment_id: string }).payment_id;
    const ids = (body: string) => [...body.matchAll(/<tr data-id="([^"]+)">/g)].map((m) => m[1]);
    const search = async (query: string) => (await t!.app.inject({ method: 'GET', url: `/console/payments${query}` })).body;

    const found = await search(`?q=${oldest.id}`);
    expect(ids(found)).toEqual([oldest.id]);
    expect(found).toContain('<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the 502 of every dialect this page read, and the one whose id it is.</p>');
    expect(found).toContain('<p class="hint" data-shown="1">1 shown, newest first, with the payment whose id the search is.</p>');
    expect(found).toContain('<strong data-count="pending">1</strong>');
    expect(ids(await search(`?dialect=intent&status=pending&q=${oldest.id}`))).toEqual([oldest.id]);
    // Typed in lower case (a ULID's letters are any case): looked up as made (before, a user test found it only by the scan).
    const lower = await search(`?q=${oldest.id.toLowerCase()}`);
    expect([ids(lower), /<p class="hint" data-shown="\d+">.*?<\/p>/.exec(lower)?.[0]]).toEqual([[oldest.id], '<p class="hint" data-shown="1">1 shown, newest first, with the payment whose id the search is.</p>']);
    const leftOut = await search(`?dialect=intent&status=completed&q=${oldest.id}`);
    expect(leftOut).toContain('<p>No payments match.</p>');
    // Found, but of another status: said so (before, a page with an Older link said "with the payment whose id the search is" over no rows).
    expect(leftOut).toContain('<p class="hint" data-found-left-out="true">The payment whose id the search is is pending, not completed: the status filter leaves it out.</p>');
    expect(found).not.toContain('data-found-left-out');
    expect(await search(`?dialect=v2&q=${oldest.id}`)).toContain('<p>No payments match.</p>');
    // A part of an id is not an id: not looked up, but the page reads every payment (502 of at most 5,000) and finds it.
    expect(ids(await search(`?q=${oldest.id.slice(4)}`))).toEqual([oldest.id]);
    expect(ids(await search(`?q=${v2Id}`))).toEqual([v2Id]);
  });

  /** Follows the Older links from `/console/payments<query>` to the end: each page's row ids and footer. */
  async function walk(app: TestApp['app'], query: string): Promise<Array<{ ids: string[]; footer: string }>> {
    const pages: Array<{ ids: string[]; footer: string }> = [];
    let url: string | undefined = `/console/payments${query}`;
    while (url !== undefined) {
      const res: { statusCode: number; body: string } = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      expect(/<p class="notice notice-error".*?<\/p>/.exec(res.body)?.[0], url).toBeUndefined();
      pages.push({ ids: [...res.body.matchAll(/<tr data-id="([^"]+)">/g)].map((m) => m[1] as string), footer: /<p class="hint"[^>]* data-shown="\d+">.*?<\/p>/.exec(res.body)?.[0] ?? '' });
      url = /<a href="([^"]+)" data-page="older">/.exec(res.body)?.[1]?.replaceAll('&amp;', '&');
      expect(pages.length).toBeLessThan(40);
    }
    return pages;
  }

  it('pages through every stored payment, 100 at a time, to the oldest of each dialect: 1,250 native intents and 600 /api/v2 payments, each once and in order; a status filter goes on to the end too', async () => {
    t = await buildTestApp({ DEFAULT_DELAY_DELAY_MS: '600000' });
    const made: Array<{ id: string; createdAt: number; dialect: string; failed: boolean }> = [];
    for (let i = 0; i < 1850; i++) {
      // 600 of the 1,850 are /api/v2 payments, spread among the intents; two at a time share a millisecond.
      const failed = i % 7 === 3;
      if ((12 * i) % 37 < 12) {
        const outcome = await t.app.v2Payments.create({ txId: `tx-${String(i).padStart(5, '0')}`, orderId: i, userId: 1, amount: 1000, callbackUrl: 'http://127.0.0.1:9/cb' }, failed ? 'fail' : 'delay');
        if (outcome.kind !== 'created') throw new Error(outcome.kind);
        made.push({ id: outcome.payment.id, createdAt: outcome.payment.createdAt, dialect: 'v2', failed });
      } else {
        const intent = await t.app.core.intents.create({ reservationId: `R-all-${i}`, amount: 100, currency: 'KRW', scenario: failed ? 'fail' : 'delay', delayMs: failed ? 1 : 600_000 });
        made.push({ id: intent.id, createdAt: intent.createdAt, dialect: 'intent', failed });
      }
      if (i % 2 === 1) await t.clock.advance(1);
    }
    await t.clock.advance(10); // the failing ones are decided
    const newest = made.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    expect(newest.filter((p) => p.dialect === 'intent')).toHaveLength(1250);
    const idsOf = (payments: typeof made) => payments.map((p) => p.id);

    const all = await walk(t.app, '');
    expect(all.map((p) => p.ids.length)).toEqual([...Array.from({ length: 18 }, () => 100), 50]);
    expect(all.flatMap((p) => p.ids)).toEqual(idsOf(newest));
    expect(all[0]!.footer).toMatch(/^<p class="hint" id="payments-pages" tabindex="-1" data-shown="100">100 shown, newest first\. <a href="\/console\/payments\?cursor=[\w-]+" data-page="older">Older →<\/a><\/p>$/);
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(all[1]!.footer).toMatch(new RegExp(`^<p class="hint" id="payments-pages" tabindex="-1" data-shown="100">100 shown, newest first, older than ${iso(newest[99]!.createdAt)} \\(<code>${newest[99]!.id}</code>\\)\\. <a href="/console/payments" data-page="newest">← Newest</a> <a href="/console/payments\\?cursor=[\\w-]+" data-page="older">Older →</a></p>$`));
    expect(all.at(-1)!.footer).toBe(`<p class="hint" id="payments-pages" tabindex="-1" data-shown="50">50 shown, newest first, older than ${iso(newest[1799]!.createdAt)} (<code>${newest[1799]!.id}</code>). No older payments: this is the end of the list. <a href="/console/payments" data-page="newest">← Newest</a></p>`);
    // One dialect at a time: to its oldest.
    const v2 = await walk(t.app, '?dialect=v2');
    expect(v2.map((p) => p.ids.length)).toEqual([100, 100, 100, 100, 100, 100]);
    expect(v2.flatMap((p) => p.ids)).toEqual(idsOf(newest.filter((p) => p.dialect === 'v2')));
    expect((await walk(t.app, '?dialect=intent')).flatMap((p) => p.ids)).toEqual(idsOf(newest.filter((p) => p.dialect === 'intent')));
    // Failed: one in seven, in both dialects, from the newest to the oldest.
    const failed = newest.filter((p) => p.failed);
    expect(failed).toHaveLength(264);
    const failedPages = await walk(t.app, '?status=failed');
    expect(failedPages.map((p) => p.ids.length)).toEqual([100, 100, 64]);
    expect(failedPages.flatMap((p) => p.ids)).toEqual(idsOf(failed));
    expect(failedPages.at(-1)!.footer).toContain('No older payments match: this is the end of the list.');
    const pendingV2 = await walk(t.app, '?dialect=v2&status=pending');
    expect(pendingV2.flatMap((p) => p.ids)).toEqual(idsOf(newest.filter((p) => p.dialect === 'v2' && !p.failed)));
    // Payments made while someone pages do not move the pages they are on: an Older link goes on after its page's last.
    const first = (await t.app.inject({ method: 'GET', url: '/console/payments?dialect=v2' })).body;
    const older = /<a href="([^"]+)" data-page="older">/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    await t.clock.advance(1);
    for (let i = 0; i < 7; i++) {
      expect((await t.app.v2Payments.create({ txId: `tx-late-${i}`, orderId: i, userId: 1, amount: 1000, callbackUrl: 'http://127.0.0.1:9/cb' }, 'delay')).kind).toBe('created');
      await t.app.core.intents.create({ reservationId: `R-late-${i}`, amount: 100, currency: 'KRW', scenario: 'delay', delayMs: 600_000 });
    }
    const then = (await t.app.inject({ method: 'GET', url: older! })).body;
    expect([...then.matchAll(/<tr data-id="([^"]+)">/g)].map((m) => m[1])).toEqual(idsOf(newest.filter((p) => p.dialect === 'v2').slice(100, 200)));
  });

  it('an Older page lists only what there was when the first page was read, also in a dialect the pages had not reached yet (a user test saw new payments on older pages)', async () => {
    t = await buildTestApp({ DEFAULT_DELAY_DELAY_MS: '600000' });
    const v2 = async (txId: string) => {
      const outcome = await t!.app.v2Payments.create({ txId, orderId: 1, userId: 1, amount: 1000, callbackUrl: 'http://127.0.0.1:9/cb' }, 'delay');
      if (outcome.kind !== 'created') throw new Error(outcome.kind);
      return outcome.payment.id;
    };
    const intent = async (reservationId: string) => (await t!.app.core.intents.create({ reservationId, amount: 100, currency: 'KRW', scenario: 'delay', delayMs: 600_000 })).id;
    // Ten /api/v2 payments, then 150 intents: the first page is intents only, and its cursor has not reached /api/v2.
    const oldV2: string[] = [];
    for (let i = 0; i < 10; i++) oldV2.push(await v2(`tx-old-${i}`));
    await t.clock.advance(1);
    const intents: string[] = [];
    for (let i = 0; i < 150; i++) intents.push(await intent(`R-old-${i}`));
    const rowsOf = (body: string) => [...body.matchAll(/<tr data-id="([^"]+)">/g)].map((m) => m[1]);
    const first = (await t.app.inject({ method: 'GET', url: '/console/payments' })).body;
    expect(rowsOf(first)).toEqual(intents.slice(50).reverse());
    const older = /<a href="([^"]+)" data-page="older">/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    // Made after the first page was read, in both dialects.
    await t.clock.advance(1);
    const late = [await v2('tx-late-1'), await intent('R-late-1'), await v2('tx-late-2')];
    const second = (await t.app.inject({ method: 'GET', url: older! })).body;
    expect(rowsOf(second)).toEqual([...intents.slice(0, 50).reverse(), ...[...oldV2].sort().reverse()]);
    expect(second).toContain('No older payments: this is the end of the list.');
    // A new first page has them on top.
    expect(rowsOf((await t.app.inject({ method: 'GET', url: '/console/payments' })).body).slice(0, 3).sort()).toEqual([...late].sort());
  });

  it('a cursor whose time is past what a date can hold is refused with the notice, not answered 500', async () => {
    t = await buildTestApp();
    const intent = await t.app.core.intents.create({ reservationId: 'R-far-future', amount: 100, currency: 'KRW', scenario: 'delay', delayMs: 600_000 });
    // A safe integer, but past 8.64e15 ms (the latest time a Date holds): the page's "older than" could not be written.
    const bad = Buffer.from(JSON.stringify({ at: 9_000_000_000_000_000, id: 'x', p: {} })).toString('base64url');
    const res = await t.app.inject({ method: 'GET', url: `/console/payments?cursor=${bad}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(`<p class="notice notice-error" role="alert">Cursor “${bad}” is invalid (an Older link’s): showing the newest payments.</p>`);
    expect([...res.body.matchAll(/<tr data-id="([^"]+)">/g)].map((m) => m[1])).toEqual([intent.id]);
  });

  it('a filtered page reads at most 5,000 payments and links on from where it stopped; a cursor that is not an Older link’s is refused with a notice', async () => {
    t = await buildTestApp();
    const failed: string[] = [];
    for (let i = 0; i < 5200; i++) {
      const fails = i === 10 || i === 2600 || i === 5190;
      const intent = await t.app.core.intents.create({ reservationId: `R-far-${i}`, amount: 100, currency: 'KRW', scenario: fails ? 'fail' : 'delay', delayMs: fails ? 1 : 600_000 });
      if (fails) failed.unshift(intent.id);
    }
    await t.clock.advance(10);
    const pages = await walk(t.app, '?status=failed');
    expect(pages.map((p) => p.ids)).toEqual([failed.slice(0, 2), failed.slice(2)]);
    // The newest 5,000 (R-far-5199 … 200) on the first page, the last 200 on the second.
    expect(pages[0]!.footer).toMatch(/^<p class="hint" id="payments-pages" tabindex="-1" data-shown="2">2 shown, newest first\. This page read 5,000 payments \(at most 5,000 a page\) and stopped before 100 matched: Older goes on from where it stopped\. <a href="\/console\/payments\?status=failed&amp;cursor=[\w-]+" data-page="older">Older →<\/a><\/p>$/);
    expect(pages[1]!.footer).toContain('No older payments match: this is the end of the list.');
    // A search counts over what the page read.
    const searched = (await t.app.inject({ method: 'GET', url: '/console/payments?q=R-far-' })).body;
    expect(searched).toContain('Counts: only the payments matching the search among the 100 of every dialect this page read.');
    // An exact id whose payment the status filter leaves out: the page reads on (5,000) and says so, never "with the payment" over no rows (a user test).
    const pending = (await t.app.core.intents.list({ limit: 1 })).data[0]!.id;
    const leftOut = (await t.app.inject({ method: 'GET', url: `/console/payments?status=failed&q=${pending}` })).body;
    expect(/<p class="hint"[^>]* data-shown="\d+">.*?<\/p>/.exec(leftOut)?.[0]).toMatch(/^<p class="hint" id="payments-pages" tabindex="-1" data-shown="0">0 shown, newest first\. This page read 5,000 payments/);
    expect(leftOut).toContain('<p class="hint" data-found-left-out="true">The payment whose id the search is is pending, not failed: the status filter leaves it out.</p>');
    // The found payment is shown and counted on the first page only: an Older page's counts are of what it read (before, it was counted again on every page).
    const byId = await walk(t.app, `?q=${pending}`);
    expect(byId.map((p) => p.ids)).toEqual([[pending], []]);
    const older = (await t.app.inject({ method: 'GET', url: /<a href="([^"]+)" data-page="older">/.exec((await t.app.inject({ method: 'GET', url: `/console/payments?q=${pending}` })).body)![1]!.replaceAll('&amp;', '&') })).body;
    expect(older).toContain('<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the 200 of every dialect this page read.</p>');
    expect([...older.matchAll(/<strong data-count="(\w+)">(\d+)<\/strong>/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['pending 0', 'completed 0', 'failed 0', 'cancelled 0', 'refunded 0']);

    for (const bad of ['nope', '1733300000000~pay_01KBA7Q4A6J3M8P1T5W9Y2C4HD', Buffer.from(JSON.stringify({ at: 1, id: 'x', p: { intent: ['pay_bad', 0] } })).toString('base64url'), Buffer.from(JSON.stringify({ at: 1, id: 'x', p: { nodialect: 0 } })).toString('base64url')]) {
      const body = (await t.app.inject({ method: 'GET', url: `/console/payments?cursor=${bad}` })).body;
      expect(body).toContain(`<p class="notice notice-error" role="alert">Cursor “${bad}” is invalid (an Older link’s): showing the newest payments.</p>`);
      expect(body.match(/<tr data-id=/g)).toHaveLength(100);
    }
  });

  it('says a dialect or status the page does not offer is not applied (none shown selected); status=all is every status', async () => {
    t = await buildTestApp();
    const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'R-filter', amount: 100, scenario: 'delay', delay_ms: 600_000 } });
    const id = (made.json() as { payment_intent_id: string }).payment_intent_id;
    const page = async (query: string) => (await t!.app.inject({ method: 'GET', url: `/console/payments${query}` })).body;
    const errors = (body: string) => [...body.matchAll(/<p class="notice notice-error" role="alert">(.*?)<\/p>/g)].map((m) => m[1]);
    const select = (body: string, name: string) => new RegExp(`<select id="f-${name}" name="${name}">(.*?)</select>`).exec(body)?.[1];
    const statusAll =
      '<option value="" selected>all</option><option value="pending">pending</option><option value="completed">completed</option><option value="failed">failed</option><option value="cancelled">cancelled</option><option value="refunded">refunded</option>';

    const all = await page('?dialect=intent&status=all');
    expect(errors(all)).toEqual([]);
    expect(select(all, 'status')).toBe(statusAll);
    expect(all).toContain(`<tr data-id="${id}">`);
    const bogus = await page('?dialect=nope&status=bogus');
    expect(errors(bogus)).toEqual(['Dialect “nope” is not one of intent, v2, booking, fluxpay: not applied.', 'Status “bogus” is not one of pending, completed, failed, cancelled, refunded: not applied.']);
    expect(select(bogus, 'status')).toBe(statusAll);
    expect(select(bogus, 'dialect')).toContain('<option value="" selected>all</option>');
    expect(bogus).toContain(`<tr data-id="${id}">`);
  });

  it('refuses a page whose address gives a parameter more than once (400, in words), on every page with filters or a cursor; before, 500', async () => {
    t = await buildTestApp();
    const urls = [
      '/console/payments?cursor=a&cursor=b',
      '/console/payments?dialect=v2&dialect=intent',
      '/console/payments?status=failed&status=pending&q=x&q=y',
      '/console/webhooks?status=failed&status=delivered',
      '/console/webhooks?subject=a&subject=b',
      '/console/fluxpay?outbox_status=PENDING&outbox_status=PUBLISHED',
    ];
    const answers = [];
    for (const url of urls) {
      const res = await t.app.inject({ method: 'GET', url });
      answers.push([url, res.statusCode, /<p class="notice notice-error" role="alert">(.*?)<\/p>/.exec(res.body)?.[1]]);
    }
    const once = (names: string) => `The address gives ${names} more than once: each takes one value. Remove the repeats, or use the page’s own filters and links.`;
    expect(answers).toEqual([
      [urls[0], 400, once('“cursor”')],
      [urls[1], 400, once('“dialect”')],
      [urls[2], 400, once('“status”, “q”')],
      [urls[3], 400, once('“status”')],
      [urls[4], 400, once('“subject”')],
      [urls[5], 400, once('“outbox_status”')],
    ]);
    // One value each: the pages as usual.
    expect((await t.app.inject({ method: 'GET', url: '/console/payments?status=failed&q=x' })).statusCode).toBe(200);
  });

  it('lists every booking, newest first, whoever booked it and whatever became of it: on the bookings page and in the payments view', async () => {
    t = await buildTestApp();
    const app = t.app;
    type Listed = { bookingId: string; userId: string; performanceId: string; seatIds: string[]; totalAmount: number; status: string; createdAt: string };
    const book = async (user: string, performanceId: string, quantity: number): Promise<Listed> => {
      const res = await app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': user }, payload: { performanceId, quantity, paymentMethod: 'CREDIT_CARD' } });
      expect(res.statusCode, res.body).toBe(201);
      const mine = await app.inject({ method: 'GET', url: '/bookings/my', headers: { 'x-user-id': user } });
      return (mine.json() as Listed[])[0] as Listed;
    };
    const a = await book('user_a', 'perf_001', 2);
    const b = await book('user_b', 'perf_002', 1);
    await t.clock.advance(10_000);
    const cancelled = await app.inject({ method: 'DELETE', url: '/bookings/my', headers: { 'x-user-id': 'user_a' }, payload: { bookingId: a.bookingId } });
    expect(cancelled.statusCode).toBe(200);
    // Its history says when it was cancelled, 10 s after it was made (before 2026-12-05: its creation time, a user test).
    const detail = (await app.inject({ method: 'GET', url: `/console/payments/booking/${a.bookingId}` })).body;
    const cancelledAt = new Date(Date.parse(a.createdAt) + 10_000).toISOString();
    expect(/<h2 id="hist-h">State history<\/h2>[^]*?<tbody>([^]*?)<\/tbody>/.exec(detail)?.[1]).toBe(
      `<tr><td>${a.createdAt}</td><td>pending</td><td><code>booking.created</code></td><td>seats ${a.seatIds.join(', ')} held until ${new Date(Date.parse(a.createdAt) + 600_000).toISOString()}</td></tr>` +
        `<tr><td>${cancelledAt}</td><td>cancelled</td><td><code>booking.cancelled</code></td><td></td></tr>`,
    );
    const row = (x: Listed, status: string, group: string) =>
      `<tr data-booking="${x.bookingId}"><td><a href="/console/payments/booking/${x.bookingId}"><code>${x.bookingId}</code></a></td><td>${x.userId}</td><td>${x.performanceId}</td><td>${x.seatIds.join(', ')}</td><td class="num">${x.totalAmount.toLocaleString('en-US')} KRW</td><td><span class="badge badge-${group}" data-status="${status}">${status}</span></td><td>PENDING</td><td>${x.createdAt}</td></tr>`;
    const page = (await app.inject({ method: 'GET', url: '/console/bookings' })).body;
    expect(/<div id="recent-bookings" data-topics="bookings">([^]*?)<\/div><\/section>/.exec(page)?.[1]).toBe(
      '<div class="scroll" tabindex="0"><table class="bookings"><caption class="visually-hidden">The newest 50 bookings, newest first</caption><thead><tr><th scope="col">Booking</th><th scope="col">User</th><th scope="col">Performance</th><th scope="col">Seats</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Payment</th><th scope="col">Created</th></tr></thead><tbody>' +
        row(b, 'pending', 'pending') +
        row(a, 'cancelled', 'cancelled') +
        '</tbody></table></div><p class="hint">The newest 50, whoever booked them.</p>',
    );
    // The cancelled booking holds no seat and paid nothing, and is listed all the same.
    const payments = (await app.inject({ method: 'GET', url: '/console/payments?dialect=booking&status=&q=' })).body;
    expect([...payments.matchAll(/<tr data-id="(bk_\w+)">/g)].map((m) => m[1])).toEqual([b.bookingId, a.bookingId]);
    expect(payments).toContain('<strong data-count="pending">1</strong>');
    expect(payments).toContain('<strong data-count="cancelled">1</strong>');
  });

  it('charts the decisions and webhook attempts of the last 10 minutes from what the bus told, per second, on the manual clock', async () => {
    t = await buildTestApp({ DEFAULT_APPROVE_DELAY_MS: '1000', DEFAULT_FAIL_DELAY_MS: '2000' });
    const T0 = t.clock.now(); // 12:00:00.000
    for (const scenario of ['approve', 'approve', 'fail']) {
      const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `R-chart-${scenario}`, amount: 100, scenario } });
      expect(made.statusCode).toBe(200);
    }
    await t.clock.advance(1000); // both approved at 12:00:01
    await t.clock.advance(1000); // failed at 12:00:02
    // Four webhook attempts at 12:00:02 as the dispatcher tells them (their latencies chosen, not measured).
    for (const [statusCode, durationMs] of [[200, 5], [200, 4.2], [500, 30], [204, 200]] as const) {
      t.app.core.bus.publish({ id: 'whd_1', type: 'webhook.attempted', occurredAt: t.clock.now(), delivery: { subject: null } as Delivery, attempt: { at: t.clock.now(), statusCode, durationMs, error: null } });
    }
    await t.clock.advance(12_000); // now 12:00:14: the last interval (12:00:05–14) is empty
    const page = (await t.app.inject({ method: 'GET', url: '/console/charts' })).body;
    // The decisions chart: 600 seconds, the window ending at 12:00:14; y from 0 to 2 (y = 192 − v · 84).
    const points = (cls: string) => {
      const d = new RegExp(`<path class="${cls}" d="([^"]+)"`).exec(page)?.[1] ?? '';
      return d.split(' ').map((p, i) => [i, Number(p.slice(1).split(',')[1])] as const);
    };
    const approved = points('line-approved');
    expect(approved.length).toBe(600);
    expect(approved.filter(([, y]) => y !== 192)).toEqual([[586, 24]]); // 12:00:01: 2 / s
    expect(points('line-failed').filter(([, y]) => y !== 192)).toEqual([[587, 108]]); // 12:00:02: 1 / s
    expect(page).toContain('<figcaption>Decisions per second by outcome (last 10 minutes, 3 decisions)</figcaption>');
    expect(page).toContain('<figcaption>Webhook success rate (10 s intervals, 4 attempts)</figcaption>');
    expect(page).toContain('<desc id="chart-webhook-rate-d">Last 10 minutes (times in UTC). Latest: success %: 75.</desc>');
    // 4.2 ms counts as at most 5; 200 ms falls in 192–207.
    expect(page).toContain('<desc id="chart-webhook-latency-d">Last 10 minutes (times in UTC). Latest: p50 ms: 5; p95 ms: 207; p99 ms: 207.</desc>');
    expect(page).toContain('<p id="charts-totals">3 decisions (2 approved, 1 failed); 4 webhook attempts, 3 succeeded (75.0 %); attempt latency p50 5 ms, p95 207 ms, p99 207 ms.</p>');
    expect(page).toContain('<tr data-dialect="intent"><th scope="row">Native intents (/v1/sim)</th><td class="num">2</td><td class="num">1</td></tr>');
    expect(page).toContain('<tr data-dialect="v2"><th scope="row">Payment Server v3 (/api/v2)</th><td class="num">0</td><td class="num">0</td></tr>');
    const rows = [...page.matchAll(/<tr><th scope="row">([\d:]+)<\/th>(.*?)<\/tr>/g)].map((m) => [m[1], m[2]?.replaceAll('<td class="num">', '').split('</td>').slice(0, -1)]);
    expect(rows.length).toBe(60);
    expect(rows.slice(0, 3)).toEqual([
      ['12:00:05', ['0', '0', '0', '—', '—', '—', '—']],
      ['11:59:55', ['2', '1', '4', '75.0 %', '5', '207', '207']],
      ['11:59:45', ['0', '0', '0', '—', '—', '—', '—']],
    ]);
    expect(rows.at(-1)?.[0]).toBe('11:50:15');
    expect(page).toContain(
      '<p class="hint" id="charts-scope">Counted by this process as it happened, per second, from its start: the decisions of every dialect (native intents, /api/v2, booking and FluxPay payments) and every webhook attempt, for the last 10 minutes; a second with none shows as zero. Latency percentiles are “at most” figures, exact below 16 ms and within 12.5 % above. With several replicas or CLUSTER_WORKERS, each process shows its own share: this one is named at the top of the page.</p>',
    );
    expect(page).not.toContain('5,000');
    // Ten minutes on, all of it has left the window.
    await t.clock.advance(600_000);
    const later = (await t.app.inject({ method: 'GET', url: '/console/charts' })).body;
    expect(later).toContain('<p id="charts-totals">0 decisions (0 approved, 0 failed); 0 webhook attempts, 0 succeeded (—); attempt latency p50 — ms, p95 — ms, p99 — ms.</p>');
    expect(T0).toBe(Date.parse('2026-01-15T12:00:00.000Z'));
  });

  it('answers an unknown /console path read with GET or HEAD by an HTML 404 page in the console’s frame; other methods get the application’s 404 or 405', async () => {
    t = await buildTestApp();
    const res = await t.app.inject({ method: 'GET', url: '/console/nope/deeper?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.body).toContain('<title>Error 404 · paysim console</title>');
    expect(res.body).toContain('<nav aria-label="Console pages"><ul><li><a href="/console/payments">Payments</a></li><li><a href="/console/webhooks">Webhooks</a></li><li><a href="/console/bookings">Bookings</a></li><li><a href="/console/fluxpay">FluxPay</a></li><li><a href="/console/rules">Rules</a></li><li><a href="/console/charts">Charts</a></li></ul></nav>');
    expect(/<main id="main" tabindex="-1">[^]*<\/main>/.exec(res.body)?.[0]).toBe(
      '<main id="main" tabindex="-1">\n<h1>Error 404</h1>\n<p class="notice notice-error" role="alert">There is no console page at /console/nope/deeper.</p><p><a href="/console">Back to the console</a></p>\n</main>',
    );
    // Under a known page too (a payment needs a dialect and an id).
    const partial = await t.app.inject({ method: 'GET', url: '/console/payments/intent' });
    expect([partial.statusCode, partial.headers['content-type']]).toEqual([404, 'text/html; charset=utf-8']);
    expect(partial.body).toContain('There is no console page at /console/payments/intent.');
    const head = await t.app.inject({ method: 'HEAD', url: '/console/nope' });
    expect([head.statusCode, head.headers['content-type'], head.body]).toEqual([404, 'text/html; charset=utf-8', '']);

    // Not a page read: the application's answers, as without the console's page (no CSRF check first).
    const post = await t.app.inject({ method: 'POST', url: '/console/nope', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' });
    expect([post.statusCode, post.json()]).toEqual([404, { error: { code: 'NOT_FOUND', message: 'No route POST /console/nope.', trace_id: expect.any(String) } }]);
    const wrongMethod = await t.app.inject({ method: 'DELETE', url: '/console/payments' });
    expect([wrongMethod.statusCode, wrongMethod.headers.allow, wrongMethod.json()]).toEqual([
      405,
      'GET, HEAD',
      { error: { code: 'METHOD_NOT_ALLOWED', message: 'DELETE is not allowed on /console/payments; use GET, HEAD.', trace_id: expect.any(String) } },
    ]);
  });

  it('with CONSOLE_TOKEN, shows an unknown path’s 404 page only after the login', async () => {
    const TOKEN = 'a-console-token-43';
    t = await buildTestApp({ CONSOLE_TOKEN: TOKEN });
    const anonymous = await t.app.inject({ method: 'GET', url: '/console/nope' });
    expect([anonymous.statusCode, anonymous.headers.location]).toEqual([303, '/console/login?next=%2Fconsole%2Fnope']);
    const cookie = await logIn(t.app, TOKEN);
    const res = await t.app.inject({ method: 'GET', url: '/console/nope', headers: { cookie } });
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('<p class="notice notice-error" role="alert">There is no console page at /console/nope.</p>');
    expect(res.body).toContain('<button type="submit">Log out</button>');
  });

  it('with CONSOLE_TOKEN: every page and action needs the login; the token never appears in a page', async () => {
    const TOKEN = 'a-console-token-42';
    t = await buildTestApp({ CONSOLE_TOKEN: TOKEN });
    for (const url of ['/console/payments', '/console/webhooks', '/console/bookings', '/console/charts']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect([url, res.statusCode, res.headers.location]).toEqual([url, 303, `/console/login?next=${encodeURIComponent(url)}`]);
    }
    const action = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'reservation_id=x&amount=1' });
    expect(action.statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/console/events' })).statusCode).toBe(401);
    const form = await loginForm(t.app);
    const wrong = await postLogin(t.app, form.cookie, `_csrf=${form.csrf}&token=nope`);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const login = await postLogin(t.app, form.cookie, `_csrf=${form.csrf}&token=${TOKEN}&next=%2Fconsole%2Fcharts`);
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/console/charts');
    const cookie = String(login.headers['set-cookie']).split(';', 1)[0] as string;
    expect(cookie).not.toContain(TOKEN);
    // A forged session (level 1 with another MAC) is refused.
    const forged = cookie.replace(/\.[\w-]+$/, '.AAAA');
    expect((await t.app.inject({ method: 'GET', url: '/console/charts', headers: { cookie: forged } })).statusCode).toBe(303);
    const page = await t.app.inject({ method: 'GET', url: '/console/charts', headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain(TOKEN);
    // An off-site `next` is never followed.
    const offsite = await postLogin(t.app, form.cookie, `_csrf=${form.csrf}&token=${TOKEN}&next=https%3A%2F%2Fevil.example%2F`);
    expect(offsite.headers.location).toBe('/console/payments');
    // Nor a path that leaves the console by dot segments (before 2026-12-04 `/console/../x` went to `/x`); one that stays is resolved.
    const nexts = ['/console/../metrics', '/console/%2e%2e/metrics', '/console/payments/../../x?y=1', '/console/./charts', '/console/webhooks/../charts?status=all'];
    const locations = [];
    for (const next of nexts) locations.push((await postLogin(t.app, form.cookie, `_csrf=${form.csrf}&token=${TOKEN}&next=${encodeURIComponent(next)}`)).headers.location);
    expect(locations).toEqual(['/console/payments', '/console/payments', '/console/payments', '/console/charts', '/console/charts?status=all']);
  });

  it('with CONSOLE_TOKEN: the login form carries a CSRF token, and a login without it (or with another session’s) is refused', async () => {
    const TOKEN = 'a-console-token-44';
    t = await buildTestApp({ CONSOLE_TOKEN: TOKEN });
    const REFUSED = '<p class="notice notice-error" role="alert">Refused: the form’s CSRF token is missing or wrong. Reload the page and try again.</p>';
    const form = await loginForm(t.app);
    const other = await loginForm(t.app);
    expect(other.csrf).not.toBe(form.csrf);
    // No session at all, the session without its token, a forged token, another session's token: 403, no session made.
    const cases = [
      await t.app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TOKEN}` }),
      await postLogin(t.app, form.cookie, `token=${TOKEN}`),
      await postLogin(t.app, form.cookie, `_csrf=forged&token=${TOKEN}`),
      await postLogin(t.app, form.cookie, `_csrf=${other.csrf}&token=${TOKEN}`),
    ];
    for (const res of cases) {
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain(REFUSED);
      expect(res.body).not.toContain('Console pages'); // the bare error frame, not the console's navigation
      expect(String(res.headers['set-cookie'] ?? '')).not.toMatch(/\.1\./);
    }
    // Another site's form with a right token pair: refused by its Origin.
    const crossSite = await t.app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie, origin: 'http://evil.example' }, payload: `_csrf=${form.csrf}&token=${TOKEN}` });
    expect([crossSite.statusCode, crossSite.headers['set-cookie']]).toEqual([403, undefined]);
    expect(crossSite.body).toContain('Refused: the request came from another origin (http://evil.example; this console is http://localhost:80).</p>');
    // Behind a proxy that ends TLS, without TRUST_PROXY: the page says what to set (a user test could not log in, and was not told why).
    const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'pay.example', origin: 'https://pay.example' };
    const behindProxy = await t.app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie, ...proxied }, payload: `_csrf=${form.csrf}&token=${TOKEN}` });
    expect([behindProxy.statusCode, behindProxy.headers['set-cookie']]).toEqual([403, undefined]);
    expect(behindProxy.body).toContain(
      'Refused: the request came from another origin (https://pay.example; this console is http://localhost:80). Behind a proxy that ends TLS or changes the host, set TRUST_PROXY to the proxy&#39;s address so the console sees the address the browser used.</p>',
    );
    // With TRUST_PROXY naming it, the same login is in, its cookie Secure.
    const trusting = await buildTestApp({ CONSOLE_TOKEN: TOKEN, TRUST_PROXY: '127.0.0.1' });
    try {
      const trustedForm = await loginForm(trusting.app);
      const trusted = await trusting.app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: trustedForm.cookie, ...proxied }, payload: `_csrf=${trustedForm.csrf}&token=${TOKEN}` });
      expect([trusted.statusCode, trusted.headers.location, String(trusted.headers['set-cookie']).endsWith('; Secure')]).toEqual([303, '/console/payments', true]);
      // Through the trusted proxy from another site: refused, without the hint (the forwarded values were taken).
      const crossSite2 = await trusting.app.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: trustedForm.cookie, ...proxied, origin: 'https://evil.example' }, payload: `_csrf=${trustedForm.csrf}&token=${TOKEN}` });
      expect(crossSite2.statusCode).toBe(403);
      expect(crossSite2.body).toContain('Refused: the request came from another origin (https://evil.example; this console is https://pay.example).</p>');
    } finally {
      await trusting.app.close();
    }
    // The form's anonymous session opens no page.
    const anonymous = await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie: form.cookie } });
    expect([anonymous.statusCode, anonymous.headers.location]).toEqual([303, '/console/login?next=%2Fconsole%2Fpayments']);
    // With its token, the login replaces the anonymous session by a new, logged-in one.
    const login = await postLogin(t.app, form.cookie, `_csrf=${encodeURIComponent(form.csrf)}&token=${TOKEN}`);
    expect([login.statusCode, login.headers.location]).toEqual([303, '/console/payments']);
    const cookie = String(login.headers['set-cookie']).split(';', 1)[0] as string;
    expect(cookie).toMatch(/^paysim_console_[\w-]+=[\w-]+\.1\.\d+\.[\w-]+$/);
    expect(cookie.split('.', 1)[0]).not.toBe(form.cookie.split('.', 1)[0]);
    expect((await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } })).statusCode).toBe(200);
  });
});
