import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { CHROMIUM_MISSING, chromiumPath, inCi } from '../helpers/chromium.ts';

/**
 * CORS_ORIGINS in a real browser: a page served from one origin calls paysim on another (another
 * port of 127.0.0.1) with fetch, as a ticketing front end in a local stack would. Chromium sends
 * the preflight for the JSON body and the custom headers, then the call, and lets the page read the
 * answer and the exposed headers, only when paysim lists the page's origin.
 * Without chromium the suite is skipped locally and fails in CI (CI set).
 */

const TIMEOUT = 60_000;

async function paysim(corsOrigins: string): Promise<{ app: FastifyInstance; origin: string }> {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', SHUTDOWN_TIMEOUT_MS: '0', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', CORS_ORIGINS: corsOrigins });
  const app = await buildApp({ config, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/** The front end's origin: an empty page, from which the test runs its fetches. */
async function frontEnd(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>front end</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Books a seat from the page with an Idempotency-Key: what the page could read of the answer, or the fetch's error. */
function bookFromPage(api: string): string {
  return `(async () => {
    try {
      const response = await fetch(${JSON.stringify(`${api}/bookings`)}, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'user_cors', 'idempotency-key': 'cors-1' },
        body: JSON.stringify({ performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' }),
      });
      const body = await response.json();
      return { status: response.status, replayed: response.headers.get('idempotent-replayed'), requestId: response.headers.get('x-request-id') !== null, message: body.message };
    } catch (error) {
      return { error: String(error) };
    }
  })()`;
}

describe.skipIf(chromiumPath === undefined && !inCi)('CORS_ORIGINS in Chromium', () => {
  let browser: Browser;
  let front: { server: Server; origin: string };
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    if (chromiumPath === undefined) throw new Error(CHROMIUM_MISSING);
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    front = await frontEnd();
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close();
    for (const app of apps) await app.close();
    await new Promise((resolve) => front?.server.close(resolve));
  });

  it('a page of a listed origin books through the preflight, reads the answer and the exposed headers; a page of another origin cannot read it', async () => {
    const listed = await paysim(`http://other.example, ${front.origin}`);
    const unlisted = await paysim('http://other.example');
    apps.push(listed.app, unlisted.app);
    const page = await browser.newPage();
    await page.goto(front.origin);
    expect(await page.evaluate(bookFromPage(listed.origin))).toEqual({ status: 201, replayed: null, requestId: true, message: 'Booking and payment intent created. Please proceed to payment execution.' });
    // The same key again: the stored answer, and the page can read that it is one.
    expect(await page.evaluate(bookFromPage(listed.origin))).toEqual({ status: 201, replayed: 'true', requestId: true, message: 'Booking and payment intent created. Please proceed to payment execution.' });
    expect(await page.evaluate(bookFromPage(unlisted.origin))).toEqual({ error: 'TypeError: Failed to fetch' });
    // The refused page's preflight made nothing.
    expect((await unlisted.app.inject({ url: '/bookings/my', headers: { 'x-user-id': 'user_cors' } })).json()).toEqual([]);
    await page.close();
  }, TIMEOUT);
});
