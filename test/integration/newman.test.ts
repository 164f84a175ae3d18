import { readFile } from 'node:fs/promises';
import { SignJWT } from 'jose';
import newman, { type NewmanRunSummary } from 'newman';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCollection, COLLECTION_PATH, countRequests } from '../../scripts/postman.ts';
import { ServerProcess } from '../helpers/child.ts';
import { closedPort, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { runPython, pythonVerify, tsVerify } from '../helpers/v2.ts';

/**
 * The committed Postman collection (postman/paysim.postman_collection.json, `make postman`) run
 * with newman against the real service in a child process, as a user would run it: every request
 * passes its tests (status, content type, JSON schema of the document, content, chained ids), the
 * error paths get their documented statuses, and the file is what `make postman` writes today.
 */

const JWT_SECRET = 'newman-test-jwt-secret';
const USER_ID = 'user_test_001';
const WEBHOOK_SECRET = 'whsec_bmV3bWFuLXRlc3Qtc2VjcmV0LTEyMzQ1Njc4OTA=';

/** The fewest assertions a run makes (318 when this was written): fewer means tests went missing. */
const MIN_ASSERTIONS = 300;

/** Requests that must get an error, by name: the documented status of each. */
const ERROR_PATHS: Record<string, number> = {
  // Main requests whose chained resource is in a state the operation refuses.
  'Cancel a PENDING payment intent': 409,
  'Deliver a webhook again': 404,
  'Re-enable a URL disabled after 410 Gone': 404,
  "Cancel one of the caller's pending bookings": 400,
  'Pay a pending booking in one step (JWT)': 400,
  'Confirm a PENDING payment by hand': 400,
  // Variation Tests.
  'Create a payment intent[amount 0 → 400]': 400,
  'Create a payment intent[not JSON → 415]': 415,
  'Read a payment intent[unknown id → 404]': 404,
  'Refund an APPROVED payment intent, fully (default) or partly[more than is left → 422]': 422,
  'Send a test webhook for an intent to any URL[unknown intent → 404]': 404,
  'Book seats: a pending booking holding the seats, and its payment intent[without x-user-id → 401]': 401,
  'Book seats: a pending booking holding the seats, and its payment intent[quantity 11 → 400]': 400,
  'Book seats: a pending booking holding the seats, and its payment intent[unknown performance → 404]': 404,
  'Pay a pending booking by card (simulated)[already paid → 409]': 409,
  "Pay a pending booking by card (simulated)[another user's booking → 403]": 403,
  "The caller's bookings, newest first, a page at a time[without x-user-id → 401]": 401,
  "A performance's seat map: each seat's state, booking and lock expiry[unknown performance → 404]": 404,
  'Pay a pending booking in one step (JWT)[without token → 401]': 401,
  'Pay a pending booking in one step (JWT)[invalid token → 403]': 403,
  'Pay a pending booking in one step (JWT)[no reservationId → 400]': 400,
  'Pay a pending booking in one step (JWT)[unknown booking → 404]': 404,
  'Create a payment: auto-completed, with a signed callback[amount 0 → 422]': 422,
  'Create a payment: auto-completed, with a signed callback[tx_id reused with another amount → 409]': 409,
  'Create a payment: auto-completed, with a signed callback[not JSON → 415]': 415,
  'One payment[unknown id → 404]': 404,
  'Every payment held: the counts by status, and the newest payments by id[limit 0 → 422]': 422,
  'Confirm a PENDING payment by hand[unknown payment → 404]': 404,
  'Add the credits of a PAID credit-charge order': 409,
  'Deduct credits for a usage': 409,
  'Restore a usage’s credits': 404,
  'Cancel an order (a PAID one is refunded)': 409,
  'Create an order (PENDING)[amount 0 → 400]': 400,
  'Confirm a payment (approve or decline)[another amount → PAY_005]': 400,
  'Confirm a payment (approve or decline)[again → PAY_003]': 409,
  'One FluxPay payment[unknown key → 404]': 404,
  'A usage saga and its steps[unknown saga → 404]': 404,
  // Integration Tests.
  'Refund the cancelled intent → 409': 409,
  'Cancel it again → 400': 400,
  'Pay it again → 400': 400,
  'Confirm it again → 400': 400,
};

interface Item {
  name: string;
  item?: Item[];
  request?: { url: { host?: string[] } };
}

function requestNames(items: readonly Item[]): string[] {
  return items.flatMap((item) => (item.item !== undefined ? requestNames(item.item) : [item.name]));
}

function firstDifference(a: string, b: string): string {
  const left = a.split('\n');
  const right = b.split('\n');
  const line = left.findIndex((text, i) => text !== right[i]);
  const at = line === -1 ? left.length : line;
  return `first difference at line ${at + 1}: ${JSON.stringify(left[at]?.trim())} vs ${JSON.stringify(right[at]?.trim())}`;
}

function runNewman(collection: object, envVar: { key: string; value: string }[]): Promise<NewmanRunSummary> {
  return new Promise((done, fail) => {
    newman.run({ collection, envVar, reporters: [], timeoutRequest: 10_000, timeout: 25_000 }, (error, summary) => (error ? fail(error) : done(summary)));
  });
}

describe('the Postman collection', () => {
  let committed: string;
  beforeAll(async () => {
    committed = await readFile(COLLECTION_PATH, 'utf8').catch(() => '');
  });

  it('is what make postman writes from the OpenAPI document today', async () => {
    const fresh = await buildCollection();
    if (committed !== fresh) {
      // Tell a stale file from a build that differs every time (e.g. a new parameter without an example, faked at random).
      const again = await buildCollection();
      expect(again === fresh, `make postman is not deterministic: ${firstDifference(fresh, again)}`).toBe(true);
    }
    expect(committed === fresh, `postman/paysim.postman_collection.json is stale: run make postman (${firstDifference(committed, fresh)})`).toBe(true);
  }, 60_000);

  it('takes its request data from the examples: no schema placeholders, every URL on {{baseUrl}}', () => {
    expect(committed).not.toMatch(/<(string|integer|number|boolean|long|double|float|date-time|dateTime|uuid)>/);
    const { item } = JSON.parse(committed) as { item: Item[] };
    const hosts = new Set<string>();
    const walk = (items: Item[]): void => {
      for (const it of items) {
        if (it.item !== undefined) walk(it.item);
        else hosts.add((it.request?.url.host ?? []).join('.'));
      }
    };
    walk(item);
    expect([...hosts]).toEqual(['{{baseUrl}}']);
  });

  describe('run with newman against the service', () => {
    let server: ServerProcess;
    let origin: string;
    let receiver: Receiver;
    let downPort: number;
    beforeAll(async () => {
      downPort = await closedPort();
      receiver = await startReceiver();
      // Decisions and card payments at once (the collection would wait for them, only longer).
      server = new ServerProcess({ JWT_SECRET, WEBHOOK_SECRET, DEFAULT_APPROVE_DELAY_MS: '0', MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
      origin = await server.origin();
    });
    afterAll(async () => {
      // (undefined when beforeAll failed)
      if (server !== undefined) {
        server.kill('SIGKILL');
        await server.exited;
      }
      await receiver?.close();
    });

    it('passes every test of every request, and the error paths get their documented statuses', async () => {
      const collection = JSON.parse(committed) as { item: Item[] };
      const token = await new SignJWT({ userId: USER_ID })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(USER_ID)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(JWT_SECRET));

      const started = Date.now();
      const summary = await runNewman(collection, [
        { key: 'baseUrl', value: origin },
        { key: 'bearerToken', value: token },
        { key: 'webhookUrl', value: receiver.url('/webhooks/payments') },
        { key: 'v2CallbackUrl', value: receiver.url('/api/orders/payment/webhook/v2/tx_1001') },
        { key: 'v2FailingCallbackUrl', value: `http://127.0.0.1:${downPort}/api/orders/payment/webhook/v2/tx_1002` },
        // FluxPay's subscription goes where nothing listens: the receiver counts only the requests above.
        { key: 'fluxpayWebhookUrl', value: `http://127.0.0.1:${downPort}/fluxpay/events` },
      ]);
      const { stats, executions, failures } = summary.run;

      // No failure at all: no assertion, script or request error.
      const described = failures.map((f) => `${f.source?.name ?? '?'}: ${f.error.name}: ${f.error.message} (${f.at})`);
      expect(described, `newman failures; the end of the service's log:\n${server.output.slice(-3000)}`).toEqual([]);
      expect(summary.run.error ?? null).toBeNull();

      // Every request of the collection ran exactly once, in one iteration, and got an answer from 127.0.0.1.
      const names = requestNames(collection.item);
      expect(names.length).toBe(countRequests(collection.item));
      expect(new Set(names).size, 'request names are unique').toBe(names.length);
      expect(stats.iterations).toMatchObject({ total: 1, failed: 0 });
      expect(stats.items).toMatchObject({ total: names.length, failed: 0 });
      const byName = new Map<string, (typeof executions)[number]>();
      for (const execution of executions) byName.set(execution.item.name, execution);
      expect([...byName.keys()].sort()).toEqual([...names].sort());
      for (const execution of executions) {
        expect(execution.requestError, execution.item.name).toBeUndefined();
        expect(execution.request.url.getHost(), execution.item.name).toBe('127.0.0.1');
        expect(execution.response?.code, execution.item.name).toBeTypeOf('number');
      }
      // pm.sendRequest in a pre-request script counts as a request too.
      expect(stats.requests.failed).toBe(0);
      expect(stats.requests.total).toBeGreaterThanOrEqual(names.length);

      // Enough assertions, none failed or skipped, and every request checks at least its status and content type.
      expect(stats.assertions.failed).toBe(0);
      expect(stats.assertions.total).toBeGreaterThanOrEqual(MIN_ASSERTIONS);
      // The README's figures are this run's (a user test found them two collections old on 2026-12-05).
      const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
      const told = /Run\s+it\s+in\s+order,\s+against\s+a\s+service\s+started\s+with\s+`JWT_SECRET`\s+set:\s+(\d+)\s+requests\s+\(and\s+a\s+few\s+more\s+that\s+a\s+pre-request\s+script\s+sends[^)]*\)\s+and\s+over\s+(\d+)\s+assertions/.exec(readme);
      expect(told, 'the README says how many requests and assertions').not.toBeNull();
      const [, requests, assertions] = told as RegExpExecArray;
      expect(Number(requests)).toBe(names.length);
      expect(Number(assertions)).toBeLessThanOrEqual(stats.assertions.total);
      expect(Number(assertions)).toBeGreaterThan(stats.assertions.total - 50);
      for (const [name, execution] of byName) {
        const assertions = execution.assertions ?? [];
        expect(assertions.filter((a) => a.skipped === true || a.error !== undefined), name).toEqual([]);
        expect(assertions.some((a) => / - (Response )?[Ss]tatus code is /.test(a.assertion)), `${name} checks its status`).toBe(true);
        expect(assertions.some((a) => / - Content-Type is /.test(a.assertion)), `${name} checks its content type`).toBe(true);
      }

      // The error paths answered with their documented statuses, the rest with 2xx.
      const statuses = Object.fromEntries([...byName].map(([name, execution]) => [name, execution.response?.code]));
      for (const [name, status] of Object.entries(ERROR_PATHS)) expect(statuses[name], name).toBe(status);
      for (const [name, status] of Object.entries(statuses)) {
        if (!(name in ERROR_PATHS)) expect(status, name).toBeGreaterThanOrEqual(200);
        if (!(name in ERROR_PATHS)) expect(status, name).toBeLessThan(300);
      }
      expect(new Set(Object.values(ERROR_PATHS))).toEqual(new Set([400, 401, 403, 404, 409, 415, 422]));

      // The test webhook the collection sends arrived at {{webhookUrl}} (no intent has a webhook_url), and the one
      // v2 payment with a working callback URL called back, signed as source document 001 says.
      await receiver.waitFor(2);
      expect(receiver.requests).toHaveLength(2);
      const [webhook] = receiver.requests.filter((r) => r.url === '/webhooks/payments');
      expect(JSON.parse(webhook!.body)).toMatchObject({ type: 'payment.approved' });
      const [callback] = receiver.requests.filter((r) => r.url === '/api/orders/payment/webhook/v2/tx_1001');
      expect(JSON.parse(callback!.body)).toMatchObject({ version: 'v2', payment_id: 'pay_tx_1001', status: 'PAYMENT_COMPLETED' });
      const signature = String(callback!.headers['x-payment-signature']);
      expect(tsVerify(callback!.body, signature, WEBHOOK_SECRET)).toBe(true);
      if (runPython) expect(pythonVerify(callback!.body, signature, WEBHOOK_SECRET).valid).toBe(true);

      expect(Date.now() - started, 'the run stays quick').toBeLessThan(20_000);
    }, 30_000);
  });
});
