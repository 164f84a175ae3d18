import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/**
 * What the console answers when it refuses (2026-12-05, an on-call engineer's user test): pages,
 * never the APIs' JSON, for the requests the door refuses (a drain's writes, a closing process,
 * load shedding, an over-long URL); a refused form links back to the page it was sent from; a
 * form sent after its session ended links to the login form, which comes back to that page; a
 * form field given twice is refused; a refund over what is left is the API's 422.
 */

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.close();
  t = undefined;
});

const FORM = { 'content-type': 'application/x-www-form-urlencoded' } as const;

async function session(app: TestApp['app']): Promise<{ cookie: string; csrf: string }> {
  const page = await app.inject({ method: 'GET', url: '/console/payments' });
  expect(page.statusCode).toBe(200);
  return { cookie: String(page.headers['set-cookie']).split(';', 1)[0] as string, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] as string };
}

/** The parts of a refusal's page a user sees: status, the headers that matter, its heading, error line and link. */
function refusal(res: { statusCode: number; headers: Record<string, unknown>; body: string }): unknown {
  return {
    status: res.statusCode,
    type: res.headers['content-type'],
    retryAfter: res.headers['retry-after'],
    heading: /<h1>([^<]*)<\/h1>/.exec(res.body)?.[1],
    error: /<p class="notice notice-error" role="alert">([^<]*)<\/p>/.exec(res.body)?.[1],
    link: /<p><a href="([^"]*)">([^<]*)<\/a><\/p>/.exec(res.body)?.slice(1),
  };
}

const SHUTTING_DOWN_PAGE = {
  status: 503,
  type: 'text/html; charset=utf-8',
  retryAfter: '1',
  heading: 'Error 503',
  error: 'The simulator is shutting down; retry on another instance.',
  link: ['/console', 'Back to the console'],
};

describe('the door’s refusals under /console are pages', () => {
  it('a form sent during the drain: a 503 page with Retry-After, nothing made; pages are still served; the APIs keep their JSON', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-busy', amount: 100, scenario: 'delay', delay_ms: 60_000 } });
    expect(made.statusCode).toBe(200);
    // The intent due in a minute keeps the drain busy for its budget.
    const draining = t.app.lifecycle.drain(300);
    const posted = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie, referer: 'http://localhost:80/console/payments' }, payload: `_csrf=${csrf}&reservation_id=r-drain&amount=100` });
    // A form: its page links back to the page it was sent from, as any refused form's does.
    expect(refusal(posted)).toEqual({ ...SHUTTING_DOWN_PAGE, link: ['/console/payments', 'Back'] });
    expect([posted.headers.connection, posted.headers['cache-control'], posted.headers['content-security-policy'], posted.headers['hx-push-url']]).toEqual(['close', 'no-store', "default-src 'none'; style-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'", 'false']);
    const page = await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } });
    expect([page.statusCode, page.body.includes('r-busy'), page.body.includes('r-drain')]).toEqual([200, true, false]);
    const api = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-api', amount: 100 } });
    expect([api.statusCode, api.headers['content-type'], api.json().error.code]).toEqual([503, 'application/json; charset=utf-8', 'SHUTTING_DOWN']);
    await draining;
    const listed = (await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json() as { data: Array<{ reservation_id: string }> };
    expect(listed.data.map((i) => i.reservation_id)).toEqual(['r-busy']);
  });

  it('while the process closes, a page read gets the 503 page too', async () => {
    t = await buildTestApp();
    t.app.lifecycle.closing = true;
    expect(refusal(await t.app.inject({ method: 'GET', url: '/console/payments' }))).toEqual(SHUTTING_DOWN_PAGE);
    t.app.lifecycle.closing = false;
  });

  it('an over-long console URL: a 414 page (not /consoles, which no page owns)', async () => {
    t = await buildTestApp();
    expect(refusal(await t.app.inject({ method: 'GET', url: `/console/payments?q=${'q'.repeat(9000)}` }))).toEqual({
      status: 414,
      type: 'text/html; charset=utf-8',
      retryAfter: undefined,
      heading: 'Error 414',
      error: 'The request URL is longer than 8192 characters.',
      link: ['/console', 'Back to the console'],
    });
    // A read: htmx takes the link's address for its error page (only a form's refusal keeps the page's: a review).
    expect((await t.app.inject({ method: 'GET', url: `/console/payments?q=${'q'.repeat(9000)}` })).headers['hx-push-url']).toBeUndefined();
    const other = await t.app.inject({ method: 'GET', url: `/consoles?q=${'q'.repeat(9000)}` });
    expect([other.statusCode, other.headers['content-type'], other.json().error.code]).toEqual([414, 'application/json; charset=utf-8', 'URI_TOO_LONG']);
  });

  it('load shedding: an OVERLOADED page with Retry-After', async () => {
    t = await buildTestApp({ OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_RETRY_AFTER_S: '7' });
    let res;
    for (let i = 0; i < 100 && res?.statusCode !== 503; i++) {
      res = await t.app.inject({ method: 'GET', url: '/console/payments' });
      if (res.statusCode !== 503) await new Promise((resolve) => setTimeout(resolve, 20)); // under-pressure samples the heap on a real timer
    }
    expect(refusal(res as { statusCode: number; headers: Record<string, unknown>; body: string })).toEqual({ ...SHUTTING_DOWN_PAGE, retryAfter: '7', error: 'The simulator is overloaded (heapUsedBytes); retry after 7 s.' });
  });
});

describe('a refused form', () => {
  it('links back to the page it was sent from (its Referer, same origin and under /console only)', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const send = (referer: string | undefined) =>
      t!.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie, ...(referer === undefined ? {} : { referer }) }, payload: `_csrf=${csrf}&reservation_id=r&amount=0` });
    const error = 'amount must be a whole number from 1 to 100000000000';
    const refused = await send('http://localhost:80/console/payments?status=FAILED');
    expect(refusal(refused)).toMatchObject({ status: 400, error, link: ['/console/payments?status=FAILED', 'Back'] });
    // htmx shows it without taking the form's POST path into the address bar; a link's error page takes the link's (a review).
    expect(refused.headers['hx-push-url']).toBe('false');
    const missing = await t.app.inject({ method: 'GET', url: '/console/payments/intent/pay_01M93DEKK2X4DH9KN67KPAJE99', headers: { cookie } });
    expect([missing.statusCode, missing.headers['hx-push-url']]).toEqual([404, undefined]);
    // Not the page's last notice: going back must not say again that the last action was done (a review).
    expect(refusal(await send('http://localhost:80/console/payments/intent/pay_x?notice=refund'))).toMatchObject({ link: ['/console/payments/intent/pay_x', 'Back'] });
    expect(refusal(await send('http://localhost:80/console/webhooks?notice=replayed&status=failed'))).toMatchObject({ link: ['/console/webhooks?status=failed', 'Back'] });
    // Another origin, a path outside the console, none, one longer than any address served (its link was a 414: a user test): the console's first page.
    for (const referer of ['http://elsewhere.example/console/payments', 'http://localhost:80/v1/sim/intents', 'not a url', undefined, `http://localhost:80/console/payments?status=${'A'.repeat(8_200)}`]) {
      expect(refusal(await send(referer)), String(referer)).toMatchObject({ status: 400, error, link: ['/console', 'Back to the console'] });
    }
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data).toEqual([]);
    // A JSON body is a form of text fields: one that is not text is refused, naming it, not a 500 (two reviews).
    const json = (payload: Record<string, unknown>) => t!.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf }, payload });
    for (const [payload, error] of [
      [{ _csrf: { a: 1 }, reservation_id: 'r-json', amount: '100' }, '_csrf must be text, as a form sends it'],
      [{ reservation_id: 'r-json', amount: 100 }, 'amount must be text, as a form sends it'],
      [{ reservation_id: ['a', 'b'], amount: '100', scenario: null }, 'reservation_id must be text, as a form sends it; scenario must be text, as a form sends it'],
    ] as const) {
      expect(refusal(await json(payload)), error).toMatchObject({ status: 400, error });
    }
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data).toEqual([]);
    expect((await json({ reservation_id: 'r-json', amount: '100' })).statusCode).toBe(303);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data.map((i: { reservation_id: string }) => i.reservation_id)).toEqual(['r-json']);
  });

  it('with a field given twice is refused, naming it, and nothing is made', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const res = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&reservation_id=r-twice&amount=100&amount=9000000` });
    expect(refusal(res)).toMatchObject({ status: 400, heading: 'Error 400', error: 'amount is given more than once: each field takes one value' });
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data).toEqual([]);
  });

  it('with a control character in a reservation_id or tx_id is refused as the APIs refuse it, nothing made', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const intent = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&reservation_id=r%0D%0Ax&amount=100` });
    expect(refusal(intent)).toMatchObject({ status: 400, error: 'reservation_id must be free of control characters' });
    const v2 = await t.app.inject({ method: 'POST', url: '/console/payments/new/v2', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&tx_id=tx%07&order_id=1&user_id=1&amount=100&callback_url=http%3A%2F%2F127.0.0.1%3A9%2Fcb` });
    expect(refusal(v2)).toMatchObject({ status: 400, error: 'tx_id must be free of control characters' });
    expect([(await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data, (await t.app.inject({ method: 'GET', url: '/api/v2/pending-payments' })).json()]).toEqual([[], expect.objectContaining({ pending_count: 0 })]);
  });

  it('a currency that is not an ISO 4217 code in use is refused as the API refuses it, nothing made (2026-12-05, a user test: XYZ made an intent)', async () => {
    t = await buildTestApp();
    const { cookie, csrf } = await session(t.app);
    const res = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&reservation_id=r-xyz&amount=100&currency=XYZ` });
    expect(refusal(res)).toMatchObject({ status: 400, error: 'currency must be an ISO 4217 currency code such as KRW, USD or EUR' });
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data).toEqual([]);
    const usd = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&reservation_id=r-usd&amount=100&currency=USD` });
    expect(usd.statusCode).toBe(303);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents' })).json().data).toMatchObject([{ reservation_id: 'r-usd', currency: 'USD' }]);
  });

  it('a refund over what is left: 422, as the API answers REFUND_EXCEEDS_AMOUNT, nothing refunded', async () => {
    t = await buildTestApp({ DEFAULT_APPROVE_DELAY_MS: '0' });
    const { cookie, csrf } = await session(t.app);
    const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-refund', amount: 100, scenario: 'approve' } });
    const id = made.json().payment_intent_id as string;
    await t.clock.advance(1);
    const res = await t.app.inject({ method: 'POST', url: `/console/payments/intent/${id}/refund`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&amount=101` });
    expect(refusal(res)).toMatchObject({ status: 422, error: `A refund of 101 exceeds the 100 left to refund on ${id}.` });
    const api = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/refund`, payload: { amount: 101 } });
    expect([api.statusCode, api.json().error.code]).toEqual([422, 'REFUND_EXCEEDS_AMOUNT']);
    expect((await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` })).json()).toMatchObject({ status: 'APPROVED', refunded_amount: 0 });
  });

  it('sent after its session ended: 401 with a link to the login form, which comes back to the page the form was on', async () => {
    t = await buildTestApp({ CONSOLE_TOKEN: 'console-token-0123456789' });
    const res = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, referer: 'http://localhost:80/console/payments/intent/pay_x' }, payload: 'reservation_id=r&amount=100' });
    expect(refusal(res)).toEqual({
      status: 401,
      type: 'text/html; charset=utf-8',
      retryAfter: undefined,
      heading: 'Error 401',
      error: 'Log in first: this console needs CONSOLE_TOKEN, and a session ends at its log-out or after its time. Nothing was changed.',
      link: ['/console/login?next=%2Fconsole%2Fpayments%2Fintent%2Fpay_x', 'Log in'],
    });
    const login = await t.app.inject({ method: 'GET', url: '/console/login?next=%2Fconsole%2Fpayments%2Fintent%2Fpay_x' });
    expect(login.body).toContain('<input type="hidden" name="next" value="/console/payments/intent/pay_x">');
    const bare = await t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: FORM, payload: 'reservation_id=r&amount=100' });
    expect(refusal(bare)).toMatchObject({ status: 401, link: ['/console/login?next=%2Fconsole%2Fpayments', 'Log in'] });
    // The login form's own token wins over the header htmx adds from the ended page's <meta> (a review: 403, so no log-in from that link).
    const cookie = String(login.headers['set-cookie']).split(';', 1)[0] as string;
    const csrf = /<input type="hidden" name="_csrf" value="([^"]+)">/.exec(login.body)?.[1] as string;
    const loggedIn = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...FORM, cookie, 'x-csrf-token': 'the-ended-sessions-token' }, payload: `_csrf=${csrf}&next=%2Fconsole%2Fpayments%2Fintent%2Fpay_x&token=console-token-0123456789` });
    expect([loggedIn.statusCode, loggedIn.headers.location]).toEqual([303, '/console/payments/intent/pay_x']);
    // A login form left open in another tab, sent once logged in elsewhere (its token the old anonymous session's): to its page, not a 403 (a review).
    const session = String(loggedIn.headers['set-cookie']).split(';', 1)[0] as string;
    const stale = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...FORM, cookie: session }, payload: `_csrf=${csrf}&next=%2Fconsole%2Fwebhooks&token=console-token-0123456789` });
    expect([stale.statusCode, stale.headers.location]).toEqual([303, '/console/webhooks']);
  });
});
