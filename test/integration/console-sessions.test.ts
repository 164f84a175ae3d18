import type { AddressInfo } from 'node:net';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, storedIntents, type TestApp } from '../helpers/app.ts';
import { redisServerOrSkip, startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * The console's sessions with CONSOLE_TOKEN (a user test, 2026-12-04: a logged-out cookie still
 * opened every page and made payments, sessions never expired, and logins were neither limited nor
 * logged): a log out ends the session on the server, on every replica; a session expires
 * CONSOLE_SESSION_TTL_MS after its login; failed logins are logged and, past
 * CONSOLE_MAX_LOGIN_FAILURES within a minute from one address, refused with 429 until the minute
 * ends. On memory, and on Redis with PAYSIM_TEST_STORE=redis; two replicas on one Redis below.
 */

const TOKEN = 'a-console-token-77';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const TOO_MANY = /<p class="notice notice-error" role="alert" id="login-error">Too many failed logins from your address: try again in (\d+) s\.<\/p>/;

let open: TestApp[] = [];
afterEach(async () => {
  await Promise.all(open.map((t) => t.app.close()));
  open = [];
});

async function start(env: Record<string, string> = {}, logs?: Array<Record<string, unknown>>): Promise<TestApp> {
  const t = await buildTestApp({ CONSOLE_TOKEN: TOKEN, ...env }, logs === undefined ? {} : { logs });
  open.push(t);
  return t;
}

const cookieOf = (res: LightMyRequestResponse): string => String(res.headers['set-cookie']).split(';', 1)[0] as string;

/** The login form's anonymous session and its CSRF token. */
async function loginForm(t: TestApp): Promise<{ cookie: string; csrf: string }> {
  const page = await t.app.inject({ method: 'GET', url: '/console/login' });
  expect(page.statusCode).toBe(200);
  return { cookie: cookieOf(page), csrf: /<input type="hidden" name="_csrf" value="([^"]+)">/.exec(page.body)?.[1] as string };
}

/** A login with `token` from `remoteAddress` (inject's default 127.0.0.1), through a proxy that says it came from `forwardedFor`. */
async function postLogin(t: TestApp, token: string, remoteAddress?: string, forwardedFor?: string): Promise<LightMyRequestResponse> {
  const form = await loginForm(t);
  const proxied = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  const options: InjectOptions = { method: 'POST', url: '/console/login', headers: { ...FORM, ...proxied, cookie: form.cookie }, payload: `_csrf=${form.csrf}&token=${token}` };
  return t.app.inject(remoteAddress === undefined ? options : { ...options, remoteAddress });
}

/** A logged-in session: its cookie and the CSRF token of a page. */
async function logIn(t: TestApp): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const login = await postLogin(t, TOKEN);
  expect([login.statusCode, login.headers.location]).toEqual([303, '/console/payments']);
  const cookie = cookieOf(login);
  const page = await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie } });
  expect(page.statusCode).toBe(200);
  return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] as string, setCookie: String(login.headers['set-cookie']) };
}

function logOut(t: TestApp, session: { cookie: string; csrf: string }): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/console/logout', headers: { ...FORM, cookie: session.cookie }, payload: `_csrf=${session.csrf}` });
}

function createIntent(t: TestApp, session: { cookie: string; csrf: string }): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/console/payments/new/intent', headers: { ...FORM, cookie: session.cookie }, payload: `_csrf=${session.csrf}&reservation_id=after_logout&amount=1000` });
}

/** What a request without a (live) session gets: the login form for a page, 401 for an action or the feed. */
async function expectLoggedOut(t: TestApp, session: { cookie: string; csrf: string }): Promise<void> {
  const page = await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie: session.cookie } });
  expect([page.statusCode, page.headers.location]).toEqual([303, '/console/login?next=%2Fconsole%2Fpayments']);
  expect((await t.app.inject({ method: 'GET', url: '/console/events', headers: { cookie: session.cookie } })).statusCode).toBe(401);
  const action = await createIntent(t, session);
  expect(action.statusCode).toBe(401);
  expect(action.body).toContain('Log in first: this console needs CONSOLE_TOKEN, and a session ends at its log-out or after its time. Nothing was changed.');
  // The login form opens again, with a new anonymous session.
  const form = await t.app.inject({ method: 'GET', url: '/console/login', headers: { cookie: session.cookie } });
  expect(form.statusCode).toBe(200);
  expect(cookieOf(form)).toMatch(/^paysim_console_[\w-]{8}=[\w-]+\.0\.[\w-]+$/);
}

/** The session's live feed, open over real HTTP: resolves `ended` with the time it took to end from `since()`. */
async function openFeed(t: TestApp, cookie: string): Promise<{ ended: Promise<void> }> {
  if (t.app.server.address() === null) await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/console/events`, { headers: { cookie } });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: hello');
  const ended = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  return { ended };
}

/** Whether `ended` settles within `ms` of real time. */
async function endsWithin(ended: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([ended.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

describe('console sessions', () => {
  it('an open live feed ends with its session: at once at a log out, and at its expiry within the next look (5 s)', async () => {
    const t = await start({ CONSOLE_SESSION_TTL_MS: '60000' });
    const first = await logIn(t);
    const feed = await openFeed(t, first.cookie);
    expect(await endsWithin(feed.ended, 300)).toBe(false);
    expect((await logOut(t, first)).statusCode).toBe(303);
    expect(await endsWithin(feed.ended, 2_000)).toBe(true);

    const second = await logIn(t);
    const expiring = await openFeed(t, second.cookie);
    await t.clock.advance(60_000);
    expect(await endsWithin(expiring.ended, 7_000)).toBe(true);
  });

  it('two consoles on one host keep their own sessions: a browser sends both the cookies (per host, not port), and a visit to one leaves the other logged in', async () => {
    const a = await start();
    const b = await start({ CONSOLE_TOKEN: 'another-token-5678' });
    // Two open consoles (no token), as two containers publishing one container port on host ports 9002 and 9003.
    const open1 = await start({ CONSOLE_TOKEN: '' });
    const open2 = await start({ CONSOLE_TOKEN: '' });
    const session = await logIn(a);
    // The browser's jar for the host: A's login, then what B's login form and the open consoles set.
    const jar = new Map([session.cookie.split('=', 1)[0] as string].map((name) => [name, session.cookie]));
    const visit = async (other: TestApp, url: string, host?: string) => {
      const res = await other.app.inject({ method: 'GET', url, headers: { cookie: [...jar.values()].join('; '), ...(host === undefined ? {} : { host }) } });
      expect(res.statusCode).toBe(200);
      const set = res.headers['set-cookie'] === undefined ? undefined : cookieOf(res);
      if (set !== undefined) jar.set(set.split('=', 1)[0] as string, set);
      return set;
    };
    await visit(b, '/console/login');
    await visit(open1, '/console/payments', 'localhost:9002');
    await visit(open2, '/console/payments', 'localhost:9003');
    expect(jar.size).toBe(4);
    // Each keeps its session: no new cookie at the next visit of any.
    expect(await visit(a, '/console/payments')).toBeUndefined();
    expect(await visit(open1, '/console/payments', 'localhost:9002')).toBeUndefined();
    expect(await visit(open2, '/console/payments', 'localhost:9003')).toBeUndefined();
  });

  it('an open console (no token) restarted: its new cookie replaces the last one, not one more each start (a review: a 431 after about 170 restarts)', async () => {
    // On Redis, as a restart keeps its key prefix (and the console's key generated there).
    const prefix: Record<string, string> = process.env.PAYSIM_TEST_STORE === 'redis' ? { REDIS_KEY_PREFIX: `restart-${process.pid}-${Date.now()}:` } : {};
    const before = await start({ CONSOLE_TOKEN: '', ...prefix });
    const first = cookieOf(await before.app.inject({ method: 'GET', url: '/console/payments', headers: { host: 'localhost:9002' } }));
    await before.app.close();
    open = open.filter((t) => t !== before);
    const after = await start({ CONSOLE_TOKEN: '', ...prefix });
    const again = await after.app.inject({ method: 'GET', url: '/console/payments', headers: { host: 'localhost:9002', cookie: first } });
    const name = (cookie: string) => cookie.split('=', 1)[0];
    // On Redis the restarted process shares the key it left there: its cookie still holds.
    if (process.env.PAYSIM_TEST_STORE === 'redis') expect(again.headers['set-cookie']).toBeUndefined();
    else expect([name(first), name(cookieOf(again))]).toEqual(['paysim_console_port9002', 'paysim_console_port9002']);
  });

  it('a log out ends the session on the server: the saved cookie opens no page and, with its CSRF token, makes no payment; a new login works', async () => {
    const t = await start();
    const session = await logIn(t);
    expect(session.cookie).toMatch(/^paysim_console_[\w-]{8}=[\w-]{24}\.1\.\d{13}\.[\w-]{43}$/);
    const out = await logOut(t, session);
    expect([out.statusCode, out.headers.location, out.headers['set-cookie']]).toEqual([303, '/console/login', expect.stringMatching(/^paysim_console_[\w-]{8}=; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=0$/)]);
    await expectLoggedOut(t, session);
    expect(await storedIntents(t)).toBe(0);
    // Logging out again with it changes nothing: 401, as without a session.
    expect((await logOut(t, session)).statusCode).toBe(401);
    const again = await logIn(t);
    expect(again.cookie).not.toBe(session.cookie);
    const made = await createIntent(t, again);
    expect([made.statusCode, made.headers.location]).toEqual([303, expect.stringMatching(/^\/console\/payments\/intent\/pay_\w+\?notice=created$/)]);
    expect(await storedIntents(t)).toBe(1);
  });

  it('a session expires CONSOLE_SESSION_TTL_MS after its login (its cookie’s Max-Age too): then the login form, as without a cookie', async () => {
    const t = await start({ CONSOLE_SESSION_TTL_MS: '60000' });
    const session = await logIn(t);
    expect(session.setCookie).toMatch(/^paysim_console_[\w-]{8}=[\w.-]+; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=60$/);
    expect(session.cookie.split('.')[2]).toBe(String(t.clock.now() + 60_000));
    await t.clock.advance(59_999);
    expect((await t.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie: session.cookie } })).statusCode).toBe(200);
    await t.clock.advance(1);
    await expectLoggedOut(t, session);
    expect(await storedIntents(t)).toBe(0);
  });

  it('the default lifetime is 12 hours', async () => {
    const t = await start();
    const { setCookie, cookie } = await logIn(t);
    expect(setCookie).toMatch(/; Max-Age=43200$/);
    expect(cookie.split('.')[2]).toBe(String(t.clock.now() + 43_200_000));
  });

  it('each failed login is logged at warn with the address, never the token; past 10 within a minute the address gets 429 with Retry-After, even with the right token, until the minute ends', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await start({}, logs);
    const wrong = (i: number) => `wrong-token-${i}-secret`;
    for (let i = 1; i <= 10; i++) {
      const res = await postLogin(t, wrong(i));
      expect([i, res.statusCode, res.headers['set-cookie']]).toEqual([i, 401, undefined]);
      expect(res.body).toContain('<p class="notice notice-error" role="alert" id="login-error">Wrong token.</p>');
    }
    const failed = logs.filter((r) => String(r.msg).startsWith('console login failed'));
    expect(failed.map((r) => [r.level, r.msg, r.address, r.failures])).toEqual(Array.from({ length: 10 }, (_, i) => ['warn', 'console login failed: wrong token from 127.0.0.1', '127.0.0.1', i + 1]));
    expect(JSON.stringify(logs)).not.toMatch(/wrong-token|a-console-token/);

    const refused = await postLogin(t, TOKEN);
    expect([refused.statusCode, refused.headers['retry-after'], refused.headers['set-cookie']]).toEqual([429, '60', undefined]);
    expect(TOO_MANY.exec(refused.body)?.[1]).toBe('60');
    expect(refused.body).toContain('<form method="post" action="/console/login"');
    expect(logs.findLast((r) => String(r.msg).startsWith('console login refused'))).toMatchObject({ level: 'warn', address: '127.0.0.1', retryAfterS: 60, msg: 'console login refused: 10 failed logins from 127.0.0.1 within a minute; logins from it are refused for 60 s' });
    // Another address is not refused.
    expect((await postLogin(t, TOKEN, '10.1.2.3')).statusCode).toBe(303);

    await t.clock.advance(30_000);
    const later = await postLogin(t, TOKEN);
    expect([later.statusCode, later.headers['retry-after']]).toEqual([429, '30']);
    // The refusal is logged once per window, not per attempt.
    expect(logs.filter((r) => String(r.msg).startsWith('console login refused'))).toHaveLength(1);
    await t.clock.advance(30_000);
    const done = await postLogin(t, TOKEN);
    expect([done.statusCode, done.headers.location]).toEqual([303, '/console/payments']);
    expect(logs.filter((r) => r.msg === 'console login from 127.0.0.1')).toHaveLength(1);
    expect(JSON.stringify(logs)).not.toMatch(/wrong-token|a-console-token/);
  });

  it('a success before the limit starts the count again: 9 failures, a login, 10 failures answer 401, the next 429', async () => {
    const t = await start({ CONSOLE_MAX_LOGIN_FAILURES: '10' });
    for (let i = 0; i < 9; i++) expect((await postLogin(t, 'wrong-token')).statusCode).toBe(401);
    expect((await postLogin(t, TOKEN)).statusCode).toBe(303);
    for (let i = 0; i < 10; i++) expect((await postLogin(t, 'wrong-token')).statusCode).toBe(401);
    expect((await postLogin(t, TOKEN)).statusCode).toBe(429);
  });

  it('FluxPay clients cannot push the count out: with FLUXPAY_RATE_LIMIT_MAX_KEYS=1, requests of new X-Client-Id values after 2 failures leave the third attempt refused', async () => {
    const t = await start({ CONSOLE_MAX_LOGIN_FAILURES: '2', FLUXPAY_RATE_LIMIT_MAX_KEYS: '1' });
    for (let i = 0; i < 2; i++) expect((await postLogin(t, 'wrong-token')).statusCode).toBe(401);
    // Each new client's window of FluxPay's rate limits (one key at most) pushes out the oldest.
    for (let i = 0; i < 3; i++) expect((await t.app.inject({ url: '/api/v1/outbox', headers: { 'x-client-id': `evict-${i}` } })).statusCode).toBe(200);
    expect((await postLogin(t, TOKEN)).statusCode).toBe(429);
  });

  it('behind a balancer on a private network with TRUST_PROXY=uniquelocal the failures count per address it saw (the one it appended to X-Forwarded-For); without it, per the balancer\'s', async () => {
    const proxied = await start({ CONSOLE_MAX_LOGIN_FAILURES: '2', TRUST_PROXY: 'uniquelocal' });
    // A client's own X-Forwarded-For entry (here 198.51.100.9, spoofed) is left of the balancer's and is not believed.
    for (let i = 0; i < 2; i++) expect((await postLogin(proxied, 'wrong-token', '10.0.0.2', `198.51.100.9, 203.0.113.7`)).statusCode).toBe(401);
    expect((await postLogin(proxied, TOKEN, '10.0.0.2', '198.51.100.9, 203.0.113.7')).statusCode).toBe(429);
    expect((await postLogin(proxied, TOKEN, '10.0.0.2', '198.51.100.9, 203.0.113.8')).statusCode).toBe(303);
    await proxied.app.close();
    const direct = await start({ CONSOLE_MAX_LOGIN_FAILURES: '2' });
    for (let i = 0; i < 2; i++) expect((await postLogin(direct, 'wrong-token', '10.0.0.2', '203.0.113.7')).statusCode).toBe(401);
    expect((await postLogin(direct, TOKEN, '10.0.0.2', '203.0.113.8')).statusCode).toBe(429);
  });

  it('CONSOLE_MAX_LOGIN_FAILURES sets the limit', async () => {
    const t = await start({ CONSOLE_MAX_LOGIN_FAILURES: '2' });
    expect([(await postLogin(t, 'wrong-token')).statusCode, (await postLogin(t, 'wrong-token')).statusCode, (await postLogin(t, TOKEN)).statusCode]).toEqual([401, 401, 429]);
  });
});

if (redisServerOrSkip('console sessions on two replicas')) {
  describe('console sessions on two replicas on one Redis', { timeout: 90_000 }, () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    async function replicas(): Promise<[TestApp, TestApp]> {
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), SCHEDULER_POLL_MS: '0' };
      return [await start(env), await start(env)];
    }

    it('a session made on A works on B; logged out on B, it is dead on A, for pages and actions', async () => {
      const [a, b] = await replicas();
      const session = await logIn(a);
      expect((await b.app.inject({ method: 'GET', url: '/console/payments', headers: { cookie: session.cookie } })).statusCode).toBe(200);
      expect((await logOut(b, session)).statusCode).toBe(303);
      await expectLoggedOut(a, session);
      await expectLoggedOut(b, session);
      expect(await storedIntents(a)).toBe(0);
      expect(await redis.client.zcard(`${a.config.redis.keyPrefix}console:revoked-sessions`)).toBe(1);
    });

    it('a live feed open on A ends within the next look (5 s) once its session logs out on B', async () => {
      const [a, b] = await replicas();
      const session = await logIn(a);
      const feed = await openFeed(a, session.cookie);
      expect((await logOut(b, session)).statusCode).toBe(303);
      expect(await endsWithin(feed.ended, 7_000)).toBe(true);
    });

    it('failed logins count for both: 5 on A and 5 on B, then A answers 429 to the right token', async () => {
      const [a, b] = await replicas();
      for (let i = 0; i < 5; i++) expect([(await postLogin(a, 'wrong-token')).statusCode, (await postLogin(b, 'wrong-token')).statusCode]).toEqual([401, 401]);
      const refused = await postLogin(a, TOKEN);
      expect([refused.statusCode, refused.headers['retry-after']]).toEqual([429, '60']);
    });

    it('while Redis is away a logged-in page answers 503 with Retry-After (its session cannot be checked), not the page', async () => {
      const [a] = await replicas();
      const session = await logIn(a);
      await redis.pause();
      try {
        const deadline = Date.now() + 20_000;
        let res: LightMyRequestResponse;
        do res = await a.app.inject({ method: 'GET', url: '/console/charts', headers: { cookie: session.cookie } });
        while (res.statusCode !== 503 && Date.now() < deadline);
        expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '1']);
        expect(res.body).toContain('The store is unavailable; retry shortly.');
      } finally {
        await redis.resume();
      }
    });
  });
}
