import { describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { DEFAULT_REDIS_KEY_PREFIX } from '../../src/adapters/redis/connection.ts';
import { onRedis } from '../helpers/app.ts';
import { SignerRegistry } from '../../src/webhooks/signers/registry.ts';
import { legacySigner } from '../../src/webhooks/signers/legacy.ts';
import { standardSigner } from '../../src/webhooks/signers/standard.ts';
import { stripeSigner } from '../../src/webhooks/signers/stripe.ts';
import { paymentV2Signer } from '../../src/dialects/payment-server-v2/webhook-payload.ts';
import type { ReceivedRequest } from '../helpers/receiver.ts';
import { AnswerLog, createEnvironment, dialectOf, firstDifference, pathSeen, runSequence, shapeProblem, Stats, webhookText, type Observed } from './harness.ts';
import { LocalUrl, PoolRef, type Step, type Value } from './values.ts';
import fc from 'fast-check';
import { cutAt, unknownRouteArb, type GeneratorOptions } from './generators.ts';
import { assertLocalOnly, EgressError, resolveDraft, World } from './resolve.ts';
import { formatReport, runFuzz } from './run.ts';

/**
 * The property-based fuzzer in the test suite: a seeded run of FUZZ_CI_REQUESTS (default 10,000; 5,000 on Redis)
 * generated requests over every operation of the OpenAPI document, against the whole app.
 * Properties (test/fuzz/harness.ts): never a 5xx; every error is JSON in the shape of the dialect
 * that owns the path; a 4xx changes no state; nothing logged at error level; webhooks only ever
 * go to 127.0.0.1. On Redis (`make test-redis`) each sequence's app is on the run's redis-server,
 * and the sequence is run again on memory: every answer, and every webhook the receiver got, must be the same. `make fuzz` runs the
 * same at 200,000 requests with a fresh seed (FUZZ_STORE=redis: on Redis).
 * @see issue 8 "Fuzzing in the test suite"
 */

const SEED = 20_261_130;
// On Redis half as many (each request there costs several times the CPU, and the sequence runs
// again on memory): the first half of the memory run's sequences, every answer compared.
const REQUESTS = Number(process.env.FUZZ_CI_REQUESTS ?? (onRedis ? 5_000 : 10_000));

describe('the checks the fuzzer applies', () => {
  it('a body cut short never cuts a URL (the runner refuses any host but 127.0.0.1, and "http://127.0." is one)', () => {
    const json = JSON.stringify({ amount: 1000, webhook_url: 'http://127.0.0.1:1/ok', callback_url: 'https://127.0.0.1:2/cb' });
    const request = (payload: string) => ({ method: 'POST', url: '/v1/sim/intent', headers: {}, payload });
    for (let length = 1; length <= json.length; length++) expect(() => assertLocalOnly(request(cutAt(json, length))), `cut at ${length}`).not.toThrow();
    expect([json.slice(0, 43), cutAt(json, 43)]).toEqual(['{"amount":1000,"webhook_url":"http://127.0.', '{"amount":1000,"webhook_url":"']);
    expect(() => assertLocalOnly(request(json.slice(0, 43)))).toThrow(EgressError);
  });

  it('an unknown route is one path on 127.0.0.1 whatever its generated segments hold (one such as `\\%7#`, sent as written, named a host: "the request could not be run")', () => {
    const options = { model: { operations: [] }, bodyLimit: 1024, users: ['user_a'], tokens: { valid: [], invalid: [] }, sequenceLength: 1 } as unknown as GeneratorOptions;
    const world = new World({ receiver: 1, closed: 2 });
    const urls = fc.sample(unknownRouteArb(options), { seed: 5870, numRuns: 20_000 }).map((draft) => resolveDraft(draft, world, 1024).url);
    for (const url of urls) expect(new URL(url, 'http://127.0.0.1').host, url).toBe('127.0.0.1');
    // The broken escapes and the traversal are still sent as written.
    expect(urls.some((url) => url.includes('/%E0%A4%A'))).toBe(true);
    expect(urls.some((url) => url.includes('/../'))).toBe(true);
  });

  it('knows which dialect owns a path, as the router sees it', () => {
    expect(dialectOf(pathSeen('/v1/sim/intents/x?y=1'))).toBe('native');
    expect(dialectOf(pathSeen('/bookings/my'))).toBe('bookings');
    expect(dialectOf(pathSeen('/payment%73/execute'))).toBe('bookings');
    expect(pathSeen('//x/../api/v1/payments/methods?pad=1')).toBe('//api/v1/payments/methods');
    expect(dialectOf(pathSeen('//x/../api/v1/payments/methods'))).toBe('native');
    expect(dialectOf(pathSeen('/api/%761/payments/process'))).toBe('payment-service');
    expect(dialectOf(pathSeen('/api/v2/payments/pay_tx_1'))).toBe('payment-server-v2');
    expect(dialectOf(pathSeen('/api/%762/pending-payments'))).toBe('payment-server-v2');
    expect(dialectOf(pathSeen('/api/v1/orders/ord_x'))).toBe('fluxpay');
    expect(dialectOf(pathSeen('/api/v1/payments'))).toBe('fluxpay');
    expect(dialectOf(pathSeen('/api/v1/payments/confirm'))).toBe('fluxpay');
    expect(dialectOf(pathSeen('/api/v1/payments/pk_x'))).toBe('fluxpay');
    expect(dialectOf(pathSeen('/api/v1/payments/nope'))).toBe('payment-service');
    expect(dialectOf(pathSeen('/api/v2x'))).toBe('native');
    expect(dialectOf(pathSeen('/bookingsX'))).toBe('native');
    expect(dialectOf(pathSeen('/nope'))).toBe('native');
  });

  it('accepts each dialect’s error shape and refuses the others', () => {
    const nativeError = { error: { code: 'NOT_FOUND', message: 'No route GET /x.', trace_id: '0123456789abcdef0123456789abcdef' } };
    const bookingsError = { error: 'No route GET /bookings/x.', code: 'NOT_FOUND' };
    const paymentServiceError = { error: '예약을 찾을 수 없습니다.' };
    const fastifyDefault = { statusCode: 400, error: 'Bad Request', message: 'Unexpected token' };
    expect(shapeProblem('native', nativeError)).toBeUndefined();
    expect(shapeProblem('bookings', bookingsError)).toBeUndefined();
    expect(shapeProblem('payment-service', paymentServiceError)).toBeUndefined();
    expect(shapeProblem('payment-service', { error: '요청 본문의 JSON 형식이 올바르지 않습니다 (1행 2열, 위치 1).' })).toBeUndefined();
    expect(shapeProblem('native', bookingsError)).toBe('native envelope: unexpected code');
    expect(shapeProblem('bookings', nativeError)).toBe('bookings shape: missing code');
    expect(shapeProblem('payment-service', { error: 'Not Found' })).toBe('payment-service shape: not one of the service\'s messages: "Not Found"');
    for (const dialect of ['native', 'bookings', 'payment-service', 'payment-server-v2', 'fluxpay'] as const) expect(shapeProblem(dialect, fastifyDefault)).toBeDefined();
    expect(shapeProblem('fluxpay', { isSuccess: false, code: 'PAY_001', message: 'Insufficient credit balance: 0, needed 10.', result: null }, 409)).toBeUndefined();
    expect(shapeProblem('fluxpay', { isSuccess: false, code: 'COMMON_400', message: 'x', result: { errors: [{ field: 'amount', reason: 'must be >= 1' }] } }, 400)).toBeUndefined();
    expect(shapeProblem('fluxpay', { isSuccess: false, code: 'COMMON_400', message: 'x', result: null }, 400)).toBe('FluxPay wrapper: a COMMON_400 without result.errors');
    expect(shapeProblem('fluxpay', { isSuccess: false, code: 'COMMON_404', message: 'x', result: null }, 405)).toBe('FluxPay wrapper: COMMON_404 with status 405');
    expect(shapeProblem('native', { error: { ...nativeError.error, message: 'boom\n    at handler (/app/src/x.ts:1:2)' } })).toBe('native envelope: the message shows internals');
  });

  it('knows FastAPI’s shape: a detail string, or for a 422 a list of pydantic problems', () => {
    const issue = { type: 'greater_than_equal', loc: ['body', 'amount'], msg: 'Input should be greater than or equal to 1', input: 0, ctx: { ge: 1 } };
    expect(shapeProblem('payment-server-v2', { detail: 'Not Found' }, 404)).toBeUndefined();
    expect(shapeProblem('payment-server-v2', { detail: [issue, { type: 'json_invalid', loc: ['body', 3], msg: 'JSON decode error', input: {} }] }, 422)).toBeUndefined();
    expect(shapeProblem('payment-server-v2', { detail: 'Bad' }, 422)).toBe('FastAPI shape: a 422 whose detail is not a list');
    expect(shapeProblem('payment-server-v2', { detail: [issue] }, 400)).toBe('FastAPI shape: a 400 with a list of validation problems');
    expect(shapeProblem('payment-server-v2', { detail: [] }, 422)).toBe('FastAPI shape: detail is neither a string nor a non-empty list');
    expect(shapeProblem('payment-server-v2', { detail: [{ ...issue, loc: ['cookie', 'a'] }] }, 422)).toBe('FastAPI shape: bad loc ["cookie","a"]');
    expect(shapeProblem('payment-server-v2', { detail: [{ ...issue, url: 'https://errors.pydantic.dev' }] }, 422)).toBe('FastAPI shape: item unexpected url');
    expect(shapeProblem('payment-server-v2', { detail: 'x', code: 'NOT_FOUND' }, 404)).toBe('FastAPI shape: unexpected code');
    expect(shapeProblem('payment-server-v2', { error: { code: 'NOT_FOUND', message: 'x', trace_id: '0'.repeat(32) } }, 404)).toBe('FastAPI shape: missing detail');
  });
});

describe('the comparison of a sequence on Redis with the same on memory', () => {
  const observed = (step: number, url: string, status: number, body: string, method = 'GET', headers: Record<string, string> = {}, webhooks: string[] = []): Observed => ({
    step,
    route: 'GET /v1/sim/intents/{id}',
    tags: [],
    request: { method, url, headers: {}, payload: undefined } as unknown as Observed['request'],
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', date: new Date().toUTCString(), 'x-request-id': crypto.randomUUID(), ...headers },
    body,
    webhooks,
  });
  const logOf = (...answers: Observed[]): AnswerLog => {
    const log = new AnswerLog();
    for (const answer of answers) log.observe(answer);
    return log;
  };
  const idA = 'pay_01KF0RDQG00RCS0RCCA3GRD5WA';
  const idB = 'pay_01KF0RDQG0AD1329DM19433GBH';
  const other = 'bk_01KF0RDQG0XV86M9N14GERBY2G';

  it('takes answers alike when only their ids (named in order of first use) and trace ids differ', () => {
    const memory = logOf(observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${idA}"}`, 'POST'), observed(1, `/v1/sim/intents/${idA}`, 404, '{"error":{"code":"NOT_FOUND","message":"x","trace_id":"0123456789abcdef0123456789abcdef"}}'));
    const redis = logOf(observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${idB}"}`, 'POST'), observed(1, `/v1/sim/intents/${idB}`, 404, '{"error":{"code":"NOT_FOUND","message":"x","trace_id":"fedcba9876543210fedcba9876543210"}}'));
    expect(firstDifference(memory, redis)).toBeUndefined();
  });

  it('fails at the first answer that differs: its status, its body, or an id that is another one', () => {
    const memory = logOf(observed(0, '/a', 200, `{"id":"${idA}"}`), observed(1, `/b/${idA}`, 200, '{"status":"APPROVED"}'));
    expect(firstDifference(memory, logOf(observed(0, '/a', 200, `{"id":"${idB}"}`), observed(1, `/b/${idB}`, 404, '{"status":"APPROVED"}')))).toMatchObject({ step: 1, status: 404, request: { url: `/b/${idB}` } });
    expect(firstDifference(memory, logOf(observed(0, '/a', 200, `{"id":"${idB}"}`), observed(1, `/b/${idB}`, 200, '{"status":"DECLINED"}')))?.violations[0]).toContain('memory and Redis answered differently');
    // The request refers to the second id met, not the first: not the same request.
    expect(firstDifference(memory, logOf(observed(0, '/a', 200, `{"id":"${idB}"}`), observed(1, `/b/${other}`, 200, '{"status":"APPROVED"}')))?.step).toBe(1);
    // The same random part but another time part (the clock the id was made at): another id.
    expect(firstDifference(memory, logOf(observed(0, '/a', 200, `{"id":"pay_01KF0RDQG10RCS0RCCA3GRD5WA"}`), observed(1, '/b/pay_01KF0RDQG10RCS0RCCA3GRD5WA', 200, '{"status":"APPROVED"}')))?.step).toBe(0);
    // A header that differs (a cursor, say); `date`, `x-request-id` and `content-length` are not compared.
    const paged = (cursor: string) => logOf(observed(0, '/a', 200, `{"id":"${idA}"}`), observed(1, `/b/${idA}`, 200, '{"status":"APPROVED"}', 'GET', { 'x-next-cursor': cursor }));
    expect(firstDifference(paged('pay_01KF0RDQG00RCS0RCCA3GRD5WA'), paged('pay_01KF0RDQG00RCS0RCCA3GRD5WA'))).toBeUndefined();
    expect(firstDifference(paged('pay_01KF0RDQG00RCS0RCCA3GRD5WA'), paged('bk_01KF0RDQG0XV86M9N14GERBY2G'))?.step).toBe(1);
    // One run stopped sooner.
    expect(firstDifference(memory, logOf(observed(0, '/a', 200, `{"id":"${idB}"}`)))?.step).toBe(1);
  });

  describe('the webhooks each step brought', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const signers = new SignerRegistry();
    for (const signer of [standardSigner([secret]), legacySigner([secret]), stripeSigner([secret]), paymentV2Signer('v2-secret', undefined)]) signers.register(signer);
    const at = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
    /** A webhook as the receiver gets it, signed with `schemes` (its event id and intent id in the body). */
    const received = (schemes: string[], eventId: string, intentId: string, path = '/hook'): ReceivedRequest => {
      const body = JSON.stringify({ id: eventId, type: 'payment_intent.approved', data: { payment_intent_id: intentId } });
      return { index: 0, method: 'POST', url: path, headers: { host: '127.0.0.1:4000', 'content-type': 'application/json', 'content-length': String(body.length), ...signers.headers(schemes, eventId, body, at) }, body, receivedAt: 0 };
    };
    const evtA = 'evt_01KF0RDQG0AAAAAAAAAAAAAAAA';
    const evtB = 'evt_01KF0RDQG0BBBBBBBBBBBBBBBB';

    it('writes each scheme’s signature (verified) when the app’s signers compute it again from what the receiver got', () => {
      for (const schemes of [['standard'], ['legacy'], ['stripe'], ['payment-v2'], ['standard', 'legacy', 'stripe']]) {
        const text = webhookText(received(schemes, evtA, idA), signers);
        const signatureHeaders = text.split('\n').filter((line) => /^[a-z-]*signature: /.test(line));
        expect(signatureHeaders.length, schemes.join()).toBe(schemes.length);
        for (const line of signatureHeaders) expect(line, schemes.join()).toMatch(/: \(verified\)$/);
        expect(text, schemes.join()).not.toContain('content-length');
      }
      expect(webhookText(received(['standard'], evtA, idA), signers)).toBe(
        ['POST /hook', 'content-type: application/json', 'host: 127.0.0.1:4000', `webhook-id: ${evtA}`, 'webhook-signature: (verified)', 'webhook-timestamp: 1767268800', JSON.stringify({ id: evtA, type: 'payment_intent.approved', data: { payment_intent_id: idA } })].join('\n'),
      );
      // A body changed after signing, or a signature of another secret: shown as received.
      const tampered = received(['standard'], evtA, idA);
      tampered.body = tampered.body.replace('approved', 'declined');
      expect(webhookText(tampered, signers)).toContain(`webhook-signature: ${String(tampered.headers['webhook-signature'])}`);
      const otherSecret = new SignerRegistry();
      otherSecret.register(standardSigner(['another secret']));
      const foreign = received(['standard'], evtA, idA);
      Object.assign(foreign.headers, otherSecret.headers(['standard'], evtA, foreign.body, at));
      expect(webhookText(foreign, signers)).not.toContain('(verified)');
    });

    it('takes a step’s webhooks alike in any order, with their ids named in the order of their sorted texts', () => {
      const create = (id: string) => observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${id}"}`, 'POST');
      const hooks = (intentId: string, ...events: string[]) => events.map((e, i) => webhookText(received(['standard'], e, intentId, `/hook/${i}`), signers));
      const memory = logOf(create(idA), observed(1, '-', 0, '', '-', {}, hooks(idA, evtA, evtB)));
      expect(firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, hooks(idB, evtB, evtA).reverse())))).toBeUndefined();
      expect(memory.answers[1]?.text).toContain('"payment_intent_id":"pay_01KF0RDQG0<id 1>"');
      // The new event ids, in the order of the sorted texts (/hook/0 before /hook/1), each in its header and body.
      expect(memory.answers[1]?.text).toContain(`POST /hook/0\ncontent-type: application/json\nhost: 127.0.0.1:4000\nwebhook-id: evt_01KF0RDQG0<id 2>`);
      expect(memory.answers[1]?.text).toContain('"id":"evt_01KF0RDQG0<id 3>"');
      // Another intent's id (not the one the step before created), a webhook missing, one more, another path or body: a difference.
      expect(firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, hooks(idA, evtA, evtB))))?.step).toBe(1);
      expect(firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, hooks(idB, evtA))))?.step).toBe(1);
      expect(firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, [...hooks(idB, evtA, evtB), ...hooks(idB, evtA)])))?.step).toBe(1);
      const moved = hooks(idB, evtA, evtB).map((t) => t.replace('/hook/1', '/hook/9'));
      expect(firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, moved)))?.step).toBe(1);
      const failure = firstDifference(memory, logOf(create(idB), observed(1, '-', 0, '', '-', {}, hooks(idB, evtA, evtB).map((t) => t.replace('approved', 'declined')))));
      expect(failure?.violations[0]).toContain('payment_intent.declined');
    });

    it('tells a retry that keeps its event id from one with a new id, and a webhook-id that is not its body’s eventId', () => {
      const evtC = 'evt_01KF0RDQG0CCCCCCCCCCCCCCCC';
      const hook = (schemes: string[], eventId: string, path = '/fail') => webhookText(received(schemes, eventId, idA, path), signers);
      const create = observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${idA}"}`, 'POST');
      const run = (first: string, retry: string) => logOf(create, observed(1, '-', 0, '', '-', {}, [first]), observed(2, '-', 0, '', '-', {}, [retry]));
      expect(firstDifference(run(hook(['standard'], evtA), hook(['standard'], evtA)), run(hook(['standard'], evtB), hook(['standard'], evtB)))).toBeUndefined();
      expect(firstDifference(run(hook(['standard'], evtA), hook(['standard'], evtA)), run(hook(['standard'], evtB), hook(['standard'], evtC)))?.step).toBe(2);
      // The header's id and the body's: the same id in one run, two in the other.
      const mismatched = hook(['standard'], evtB).replace(`webhook-id: ${evtB}`, `webhook-id: ${evtC}`);
      expect(firstDifference(logOf(create, observed(1, '-', 0, '', '-', {}, [hook(['standard'], evtA)])), logOf(create, observed(1, '-', 0, '', '-', {}, [mismatched])))?.step).toBe(1);
    });

    it('leaves the new ids of webhooks whose texts are otherwise alike unnamed (their order is the arrival’s)', () => {
      const twins = [evtA, evtB].map((e) => webhookText(received(['legacy'], e, idA), signers).replace(`x-webhook-id: ${e}`, 'x-webhook-id: -'));
      const log = logOf(observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${idA}"}`, 'POST'), observed(1, '-', 0, '', '-', {}, twins));
      expect(log.answers[1]?.text.match(/evt_01KF0RDQG0<unnamed>/g)).toHaveLength(2);
      expect(firstDifference(log, logOf(observed(0, '/v1/sim/intents', 200, `{"payment_intent_id":"${idA}"}`, 'POST'), observed(1, '-', 0, '', '-', {}, [...twins].reverse())))).toBeUndefined();
    });
  });

  it('does not compare the answer of /metrics (the process’s own figures)', () => {
    expect(firstDifference(logOf(observed(0, '/metrics/', 200, 'process_cpu_seconds_total 0.1', 'GET', { 'content-length': '29' })), logOf(observed(0, '/metrics/', 200, 'process_cpu_seconds_total 0.25', 'GET', { 'content-length': '30' })))).toBeUndefined();
    expect(firstDifference(logOf(observed(0, '/metrics', 200, 'a')), logOf(observed(0, '/metrics', 503, 'a')))).toBeDefined();
  });
});

describe('the 4xx rule and a FluxPay decline', () => {
  it('a declined confirm (402) changes what it is documented to, its webhook to a subscriber included, and nothing else', async () => {
    const env = await createEnvironment(25);
    try {
      const opOf = (key: string) => env.model.operations.findIndex((op) => op.key === key);
      const post = (key: string, value: Value): Step => ({ kind: 'request', draft: { op: opOf(key), method: 'POST', path: [{ lit: key.slice('POST '.length) }], pathSuffix: '', query: [], headers: [], body: { kind: 'json', value }, contentType: undefined, tags: [] } });
      for (const subscriber of [false, true]) {
        const steps: Step[] = [
          ...(subscriber ? [post('POST /api/v1/webhook-subscriptions', { url: new LocalUrl('receiver', '/gone'), events: [] })] : []),
          post('POST /api/v1/orders', { userId: 'user_fuzz_a', serviceId: 'ai-writer', orderName: 'x', amount: 15000 }),
          // CVV 442: the card's decision is a decline (card_declined).
          post('POST /api/v1/payments', { orderId: new PoolRef('ord', 0), method: 'CARD', card: { number: '4111111111111111', cvv: '442' } }),
          post('POST /api/v1/payments/confirm', { paymentKey: new PoolRef('pk', 0), orderId: new PoolRef('ord', 0), amount: 15000 }),
        ];
        const log = new AnswerLog();
        const result = await runSequence(env, steps, new Stats(), undefined, log.observe);
        expect(result.failure, JSON.stringify(result.failure?.violations)).toBeUndefined();
        const confirm = log.answers.find((a) => a.observed.route === 'POST /api/v1/payments/confirm');
        expect(confirm?.observed.status).toBe(402);
        // With a subscriber, its payment.failed webhook came in the same step; the subscriber's 410 disabled its URL.
        expect(confirm?.observed.webhooks.map((w) => /"eventType":"([a-z.]+)"/.exec(w)?.[1])).toEqual(subscriber ? ['payment.failed'] : []);
      }
    } finally {
      await env.close();
    }
  }, 60_000);
});

describe('fuzzing every route from the OpenAPI document', () => {
  it(
    `${REQUESTS} seeded requests: no 5xx, errors in the dialect's shape, no state change on a 4xx`,
    async () => {
      const redisUrl = onRedis ? inject('paysimRedisUrl') : undefined;
      const report = await runFuzz({ seed: SEED, requests: REQUESTS, sequenceLength: 25, redisUrl });
      const text = formatReport(report);
      expect(report.failures, text).toEqual([]);
      expect(report.store).toBe(onRedis ? 'redis' : 'memory');
      // On Redis every sequence ran again on memory, and every answer was the same.
      expect(report.stats.comparedWithMemory).toBe(onRedis ? report.stats.requests : 0);
      // And so was every webhook the receiver got, step by step (52 with this seed at 5,000 requests:
      // most sequences never move the clock far enough for a decision).
      if (onRedis) expect(report.stats.webhooksCompared).toBeGreaterThan(25);
      else expect(report.stats.webhooksCompared).toBe(0);
      if (redisUrl !== undefined) {
        // The apps wrote under the fuzzer's prefixes, and each sequence's keys were removed when it
        // ended (the run's Redis is shared by the suite's files).
        expect(report.stats.redisKeysRemoved).toBeGreaterThan(report.stats.sequences);
        const redis = new Redis(redisUrl);
        try {
          expect(await redis.keys(`${DEFAULT_REDIS_KEY_PREFIX}fuzz:${process.pid}:*`)).toEqual([]);
        } finally {
          await redis.quit();
        }
      }
      expect(report.stats.requests).toBeGreaterThanOrEqual(REQUESTS);
      expect([...report.stats.byStatus.keys()].filter((status) => status >= 500)).toEqual([]);
      // Every operation was reached, and most both succeeded and failed: the generator makes
      // requests good enough to pass validation, and mutations that do not.
      const reached = report.operations.filter((op) => report.stats.byRoute.has(op));
      expect(reached).toEqual(report.operations);
      const succeeded = report.operations.filter((op) => [...(report.stats.byRoute.get(op)?.keys() ?? [])].some((s) => s < 300));
      const refused = report.operations.filter((op) => [...(report.stats.byRoute.get(op)?.keys() ?? [])].some((s) => s >= 400));
      // FluxPay operations that succeed only at the end of a chain of specific states (a PENDING
      // order and a consistent card, a READY payment and its order's amount, a PAID credit-charge
      // order, a balance, a deducted usage) are rarely reached by random requests; the FluxPay
      // integration tests cover their successes. They still count when they do succeed.
      // A fault rule is never created by the fuzzer (test/fuzz/openapi.ts), so reading or deleting one only fails.
      const chained = ['POST /api/v1/payments', 'POST /api/v1/payments/confirm', 'GET /api/v1/payments/{paymentKey}', 'POST /api/v1/credits/charge', 'POST /api/v1/credits/use', 'POST /api/v1/credits/refund', 'GET /v1/sim/rules/{id}', 'DELETE /v1/sim/rules/{id}',
        // A ticket is found only under the room it was issued in, and a subscription exists only
        // after a charge with a plan, a card and an expiry that all pass (test/integration/fluxpay-
        // waiting-room and fluxpay-subscriptions cover these successes).
        'GET /api/v1/waiting-rooms/{roomId}/tickets/{ticket}', 'GET /api/v1/subscriptions/{subscriptionId}', 'GET /api/v1/subscriptions/{subscriptionId}/entitlements',
        'POST /api/v1/subscriptions/{subscriptionId}/cancel', 'POST /api/v1/subscriptions/{subscriptionId}/change-plan', 'POST /api/v1/subscriptions/{subscriptionId}/card',
        // The native operations on a record in a given state: cancel a PENDING intent, refund an
        // APPROVED one, replay a delivery that exists, re-enable a URL that was disabled (a receiver
        // answered 410). Each needs its chain to land in few steps; sim-api and webhooks-api cover them.
        'POST /v1/sim/intents/{id}/cancel', 'POST /v1/sim/intents/{id}/refund', 'POST /v1/sim/webhooks/deliveries/{id}/replay', 'DELETE /v1/sim/webhooks/disabled-urls'];
      const chainedMissing = chained.filter((op) => report.operations.includes(op) && !succeeded.includes(op)).length;
      // Which operations succeed is the memory run's check, over its 10,000 requests: the Redis run is
      // the first half of the same sequences, each answer the same as memory's (compared above), and
      // whether half of them reach every success is the seed's luck (2026-12-04: two routes added to
      // the document shifted the sequences, and 5,000 and 7,000 requests missed five on both back ends).
      if (redisUrl === undefined) expect(succeeded.length, text).toBeGreaterThanOrEqual(report.operations.length - 3 - chainedMissing);
      expect(refused.length, text).toBeGreaterThanOrEqual(report.operations.length - 3);
      process.stdout.write(`${text.split('\n', 1)[0]}\n`);
    },
    900_000,
  );
});
