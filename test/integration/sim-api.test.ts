import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { START_GRACE_MS, startGraceEndsAt } from '../../src/plugins/external/under-pressure.ts';
import { buildTestApp, storedIntents, ULID, type TestApp } from '../helpers/app.ts';

const PAY_ID = new RegExp(`^pay_${ULID}$`);
const JSON_TYPE = 'application/json; charset=utf-8';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.app.close();
});

function create(body: unknown, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body as object, headers });
}
async function createId(body: Record<string, unknown> = {}): Promise<string> {
  const res = await create({ reservation_id: 'res_1', amount: 15000, ...body });
  expect(res.statusCode).toBe(200);
  return res.json().payment_intent_id;
}
const get = (id: string) => t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` });
const post = (url: string, payload?: object, headers: Record<string, string> = {}) => t.app.inject({ method: 'POST', url, payload, headers });

describe('POST /v1/sim/intent', () => {
  it('answers 200 PENDING with next=poll, stores the intent with defaults, and publishes payment.created', async () => {
    const res = await create({ reservation_id: 'res_1', amount: 15000 });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    const body = res.json();
    expect(body).toEqual({ payment_intent_id: expect.stringMatching(PAY_ID), status: 'PENDING', next: 'poll' });

    const now = new Date(t.clock.now()).toISOString();
    expect((await get(body.payment_intent_id)).json()).toEqual({
      payment_intent_id: body.payment_intent_id,
      reservation_id: 'res_1',
      amount: 15000,
      currency: 'KRW',
      scenario: 'approve',
      status: 'PENDING',
      failure_code: null,
      refunded_amount: 0,
      delay_ms: 200,
      webhook_url: null,
      metadata: null,
      created_at: now,
      updated_at: now,
      decided_at: null,
      webhook: null,
    });
    expect(t.events.map((e) => e.type)).toEqual(['payment.created']);
  });

  it('answers next=webhook when a webhook_url is given and keeps url and metadata', async () => {
    const res = await create({ reservation_id: 'r', amount: 1, currency: 'USD', webhook_url: 'https://shop.example/hooks/pay?x=1', metadata: { order: 'o-1' } });
    expect(res.json()).toMatchObject({ status: 'PENDING', next: 'webhook' });
    const intent = (await get(res.json().payment_intent_id)).json();
    expect(intent).toMatchObject({ currency: 'USD', webhook_url: 'https://shop.example/hooks/pay?x=1', metadata: { order: 'o-1' } });
  });

  it('becomes APPROVED after DEFAULT_APPROVE_DELAY_MS and not before', async () => {
    const id = await createId();
    await t.clock.advance(199);
    expect((await get(id)).json().status).toBe('PENDING');
    await t.clock.advance(1);
    const intent = (await get(id)).json();
    expect(intent).toMatchObject({ status: 'APPROVED', failure_code: null, decided_at: new Date(t.clock.now()).toISOString(), updated_at: new Date(t.clock.now()).toISOString() });
    expect(t.events.map((e) => e.type)).toEqual(['payment.created', 'payment.approved']);
  });

  it.each([
    [{ scenario: 'fail' }, 100, 'FAILED', 'card_declined', 'fail'],
    [{ scenario: 'delay' }, 3000, 'APPROVED', null, 'delay'],
    [{ scenario: 'delay', delay_ms: 50 }, 50, 'APPROVED', null, 'delay'],
    [{ scenario: 'approve', delay_ms: 0 }, 0, 'APPROVED', null, 'approve'],
    [{ card: { number: '4000000000009995' } }, 100, 'FAILED', 'insufficient_funds', 'card'],
    [{ card: { number: '4242424242424242', cvv: '442' } }, 200, 'APPROVED', null, 'card'],
    [{ card: { cvv: '442' } }, 100, 'FAILED', 'DECLINE_2', 'card'],
    [{ card: { cvv: '1239' } }, 200, 'APPROVED', null, 'card'],
    [{ card: { number: '5555555555554444', exp_month: 12, exp_year: 2025 } }, 100, 'FAILED', 'expired_card', 'card'],
    [{ scenario: 'approve', card: { cvv: '442' } }, 200, 'APPROVED', null, 'approve'],
  ])('%j ends %s after its delay', async (extra, delay, status, failureCode, scenario) => {
    const id = await createId(extra);
    expect((await get(id)).json()).toMatchObject({ delay_ms: delay, scenario, status: 'PENDING' });
    await t.clock.advance(delay);
    expect((await get(id)).json()).toMatchObject({ status, failure_code: failureCode });
  });

  it('random outcomes repeat with the same RANDOM_SEED', async () => {
    async function outcomes(app: TestApp): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await app.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r${i}`, amount: 1, scenario: 'random' } });
        ids.push(res.json().payment_intent_id);
      }
      await app.clock.advance(1000);
      return Promise.all(ids.map(async (id) => (await app.app.inject({ url: `/v1/sim/intents/${id}` })).json().status));
    }
    const other = await buildTestApp({ RANDOM_SEED: '42' });
    const third = await buildTestApp({ RANDOM_SEED: '7' });
    try {
      const first = await outcomes(t);
      expect(first).toEqual(await outcomes(other));
      expect(first).not.toEqual(await outcomes(third));
      expect(new Set(first)).toEqual(new Set(['APPROVED', 'FAILED']));
    } finally {
      await other.app.close();
      await third.app.close();
    }
  });

  describe('validation: 400, with details, and nothing stored', () => {
    it.each([
      ['missing fields', {}, [{ in: 'body', field: '/reservation_id', rule: 'required' }, { in: 'body', field: '/amount', rule: 'required' }]],
      ['an unknown field', { reservation_id: 'r', amount: 1, amout: 2 }, [{ field: '/amout', rule: 'additionalProperties', message: 'is not a known field' }]],
      ['a field whose name is empty', { reservation_id: 'r', amount: 1, '': 2 }, [{ field: '/', rule: 'additionalProperties', message: 'is not a known field (its name is empty)' }]],
      ['an amount as a string', { reservation_id: 'r', amount: '100' }, [{ field: '/amount', rule: 'type' }]],
      ['a zero amount', { reservation_id: 'r', amount: 0 }, [{ field: '/amount', rule: 'minimum' }]],
      ['a fractional amount', { reservation_id: 'r', amount: 1.5 }, [{ field: '/amount', rule: 'type' }]],
      ['too large an amount', { reservation_id: 'r', amount: 100_000_000_001 }, [{ field: '/amount', rule: 'maximum' }]],
      ['an empty reservation_id', { reservation_id: '', amount: 1 }, [{ field: '/reservation_id', rule: 'minLength' }]],
      ['a long reservation_id', { reservation_id: 'x'.repeat(129), amount: 1 }, [{ field: '/reservation_id', rule: 'maxLength' }]],
      ['a reservation_id with a line break', { reservation_id: 'r\n1', amount: 1 }, [{ field: '/reservation_id', rule: 'pattern', message: 'must be free of control characters' }]],
      ['a reservation_id with a C1 control (NEL)', { reservation_id: 'r\u00851', amount: 1 }, [{ field: '/reservation_id', rule: 'pattern', message: 'must be free of control characters' }]],
      ['a lower-case currency', { reservation_id: 'r', amount: 1, currency: 'krw' }, [{ field: '/currency', rule: 'format' }]],
      ['a currency that is no ISO 4217 code', { reservation_id: 'r', amount: 1, currency: 'XYZ' }, [{ field: '/currency', rule: 'format' }]],
      ['an unknown scenario', { reservation_id: 'r', amount: 1, scenario: 'explode' }, [{ field: '/scenario', rule: 'enum' }]],
      ['a negative delay', { reservation_id: 'r', amount: 1, delay_ms: -1 }, [{ field: '/delay_ms', rule: 'minimum' }]],
      ['too long a delay', { reservation_id: 'r', amount: 1, delay_ms: 600_001 }, [{ field: '/delay_ms', rule: 'maximum' }]],
      ['a relative webhook_url', { reservation_id: 'r', amount: 1, webhook_url: '/hooks' }, [{ field: '/webhook_url' }]],
      ['an ftp webhook_url', { reservation_id: 'r', amount: 1, webhook_url: 'ftp://x.example/h' }, [{ field: '/webhook_url', rule: 'format' }]],
      // The URL parser would drop the CR LF and encode the space: the URL called would not be the one stored (a user test, 2026-12-07: both were taken).
      ['a webhook_url with CR LF', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1:9/a\r\nX-Inj: 1' }, [{ field: '/webhook_url', rule: 'format', message: 'must be an absolute http(s) URL' }]],
      ['a webhook_url with a space', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1:9/a b' }, [{ field: '/webhook_url', rule: 'format' }]],
      ['a webhook_url with a tab', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1:9/a\tb' }, [{ field: '/webhook_url', rule: 'format' }]],
      // The parser reads a backslash as / (another host: a review) and encodes other spaces.
      ['a webhook_url with a backslash', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1\\evil.example/x' }, [{ field: '/webhook_url', rule: 'format' }]],
      ['a webhook_url with a no-break space', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1:9/a\u00a0b' }, [{ field: '/webhook_url', rule: 'format' }]],
      ['a webhook_url with a line separator', { reservation_id: 'r', amount: 1, webhook_url: 'http://127.0.0.1:9/a\u2028b' }, [{ field: '/webhook_url', rule: 'format' }]],
      ['too long a webhook_url', { reservation_id: 'r', amount: 1, webhook_url: `https://x.example/${'a'.repeat(2040)}` }, [{ field: '/webhook_url', rule: 'maxLength' }]],
      ['21 metadata keys', { reservation_id: 'r', amount: 1, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, [{ field: '/metadata', rule: 'maxProperties' }]],
      ['a 501-character metadata value', { reservation_id: 'r', amount: 1, metadata: { k: 'v'.repeat(501) } }, [{ field: '/metadata/k', rule: 'maxLength' }]],
      ['a non-string metadata value', { reservation_id: 'r', amount: 1, metadata: { k: 1 } }, [{ field: '/metadata/k', rule: 'type' }]],
      ['an unknown card field', { reservation_id: 'r', amount: 1, card: { numbr: '4242424242424242' } }, [{ field: '/card/numbr', rule: 'additionalProperties' }]],
      ['a card number failing Luhn', { reservation_id: 'r', amount: 1, card: { number: '4242424242424241' } }, [{ field: '/card/number', rule: 'incorrect_number' }]],
      ['a card number with letters', { reservation_id: 'r', amount: 1, card: { number: '4242abcd42424242' } }, [{ field: '/card/number', rule: 'incorrect_number' }]],
      ['a two-digit cvv', { reservation_id: 'r', amount: 1, card: { cvv: '12' } }, [{ field: '/card/cvv', rule: 'invalid_cvc' }]],
      ['a card cvv with a scenario', { reservation_id: 'r', amount: 1, scenario: 'approve', card: { cvv: '1a3' } }, [{ field: '/card/cvv', rule: 'invalid_cvc' }]],
      ['an exp_month of 13', { reservation_id: 'r', amount: 1, card: { exp_month: 13, exp_year: 2030 } }, [{ field: '/card/exp_month', rule: 'maximum' }]],
    ])('rejects %s', async (_name, body, details) => {
      const res = await create(body);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toBe(JSON_TYPE);
      const { error } = res.json();
      expect(error.code).toBe('VALIDATION_FAILED');
      // Schema checks and the card's own checks alike say where the value was.
      expect(error.message).toBe(`body ${error.details[0].field}: ${error.details[0].message}`);
      expect(error.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(error.details).toEqual(expect.arrayContaining(details.map((d) => expect.objectContaining({ in: 'body', ...d }))));
      expect(await storedIntents(t)).toBe(0);
      expect(t.events).toEqual([]);
    });

    it('rejects malformed JSON with 400', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: '{"reservation_id": "r",' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Malformed JSON at position 23 (line 1, column 24): Unexpected end of input (expected a property name in double quotes)' });
      expect(await storedIntents(t)).toBe(0);
    });

    it('rejects a non-JSON body with 415', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'text/plain' }, payload: 'reservation_id=r' });
      expect(res.statusCode).toBe(415);
      expect(res.json()).toEqual({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json.', trace_id: expect.any(String) } });
    });

    it('rejects a body over BODY_LIMIT_BYTES with 413', async () => {
      const small = await buildTestApp({ BODY_LIMIT_BYTES: '1024' });
      try {
        const res = await small.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1, metadata: { k: 'v'.repeat(1100) } } });
        expect(res.statusCode).toBe(413);
        expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
        expect(await storedIntents(small)).toBe(0);
      } finally {
        await small.app.close();
      }
    });

    it.each([['x'.repeat(256)], ['has space'], ['tab\there'], ['ключ']])('rejects the Idempotency-Key %j', async (key) => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1 }, headers: { 'idempotency-key': key } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details).toEqual([expect.objectContaining({ in: 'headers', field: '/idempotency-key' })]);
      expect(await storedIntents(t)).toBe(0);
    });
  });
});

describe('GET /v1/sim/intents/:id', () => {
  it('answers 404 NOT_FOUND for an unknown id', async () => {
    const res = await get('pay_01JAAAAAAAAAAAAAAAAAAAAAAA');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'Payment intent pay_01JAAAAAAAAAAAAAAAAAAAAAAA does not exist.', trace_id: expect.any(String) } });
  });

  it('never shows the idempotency key', async () => {
    const res = await create({ reservation_id: 'r', amount: 5 }, { 'idempotency-key': 'secret-key-123' });
    const text = (await get(res.json().payment_intent_id)).body;
    expect(text).not.toContain('secret-key-123');
    expect(text).not.toMatch(/idempotency/i);
  });
});

describe('GET /v1/sim/intents', () => {
  it('lists newest first and pages with next_cursor without gaps or repeats', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(await createId({ reservation_id: i % 2 === 0 ? 'even' : 'odd' }));
      await t.clock.advance(1);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { statusCode: number; json(): { data: Array<{ payment_intent_id: string }>; next_cursor: string | null } } = await t.app.inject({ url: `/v1/sim/intents?limit=3${cursor ? `&cursor=${cursor}` : ''}` });
      expect(res.statusCode).toBe(200);
      const page = res.json();
      expect(page.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.data.map((i) => i.payment_intent_id));
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual([...ids].reverse());
  });

  it('filters by reservation_id and status and defaults to 50', async () => {
    const even = [await createId({ reservation_id: 'even' }), await createId({ reservation_id: 'even', scenario: 'fail' })];
    await createId({ reservation_id: 'odd' });
    await t.clock.advance(100);
    const byReservation = (await t.app.inject({ url: '/v1/sim/intents?reservation_id=even' })).json();
    expect(byReservation.data.map((i: { payment_intent_id: string }) => i.payment_intent_id)).toEqual([...even].reverse());
    expect(byReservation.next_cursor).toBeNull();
    const failed = (await t.app.inject({ url: '/v1/sim/intents?status=FAILED' })).json();
    expect(failed.data).toEqual([expect.objectContaining({ payment_intent_id: even[1], status: 'FAILED', failure_code: 'card_declined' })]);
    for (let i = 0; i < 52; i++) await createId();
    expect((await t.app.inject({ url: '/v1/sim/intents' })).json().data).toHaveLength(50);
  });

  it.each(['limit=0', 'limit=501', 'limit=abc', 'status=DONE', 'cursor=bad%20cursor', 'foo=1'])('rejects %s with 400', async (query) => {
    const res = await t.app.inject({ url: `/v1/sim/intents?${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
    expect(res.json().error.details[0].in).toBe('querystring');
  });

  it('names a query parameter whose name is empty as such', async () => {
    const res = await t.app.inject({ url: '/v1/sim/intents?=1' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'querystring /: is not a known field (its name is empty)',
      details: [{ in: 'querystring', field: '/', rule: 'additionalProperties', message: 'is not a known field (its name is empty)' }],
    });
  });
});

describe('POST /v1/sim/intents/:id/cancel', () => {
  it('cancels a PENDING intent; the decision never fires', async () => {
    const id = await createId();
    await t.clock.advance(50);
    const res = await post(`/v1/sim/intents/${id}/cancel`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ payment_intent_id: id, status: 'CANCELLED', decided_at: null, updated_at: new Date(t.clock.now()).toISOString() });
    await t.clock.advance(10_000);
    expect((await get(id)).json().status).toBe('CANCELLED');
    expect(t.events.map((e) => e.type)).toEqual(['payment.created', 'payment.cancelled']);
  });

  it('answers 409 INVALID_STATE once final, 404 when unknown, 400 for a body with fields', async () => {
    const id = await createId();
    await t.clock.advance(200);
    const res = await post(`/v1/sim/intents/${id}/cancel`, {});
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'INVALID_STATE', message: `Payment intent ${id} is APPROVED; only a PENDING intent can be cancelled.` });
    expect((await get(id)).json().status).toBe('APPROVED');
    expect((await post('/v1/sim/intents/pay_nope/cancel')).statusCode).toBe(404);
    expect((await post(`/v1/sim/intents/${id}/cancel`, { reason: 'x' })).statusCode).toBe(400);
  });
});

describe('POST /v1/sim/intents/:id/refund', () => {
  it('a cancel’s and a refund’s backstop jobs (a shared store’s) are told to the scheduler under the key the store gave them, which their cancel then uses (a review: a refund’s was told under the intent id, so its trace was never forgotten)', async () => {
    // A scheduler that looks for other replicas' work (the test apps' on Redis do not, by default).
    await t.app.close();
    t = await buildTestApp({ SCHEDULER_POLL_MS: '60000' });
    const { scheduler } = t.app.core;
    const told: string[] = [];
    const cancelled: string[] = [];
    const scheduled = scheduler.scheduled.bind(scheduler);
    const cancel = scheduler.cancel.bind(scheduler);
    scheduler.scheduled = (job) => {
      if (job.kind !== 'intent.decide') told.push(`${job.kind} ${job.key}`);
      scheduled(job);
    };
    scheduler.cancel = (kind, key) => {
      if (kind !== 'intent.decide') cancelled.push(`${kind} ${key}`);
      return cancel(kind, key);
    };
    const refunded = await createId({ amount: 10000, scenario: 'approve' });
    const pending = await createId({ amount: 10000, scenario: 'delay' });
    await t.clock.advance(200);
    expect((await post(`/v1/sim/intents/${refunded}/refund`, { amount: 4000 })).statusCode).toBe(200);
    expect((await post(`/v1/sim/intents/${pending}/cancel`)).statusCode).toBe(200);
    // Only a store shared by replicas backs the events with jobs.
    expect(told.length).toBe(process.env.PAYSIM_TEST_STORE === 'redis' ? 2 : 0);
    expect(cancelled).toEqual(told);
  });

  it('refunds partly, then the rest; more than left is 422 and changes nothing', async () => {
    const id = await createId({ amount: 10000 });
    await t.clock.advance(200);
    const partial = await post(`/v1/sim/intents/${id}/refund`, { amount: 4000 });
    expect(partial.statusCode).toBe(200);
    expect(partial.json()).toMatchObject({ status: 'PARTIALLY_REFUNDED', refunded_amount: 4000 });

    const tooMuch = await post(`/v1/sim/intents/${id}/refund`, { amount: 6001 });
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json().error).toMatchObject({ code: 'REFUND_EXCEEDS_AMOUNT', message: `A refund of 6001 exceeds the 6000 left to refund on ${id}.` });
    expect((await get(id)).json()).toMatchObject({ status: 'PARTIALLY_REFUNDED', refunded_amount: 4000 });

    const rest = await post(`/v1/sim/intents/${id}/refund`);
    expect(rest.json()).toMatchObject({ status: 'REFUNDED', refunded_amount: 10000 });
    expect((await post(`/v1/sim/intents/${id}/refund`)).json().error.code).toBe('INVALID_STATE');
    const refunds = t.events.filter((e) => e.type === 'payment.refunded');
    expect(refunds.map((e) => [e.refundAmount, e.intent.refundedAmount, e.intent.status])).toEqual([
      [4000, 4000, 'PARTIALLY_REFUNDED'],
      [6000, 10000, 'REFUNDED'],
    ]);
  });

  it('refuses PENDING and FAILED intents with 409 and a zero amount with 400', async () => {
    const pending = await createId();
    expect((await post(`/v1/sim/intents/${pending}/refund`)).statusCode).toBe(409);
    const failed = await createId({ scenario: 'fail' });
    await t.clock.advance(100);
    expect((await post(`/v1/sim/intents/${failed}/refund`)).json().error.code).toBe('INVALID_STATE');
    expect((await post(`/v1/sim/intents/${pending}/refund`, { amount: 0 })).statusCode).toBe(400);
  });
});

describe('Idempotency-Key', () => {
  const body = { reservation_id: 'res_idem', amount: 700, metadata: { a: '1', b: '2' } };
  const reordered = { metadata: { b: '2', a: '1' }, amount: 700, reservation_id: 'res_idem' };

  it('replays the stored response for the same key and an equivalent body, with no second intent or event', async () => {
    const first = await create(body, { 'idempotency-key': 'k-1' });
    const again = await create(reordered, { 'idempotency-key': 'k-1' });
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toBe(JSON_TYPE);
    expect(await storedIntents(t)).toBe(1);
    expect(t.events.map((e) => e.type)).toEqual(['payment.created']);
  });

  it('answers 422 IDEMPOTENCY_KEY_MISMATCH for the same key with another body', async () => {
    await create(body, { 'idempotency-key': 'k-2' });
    const res = await create({ ...body, amount: 701 }, { 'idempotency-key': 'k-2' });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: 'IDEMPOTENCY_KEY_MISMATCH' });
    expect(await storedIntents(t)).toBe(1);
  });

  it('answers 409 IDEMPOTENCY_KEY_IN_USE while its twin is still running', async () => {
    const { fingerprint } = await import('../../src/core/idempotency.ts');
    // The fingerprint is taken after validation, so defaults (currency) are part of it.
    await t.app.stores.idempotency.begin('POST /v1/sim/intent', 'k-3', fingerprint({ ...body, currency: 'KRW' }), t.clock.now());
    const res = await create(body, { 'idempotency-key': 'k-3' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    // When to ask again for the twin's answer (a user test: a client had no hint).
    expect(res.headers['retry-after']).toBe('1');
    expect(await storedIntents(t)).toBe(0);
  });

  it('does not store requests that fail validation, and scopes keys per route', async () => {
    expect((await create({ reservation_id: 'r' }, { 'idempotency-key': 'k-4' })).statusCode).toBe(400);
    const ok = await create(body, { 'idempotency-key': 'k-4' });
    expect(ok.statusCode).toBe(200);
    await t.clock.advance(200);
    const refund = await post(`/v1/sim/intents/${ok.json().payment_intent_id}/refund`, {}, { 'idempotency-key': 'k-4' });
    expect(refund.statusCode).toBe(200);
    expect(refund.headers['idempotent-replayed']).toBeUndefined();
  });

  it('replays stored errors too (a 409 from cancel), and expires keys after IDEMPOTENCY_TTL_MS', async () => {
    const short = await buildTestApp({ IDEMPOTENCY_TTL_MS: '1000' });
    try {
      const first = await short.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body, headers: { 'idempotency-key': 'k-5' } });
      await short.clock.advance(999);
      const replay = await short.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body, headers: { 'idempotency-key': 'k-5' } });
      expect(replay.body).toBe(first.body);
      await short.clock.advance(1);
      const fresh = await short.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body, headers: { 'idempotency-key': 'k-5' } });
      expect(fresh.json().payment_intent_id).not.toBe(first.json().payment_intent_id);
      expect(fresh.headers['idempotent-replayed']).toBeUndefined();

      const id = first.json().payment_intent_id;
      await short.clock.advance(200);
      const conflict = await short.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel`, headers: { 'idempotency-key': 'c-1' } });
      expect(conflict.statusCode).toBe(409);
      const conflictAgain = await short.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel`, headers: { 'idempotency-key': 'c-1' } });
      expect(conflictAgain.statusCode).toBe(409);
      expect(conflictAgain.headers['idempotent-replayed']).toBe('true');
      expect(conflictAgain.body).toBe(conflict.body);
    } finally {
      await short.app.close();
    }
  });

  it('without a key, identical requests create distinct intents', async () => {
    const a = await create(body);
    const b = await create(body);
    expect(a.json().payment_intent_id).not.toBe(b.json().payment_intent_id);
    expect(await storedIntents(t)).toBe(2);
  });
});

describe('store bounds', () => {
  it('RANDOM_SEED: an intent refused with 503 STORE_FULL draws nothing, so the random intents after it end as they would without it (rev74c: it shifted them)', async () => {
    const outcomes = async (refusals: boolean): Promise<string[]> => {
      const small = await buildTestApp({ STORE_MAX_INTENTS: '2', RANDOM_SEED: '7', RANDOM_APPROVE_RATE: '0.5' });
      try {
        const out: string[] = [];
        for (let round = 0; round < 6; round++) {
          const ids: string[] = [];
          for (let i = 0; i < 2; i++) {
            const res = await small.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r${round}-${i}`, amount: 100, scenario: 'random' } });
            ids.push(res.json().payment_intent_id as string);
          }
          if (refusals) expect((await small.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r${round}-full`, amount: 100, scenario: 'random' } })).statusCode).toBe(503);
          await small.clock.advance(1_000);
          for (const id of ids) out.push((await small.app.inject({ url: `/v1/sim/intents/${id}` })).json().status as string);
        }
        return out;
      } finally {
        await small.app.close();
      }
    };
    const plain = await outcomes(false);
    expect(new Set(plain)).toEqual(new Set(['APPROVED', 'FAILED']));
    expect(await outcomes(true)).toEqual(plain);
  });

  it('evicts the oldest final intent beyond STORE_MAX_INTENTS and intents older than INTENT_TTL_MS', async () => {
    const small = await buildTestApp({ STORE_MAX_INTENTS: '3', INTENT_TTL_MS: '60000' });
    try {
      const make = async () => (await small.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1 } })).json().payment_intent_id as string;
      const [a, b, c] = [await make(), await make(), await make()];
      await small.clock.advance(200);
      const d = await make();
      const status = async (id: string) => (await small.app.inject({ url: `/v1/sim/intents/${id}` })).statusCode;
      expect([await status(a), await status(b), await status(c), await status(d)]).toEqual([404, 200, 200, 200]);
      await small.clock.advance(60_000);
      await make();
      expect([await status(b), await status(c), await status(d)]).toEqual([404, 404, 404]);
      expect(await storedIntents(small)).toBe(1);
    } finally {
      await small.app.close();
    }
  });
});

describe('operations', () => {
  it('GET /healthz and /readyz', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
    t.app.lifecycle.shuttingDown = true;
    const closing = await t.app.inject({ url: '/readyz' });
    expect(closing.statusCode).toBe(503);
    expect(closing.json()).toEqual({ status: 'shutting_down' });
  });

  it('/readyz once the server closes (new requests refused): still 503 {"status":"shutting_down"}, not a 500 (a balancer\'s check in the close window saw one)', async () => {
    const own = await buildTestApp();
    try {
      own.app.lifecycle.shuttingDown = true;
      own.app.lifecycle.closing = true;
      const readyz = await own.app.inject({ url: '/readyz' });
      expect([readyz.statusCode, readyz.headers.connection, readyz.json()]).toEqual([503, 'close', { status: 'shutting_down' }]);
      // Any other request: the dialect's 503.
      const other = await own.app.inject({ url: '/v1/sim/intents' });
      expect([other.statusCode, other.headers.connection, other.json().error.code]).toEqual([503, 'close', 'SHUTTING_DOWN']);
    } finally {
      await own.app.close();
    }
  });

  it('answers unknown routes with the native 404 envelope', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/sim/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No route DELETE /v1/sim/nothing.', trace_id: expect.any(String) } });
  });

  it('a generated request id (a UUID) gives the trace id its 32 hex digits; a given one leaves the trace id random', async () => {
    const generated = await t.app.inject({ method: 'DELETE', url: '/v1/sim/nothing' });
    const requestId = generated.headers['x-request-id'] as string;
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(generated.json().error.trace_id).toBe(requestId.split('-').join(''));
    const given = await t.app.inject({ method: 'DELETE', url: '/v1/sim/nothing', headers: { 'x-request-id': 'abc-123' } });
    expect(given.json().error.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(given.json().error.trace_id).not.toBe(generated.json().error.trace_id);
  });

  it('echoes a sane X-Request-Id and replaces one that is not', async () => {
    const given = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const bad = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id\nwith newline' } });
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('puts the traceparent trace id into error bodies', async () => {
    const res = await t.app.inject({ url: '/v1/sim/intents/pay_x', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    expect(res.json().error.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it.each([
    ['a later version with a field more', 'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['one space around it', ' 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['an all-zero parent id', '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1-0000000000000000-01', undefined],
    ['version ff', 'ff-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1-00f067aa0ba902b7-01', undefined],
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', undefined],
    ['version 00 with a field more', '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1-00f067aa0ba902b7-01-x', undefined],
    ['upper-case hex', '00-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1-00f067aa0ba902b7-01', undefined],
  ])('a traceparent with %s gives its trace id as OpenTelemetry takes it, else a new one (2026-12-07, a user test: one the propagator refused still named the log line’s trace)', async (_what, traceparent, traceId) => {
    const res = await t.app.inject({ url: '/v1/sim/intents/pay_x', headers: { traceparent } });
    const logged = res.json().error.trace_id as string;
    if (traceId !== undefined) expect(logged).toBe(traceId);
    else expect(logged).toMatch(/^(?!a{31}1$)(?!0{32}$)[0-9a-f]{32}$/);
  });

  it('exposes the metrics with route patterns, never raw paths', async () => {
    const id = await createId();
    await get(id);
    await create({ reservation_id: 'r', amount: 1 }, { 'idempotency-key': 'm' });
    await create({ reservation_id: 'r', amount: 1 }, { 'idempotency-key': 'm' });
    await create({ reservation_id: 'r', amount: 2 }, { 'idempotency-key': 'm' });
    await create({ reservation_id: 'r', amount: 1, scenario: 'fail' });
    await create({});
    await t.app.inject({ url: '/nowhere' });
    await t.app.inject({ url: '/v1/sim/intent' });
    await t.clock.advance(200);
    const res = await t.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toContain('http_requests_total{method="POST",route="/v1/sim/intent",status_code="200"} 4');
    expect(text).toContain('http_requests_total{method="POST",route="/v1/sim/intent",status_code="400"} 1');
    expect(text).toContain('http_requests_total{method="POST",route="/v1/sim/intent",status_code="422"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="/v1/sim/intents/:id",status_code="200"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status_code="404"} 1');
    // A known path with another method matches no route either (README, Metrics).
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status_code="405"} 1');
    expect(text).not.toContain(id);
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/sim/intent",status_code="200"}');
    expect(text).toContain('payment_intents_created_total{scenario="approve"} 2');
    expect(text).toContain('payment_intents_created_total{scenario="fail"} 1');
    expect(text).toContain('payment_intents_finalized_total{status="APPROVED"} 2');
    expect(text).toContain('payment_intents_finalized_total{status="FAILED"} 1');
    expect(text).toContain('idempotency_replays_total 1');
    expect(text).toContain('idempotency_conflicts_total 1');
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('sheds no load for event-loop delay in its first START_GRACE_MS once ready (the samples then can hold the start\'s own stall), and does after', { timeout: 15_000 }, async () => {
    // Any delay sampled above a millisecond sheds: a stall certainly does.
    const loaded = await buildTestApp({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1' });
    // In the root app and in a namespace's (which sheds by the root's samples).
    const create = async (i: number, namespace?: string) =>
      (await loaded.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: namespace === undefined ? {} : { 'x-sim-namespace': namespace }, payload: { reservation_id: `r-stall-${i}`, amount: 1 } })).statusCode;
    /** Blocks the event loop for longer than a sample (1 s): under-pressure's sample, overdue, comes next and holds it. */
    const stall = async () => {
      const until = Date.now() + 1_050;
      while (Date.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 20));
    };
    try {
      await loaded.app.ready();
      // The namespace's app is built before the stall (its build is not what is measured).
      expect(await create(0, 'stall')).toBe(200);
      await stall();
      // Under START_GRACE_MS after ready (a machine too slow to get here in time fails here, not below): served.
      const graceEndsAt = startGraceEndsAt(loaded.app) as number;
      expect(graceEndsAt - Date.now()).toBeGreaterThan(0);
      expect([await create(1), await create(2, 'stall')]).toEqual([200, 200]);
      await new Promise((resolve) => setTimeout(resolve, START_GRACE_MS));
      await stall();
      // The sample that holds the stall comes next, or a second later: when under-pressure's timer runs
      // before the delay monitor's (both overdue after the stall), that sample misses the stall and the
      // next one has it (a CI run saw the first create answered 200). Not a bound on time: two samples.
      let shed = await create(4, 'stall');
      for (let tries = 0; shed !== 503 && tries < 50; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        shed = await create(4, 'stall');
      }
      expect(shed).toBe(503);
      const later = await loaded.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-stall-3', amount: 1 } });
      expect([later.statusCode, later.json().error.code, later.json().error.message]).toEqual([503, 'OVERLOADED', expect.stringContaining('eventLoopDelay')]);
    } finally {
      await loaded.app.close();
    }
  });

  it('in its first START_GRACE_MS a heap over its bound still sheds, the event-loop delay over its own notwithstanding', async () => {
    const loaded = await buildTestApp({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1', OVERLOAD_MAX_HEAP_USED_BYTES: '1' });
    try {
      await loaded.app.ready();
      const until = Date.now() + 1_050;
      while (Date.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const res = await loaded.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-heap', amount: 1 } });
      expect([res.statusCode, res.json().error.code, res.json().error.message]).toEqual([503, 'OVERLOADED', 'The simulator is overloaded (heapUsedBytes); retry after 1 s.']);
    } finally {
      await loaded.app.close();
    }
  });

  it('sheds load with 503 OVERLOADED and Retry-After, but keeps answering health and metrics', async () => {
    const loaded = await buildTestApp({ OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_RETRY_AFTER_S: '7' });
    try {
      let res = await loaded.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1 } });
      // under-pressure samples memory on its own timer: wait for the first sample.
      for (let i = 0; i < 60 && res.statusCode !== 503; i++) {
        await new Promise((r) => setTimeout(r, 50));
        res = await loaded.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1 } });
      }
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.json()).toEqual({ error: { code: 'OVERLOADED', message: expect.stringContaining('overloaded'), trace_id: expect.any(String) } });
      expect((await loaded.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect((await loaded.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      expect((await loaded.app.inject({ url: '/metrics' })).statusCode).toBe(200);
    } finally {
      await loaded.app.close();
    }
  });
});
