import { createServer } from 'node:net';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, chromiumPath, inCi } from '../helpers/chromium.ts';
import { ServerProcess } from '../helpers/child.ts';

/**
 * Swagger UI in a real browser (headless Chromium through playwright-core): a user opens the
 * simulator's address, clicks "Authorize", pastes a bearer token and uses "Try it out" on
 * POST /api/v1/payments/process. Without the token that gets 401; with it, 200 and the booking is
 * confirmed. The service runs as a child process whose PUBLIC_URL (the document's `servers`) is
 * its real address, so the UI calls it; every other origin is blocked.
 * Chromium is the Debian package `chromium`: without it this test is skipped locally, but fails in
 * CI (CI set) rather than pass unseen.
 */

const JWT_SECRET = 'swagger-ui-test-secret';
const USER = 'user_test_001';
const TIMEOUT = 30_000;
const OPERATION = '#operations-payment-service-processPayment';

/** A port that was free a moment ago: the kernel's choice for a listener that is closed at once. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Booking {
  bookingId: string;
  status: string;
}

describe.skipIf(chromiumPath === undefined && !inCi)('Swagger UI in Chromium: Authorize and Try it out on processPayment', () => {
  let server: ServerProcess | undefined;
  let launching: Promise<Browser> | undefined;
  let page: Page;
  let origin: string;
  let bookingId: string;
  /** Requests Swagger UI tried to make to anywhere but the service (aborted). */
  const blocked: string[] = [];

  async function myBookings(): Promise<Booking[]> {
    const res = await fetch(`${origin}/bookings/my`, { headers: { 'x-user-id': USER } });
    expect(res.status).toBe(200);
    return (await res.json()) as Booking[];
  }

  async function bookingStatus(): Promise<string | undefined> {
    return (await myBookings()).find((b) => b.bookingId === bookingId)?.status;
  }

  /** Clicks "Execute" and waits for the request, its response and the live response row. */
  async function execute(op: Locator): Promise<{ url: string; authorization: string | undefined; status: number; shownStatus: string; shownBody: string }> {
    const requestSeen = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/payments/process');
    await op.getByRole('button', { name: 'Execute' }).click();
    const request = await requestSeen;
    const response = await request.response(); // null when the request failed (or was blocked: a wrong PUBLIC_URL)
    if (response === null) throw new Error(`Try it out's ${request.url()} failed: ${request.failure()?.errorText ?? 'no response'}; blocked: ${JSON.stringify(blocked)}`);
    const headers = await request.allHeaders();
    const row = op.locator('.live-responses-table tr.response');
    await row.waitFor();
    return {
      url: request.url(),
      authorization: headers.authorization,
      status: response.status(),
      shownStatus: (await row.locator('.response-col_status').innerText()).trim(),
      shownBody: await row.locator('.highlight-code pre').first().innerText(),
    };
  }

  beforeAll(async () => {
    if (chromiumPath === undefined) throw new Error(CHROMIUM_MISSING);
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    server = new ServerProcess({
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: origin,
      JWT_SECRET,
      MOCK_MIN_DELAY_MS: '0',
      MOCK_MAX_DELAY_MS: '0',
      EVENT_PROCESSING_DELAY_MS: '0',
    });
    launching = chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'], timeout: TIMEOUT });
    const [listening, browser] = await Promise.all([server.origin(), launching]);
    expect(listening).toBe(origin);

    // The pending booking to pay, made over plain HTTP by the same user the token names.
    const created = await fetch(`${origin}/bookings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': USER },
      body: JSON.stringify({ performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' }),
    });
    expect(created.status).toBe(201);
    bookingId = ((await created.json()) as { bookingId: string }).bookingId;
    expect(await bookingStatus()).toBe('pending');

    page = await browser.newPage();
    page.setDefaultTimeout(15_000); // each step; a test has TIMEOUT in all
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      blocked.push(url.href);
      return route.abort('blockedbyclient');
    });
  }, TIMEOUT);

  afterAll(async () => {
    await launching?.then((browser) => browser.close()).catch(() => undefined); // closed even when the start failed
    if (server !== undefined && server.exit === undefined) {
      server.kill('SIGTERM');
      await server.waitForExit(10_000).catch(async () => {
        server?.kill('SIGKILL');
        await server?.exited;
      });
    }
  }, TIMEOUT);

  it('without Authorize, Try it out gets 401 and the booking stays pending', async () => {
    await page.goto(`${origin}/docs`); // redirects to the UI at the root
    expect(page.url()).toBe(`${origin}/`);
    const op = page.locator(OPERATION);
    await op.waitFor();
    await op.locator('.opblock-summary-control').click();
    await op.getByRole('button', { name: 'Try it out' }).click();
    await op.locator('textarea.body-param__text').fill(JSON.stringify({ reservationId: bookingId, paymentMethod: 'kakao_pay' }, null, 2));

    const result = await execute(op);
    expect(result.url).toBe(`${origin}/api/v1/payments/process`); // the document's server: PUBLIC_URL
    expect(result.authorization).toBeUndefined();
    expect(result.status).toBe(401);
    expect(result.shownStatus).toBe('401');
    expect(JSON.parse(result.shownBody)).toEqual({ error: '인증이 필요합니다.' });
    expect((await op.locator('.request-url pre').innerText()).trim()).toBe(result.url);
    expect(await bookingStatus()).toBe('pending');
  }, TIMEOUT);

  it('after Authorize with a bearer token, Try it out gets 200 and the booking is confirmed', async () => {
    const token = await new SignJWT({ userId: USER }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));

    await page.getByRole('button', { name: 'Authorize', exact: true }).click();
    const bearer = page.locator('.modal-ux .auth-container form').filter({ hasText: 'bearerAuth' });
    await bearer.getByRole('textbox').fill(token);
    await bearer.getByRole('button', { name: 'Apply credentials' }).click(); // the dialog's "Authorize"
    await bearer.getByRole('button', { name: 'Remove authorization' }).waitFor(); // applied: "Logout" replaces "Authorize"
    await bearer.getByRole('button', { name: 'Close' }).click();
    await page.locator('.modal-ux').waitFor({ state: 'detached' });

    const op = page.locator(OPERATION);
    await op.getByRole('button', { name: 'Clear' }).click(); // the 401 of the first test
    await op.locator('.live-responses-table').waitFor({ state: 'detached' });
    const result = await execute(op);
    expect(result.authorization).toBe(`Bearer ${token}`);
    expect(result.status).toBe(200);
    expect(result.shownStatus).toBe('200');
    expect(JSON.parse(result.shownBody)).toMatchObject({
      success: true,
      message: '결제가 완료되었습니다.',
      payment: { reservationId: bookingId, paymentMethod: '카카오페이', totalAmount: expect.any(Number) },
      reservation: { performanceId: 'perf_001', seats: [expect.any(String)] },
    });
    expect(await op.locator('.curl-command').innerText()).toContain(`Authorization: Bearer ${token}`);

    // Outside the browser: the payment really happened, for the token's user.
    expect(await bookingStatus()).toBe('confirmed');
    expect(blocked).toEqual([]);
  }, TIMEOUT);
});
