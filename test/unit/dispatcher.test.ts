import { setTimeout as sleep } from 'node:timers/promises';
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryDeliveryLog } from '../../src/adapters/memory/deliveries.ts';
import { MemoryDisabledUrls } from '../../src/adapters/memory/disabled-urls.ts';
import type { Delivery } from '../../src/core/deliveries.ts';
import { EventBus, isDeliveryEvent, type DeliveryEvent } from '../../src/core/events.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { NOT_RECORDED } from '../../src/webhooks/attempt-runner.ts';
import { RETRY_JOB, WebhookDispatcher, type WebhookFaults, type WebhookRequest } from '../../src/webhooks/dispatcher.ts';
import { legacySigner } from '../../src/webhooks/signers/legacy.ts';
import { SignerRegistry } from '../../src/webhooks/signers/registry.ts';
import { standardSigner } from '../../src/webhooks/signers/standard.ts';
import { stripeSigner } from '../../src/webhooks/signers/stripe.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { eventually } from '../helpers/receiver.ts';
import { RecordingQueue } from '../helpers/recording-queue.ts';
import { scriptedRandom, startedScheduler } from './support.ts';

/**
 * The dispatcher without sockets: undici's MockAgent answers, the manual clock drives retries
 * (due `webhook.retry` jobs), the memory log holds deliveries.
 * @see issue 3, issue 7 "Webhooks" and defects 1 and 8
 */

const ORIGIN = 'http://receiver.test';
const SETTINGS = { timeoutMs: 1000, maxRetries: 2, backoffMs: 1000, backoffMaxMs: 60_000, maxRps: 0, concurrency: 4, originConcurrency: 2, queueMax: 100 };

const agents: MockAgent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
});

async function makeDispatcher(options: { logMax?: number; faults?: WebhookFaults; maxFaultPlans?: number; settings?: Partial<typeof SETTINGS>; jitter?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 15, 12, 0, 0));
  const { scheduler } = await startedScheduler(clock);
  const bus = new EventBus();
  const events: DeliveryEvent[] = [];
  bus.subscribe((event) => {
    if (isDeliveryEvent(event)) events.push(event);
  });
  const agent = new MockAgent();
  agent.disableNetConnect();
  agents.push(agent);
  const signers = new SignerRegistry();
  for (const signer of [standardSigner(['whsec_dGVzdA==']), legacySigner(['legacy-secret']), stripeSigner(['stripe-secret'])]) signers.register(signer);
  const log = new MemoryDeliveryLog({ ttlMs: 86_400_000, maxDeliveries: options.logMax ?? 1000 });
  const errors: Array<{ error: unknown; context: string }> = [];
  const disabled = new MemoryDisabledUrls({ maxUrls: 1000 });
  const dispatcher = new WebhookDispatcher({
    clock,
    ids: createIdFactory(clock),
    bus,
    log,
    disabled,
    scheduler,
    agent,
    signers,
    settings: { ...SETTINGS, ...options.settings },
    jitter: scriptedRandom(...Array.from({ length: options.jitter ?? 4 }, () => 0.5)),
    onError: (error, context) => errors.push({ error, context }),
    faults: options.faults,
    maxFaultPlans: options.maxFaultPlans,
  });
  return { clock, dispatcher, agent, log, events, errors, disabled };
}

/** The receiver answers `status` (and `data`) to every POST to `path`; `hits` counts them. */
function answering(agent: MockAgent, path: string, status: number, data: string): { readonly hits: number } {
  let hits = 0;
  agent
    .get(ORIGIN)
    .intercept({ path, method: 'POST' })
    .reply(() => {
      hits++;
      return { statusCode: status, data };
    })
    .persist();
  return {
    get hits() {
      return hits;
    },
  };
}

const request = (overrides: Partial<WebhookRequest> = {}): WebhookRequest => ({
  eventId: 'evt_01JAAAAAAAAAAAAAAAAAAAAAAA',
  type: 'payment.approved',
  url: `${ORIGIN}/hooks`,
  body: '{"id":"evt_01JAAAAAAAAAAAAAAAAAAAAAAA"}',
  schemes: ['standard'],
  subject: { kind: 'intent', id: 'pay_01JAAAAAAAAAAAAAAAAAAAAAAA' },
  ...overrides,
});

/** Polls the log until the delivery satisfies `ready` (attempts run on real sockets' time, here MockAgent's). */
async function until(log: MemoryDeliveryLog, id: string, ready: (status: string, attempts: number) => boolean) {
  for (let i = 0; i < 500; i++) {
    const d = await log.get(id);
    if (d !== undefined && ready(d.status, d.attempts.length)) return d;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`delivery ${id} never got there`);
}

describe('accepting a delivery', () => {
  it('a URL the parser refuses ends failed at once with the reason, logged and published, with no attempt (defect 1)', async () => {
    const { dispatcher, log, events } = await makeDispatcher();
    const delivery = await dispatcher.deliver(request({ url: 'http://127.0.0.1:99999/hooks' }));
    expect(delivery).toMatchObject({ status: 'failed', failureReason: expect.stringMatching(/^invalid_url: /), attempts: [] });
    expect(await log.get(delivery.id)).toEqual(delivery);
    expect(events.map((e) => [e.type, e.delivery.failureReason])).toEqual([
      ['webhook.accepted', delivery.failureReason],
      ['webhook.failed', delivery.failureReason],
    ]);
  });

  it('webhook.accepted occurred when the delivery was logged (its updatedAt), not once the store answered: with a shared queue another replica may attempt it meanwhile, and its webhook.attempted must not come first (a user test)', async () => {
    const { clock, dispatcher, agent, log, events } = await makeDispatcher();
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok');
    const insert = log.insert.bind(log);
    // The store's answer comes 7 ms after the write, as a slow Redis' would.
    log.insert = async (delivery) => {
      const outcome = await insert(delivery);
      await clock.advance(7);
      return outcome;
    };
    const delivery = await dispatcher.deliver(request());
    await until(log, delivery.id, (status) => status === 'delivered');
    expect(delivery.updatedAt).toBe(clock.now() - 7);
    expect(events.map((e) => [e.type, e.occurredAt])).toEqual([
      ['webhook.accepted', delivery.updatedAt],
      ['webhook.attempted', clock.now()],
      ['webhook.delivered', clock.now()],
    ]);
  });

  it('an unknown signature scheme is refused before anything is logged', async () => {
    const { dispatcher, log } = await makeDispatcher();
    await expect(dispatcher.deliver(request({ schemes: ['nope'] }))).rejects.toThrow('unknown signature scheme nope');
    expect((await log.list({ limit: 10 })).data).toEqual([]);
  });

  it('a log full of unfinished deliveries: the new one fails with log_full (a webhook.failed event, logged by the event-logs plugin), and the others are kept (defect 8)', async () => {
    const { dispatcher, agent, log, events, errors } = await makeDispatcher({ logMax: 1 });
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(503, 'busy').persist();
    const first = await dispatcher.deliver(request());
    await until(log, first.id, (status) => status === 'retrying');
    const second = await dispatcher.deliver(request({ eventId: 'evt_01JBBBBBBBBBBBBBBBBBBBBBBB' }));
    expect(second).toMatchObject({ status: 'failed', failureReason: 'log_full' });
    expect(await log.get(first.id)).toMatchObject({ status: 'retrying' });
    expect(await log.get(second.id)).toBeUndefined();
    expect(errors).toEqual([]);
    expect(events.filter((e) => e.type === 'webhook.failed').map((e) => [e.delivery.id, e.delivery.eventId, e.delivery.failureReason])).toEqual([[second.id, 'evt_01JBBBBBBBBBBBBBBBBBBBBBBB', 'log_full']]);
  });
});

describe('attempts, retries and replays', () => {
  it('a failure is retried by a due job at its backoff; the second attempt delivers', async () => {
    const { clock, dispatcher, agent, log, events } = await makeDispatcher();
    const pool = agent.get(ORIGIN);
    pool.intercept({ path: '/hooks', method: 'POST' }).reply(500, 'boom');
    pool.intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok');
    const delivery = await dispatcher.deliver(request());
    const retrying = await until(log, delivery.id, (status) => status === 'retrying');
    expect(retrying.nextAttemptAt).toBe(clock.now() + 1000);
    await clock.advance(999);
    expect((await log.get(delivery.id))?.attempts).toHaveLength(1);
    await clock.advance(1);
    const delivered = await until(log, delivery.id, (status) => status === 'delivered');
    expect(delivered.attempts.map((a) => a.statusCode)).toEqual([500, 200]);
    expect(events.map((e) => e.type)).toEqual(['webhook.accepted', 'webhook.attempted', 'webhook.retry_scheduled', 'webhook.attempted', 'webhook.delivered']);
  });

  for (const failingBefore of [false, true]) {
    it(`an attempt whose store fails ${failingBefore ? 'before its send (the disabled-URL check: nothing sent)' : 'after its send (its record)'}: reported as the store that failed during the attempt, not as the delivery (h76d: "webhook delivery whd_… failed" read as its end, and it was delivered later; rev76f: a first wording said an attempt was being recorded, for one never sent); the log still holds it pending`, async () => {
      const { dispatcher, agent, log, errors, disabled } = await makeDispatcher();
      const receiver = answering(agent, '/hooks', 200, 'ok');
      const failing = Object.assign(new Error('store down'), { code: 'STORE_UNAVAILABLE' });
      if (failingBefore) vi.spyOn(disabled, 'isDisabled').mockRejectedValue(failing);
      else for (const method of ['update', 'updateIf'] as const) vi.spyOn(log, method).mockRejectedValue(failing);
      const delivery = await dispatcher.deliver(request());
      for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(errors.map((e) => [e.context, (e.error as Error).message])).toEqual([[`the store during an attempt of webhook delivery ${delivery.id} (before or after its send)`, 'store down']]);
      expect([receiver.hits, await log.get(delivery.id)]).toEqual([failingBefore ? 0 : 1, expect.objectContaining({ status: 'pending', attempts: [] })]);
    });
  }

  it('a replay is signed with the schemes stored with the delivery, whatever the others', async () => {
    const { dispatcher, agent, log } = await makeDispatcher();
    const seen: Array<Record<string, unknown>> = [];
    agent
      .get(ORIGIN)
      .intercept({ path: '/hooks', method: 'POST' })
      .reply((options) => {
        seen.push(options.headers as Record<string, unknown>);
        return { statusCode: 200, data: 'ok' };
      })
      .times(2);
    const delivery = await dispatcher.deliver(request({ schemes: ['stripe'] }));
    await until(log, delivery.id, (status) => status === 'delivered');
    await dispatcher.replay(delivery.id);
    await until(log, delivery.id, (status, attempts) => status === 'delivered' && attempts === 2);
    for (const headers of seen) {
      expect(Object.keys(headers).filter((h) => /signature|webhook-id|x-timestamp/i.test(h))).toEqual(['stripe-signature']);
    }
  });

  it('two replays of one delivery at once (a double click): one starts a series, the other is INVALID_STATE; it goes out once more', async () => {
    const { dispatcher, agent, log, events } = await makeDispatcher();
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok').times(2);
    const delivery = await dispatcher.deliver(request());
    await until(log, delivery.id, (status) => status === 'delivered');
    const outcomes = await Promise.allSettled([dispatcher.replay(delivery.id), dispatcher.replay(delivery.id)]);
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled', value: { id: delivery.id, status: 'pending', seriesStart: 1 } });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'INVALID_STATE' } });
    const replayed = await until(log, delivery.id, (status) => status === 'delivered');
    expect([replayed.attempts.length, replayed.seriesStart]).toEqual([2, 1]);
    // The second replay would have been a third request, which the agent no longer answers.
    await dispatcher.drain(1_000);
    expect(events.filter((e) => e.type === 'webhook.attempted')).toHaveLength(2);
  });

  it('a drop_attempts plan holds for every attempt of its delivery on memory, however many deliveries came after it (the bound on plans is for a shared queue)', async () => {
    const dropTwo = { ruleIds: ['rule_drop'], duplicate: null, reorder: null, delay: null, dropAttempts: { ruleId: 'rule_drop', n: 2 } };
    const { clock, dispatcher, agent, log } = await makeDispatcher({ faults: { plan: () => Promise.resolve(dropTwo), random: scriptedRandom(0.5) }, maxFaultPlans: 1 });
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok').persist();
    const first = await dispatcher.deliver(request());
    await until(log, first.id, (status) => status === 'retrying');
    // Another delivery with a plan of its own, past the bound of one.
    const second = await dispatcher.deliver(request({ eventId: 'evt_01JBBBBBBBBBBBBBBBBBBBBBBB' }));
    await until(log, second.id, (status) => status === 'retrying');
    await clock.advance(1000);
    const retried = await until(log, first.id, (status, attempts) => status === 'retrying' && attempts === 2);
    expect(retried.attempts.map((a) => a.error)).toEqual(['network_error: dropped by fault rule rule_drop', 'network_error: dropped by fault rule rule_drop']);
  });

  it('a delivery to a disabled URL fails without taking a rate-cap token: a backlog of them holds no other receiver back (2026-12-07, a user test: 100 of them delayed a healthy receiver by 2 s)', async () => {
    const { clock, dispatcher, agent, log, disabled } = await makeDispatcher({ settings: { maxRps: 1 }, jitter: 6 });
    await disabled.disable(`${ORIGIN}/gone`, clock.now());
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok');
    const gone = [];
    for (let i = 0; i < 5; i++) gone.push(await dispatcher.deliver(request({ url: `${ORIGIN}/gone`, eventId: `evt_01JGONE${String(i).padStart(18, '0')}` })));
    const healthy = await dispatcher.deliver(request({ eventId: 'evt_01JHEALTHY000000000000000' }));
    // The one token there is goes to the healthy receiver's attempt: delivered without the clock moving.
    expect(await until(log, healthy.id, (status) => status === 'delivered')).toMatchObject({ attempts: [expect.objectContaining({ statusCode: 200 })] });
    for (const d of gone) expect(await until(log, d.id, (status) => status === 'failed')).toMatchObject({ failureReason: 'endpoint_disabled', attempts: [] });
  });

  it('deliveries waiting for a rate-cap token when their receiver answers 410 make no attempt once their token comes (rev74c: each sent its own, answered 410 again)', async () => {
    const { clock, dispatcher, agent, log } = await makeDispatcher({ settings: { maxRps: 1 }, jitter: 3 });
    const gone = answering(agent, '/gone', 410, 'gone');
    const deliveries = [];
    for (let i = 0; i < 3; i++) deliveries.push(await dispatcher.deliver(request({ url: `${ORIGIN}/gone`, eventId: `evt_01JWAIT${String(i).padStart(18, '0')}` })));
    expect(await until(log, deliveries[0]!.id, (status) => status === 'failed')).toMatchObject({ failureReason: 'gone' });
    for (let i = 0; i < 4; i++) await clock.advance(1000);
    for (const d of deliveries.slice(1)) expect(await until(log, d.id, (status) => status === 'failed')).toMatchObject({ failureReason: 'endpoint_disabled', attempts: [] });
    expect(gone.hits).toBe(1);
  });

  it('replaying a delivery that is not finished is INVALID_STATE; an unknown one NOT_FOUND', async () => {
    const { dispatcher, agent, log } = await makeDispatcher();
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(500, 'boom').persist();
    const delivery = await dispatcher.deliver(request());
    await until(log, delivery.id, (status) => status === 'retrying');
    await expect(dispatcher.replay(delivery.id)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(dispatcher.replay('whd_01JAAAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

/** A dispatcher on a RecordingQueue (shared, as Redis's) and a memory log, on a manual clock, with its receivers mocked (`agent`). */
async function sharedDispatcher(settings: Partial<typeof SETTINGS> = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 15, 12, 0, 0));
  const { scheduler } = await startedScheduler(clock);
  const agent = new MockAgent();
  agent.disableNetConnect();
  agents.push(agent);
  const signers = new SignerRegistry();
  signers.register(standardSigner(['whsec_dGVzdA==']));
  const log = new MemoryDeliveryLog({ ttlMs: 86_400_000, maxDeliveries: 100 });
  const queue = new RecordingQueue();
  const superseded: Array<[string, string]> = [];
  const dispatcher = new WebhookDispatcher({
    clock,
    ids: createIdFactory(clock),
    bus: new EventBus(),
    log,
    disabled: new MemoryDisabledUrls({ maxUrls: 10 }),
    scheduler,
    agent,
    signers,
    settings: { ...SETTINGS, ...settings },
    onError: () => undefined,
    queue,
    onSuperseded: (id, why) => superseded.push([id, why]),
  });
  const logged = async (id: string, url = `${ORIGIN}/hooks`): Promise<Delivery> => {
    const now = clock.now();
    const delivery: Delivery = { ...request({ url, eventId: `evt_${id}` }), id, subject: null, test: false, extraHeaders: {}, status: 'pending', attempts: [], seriesStart: 0, nextAttemptAt: null, failureReason: null, createdAt: now, updatedAt: now };
    await log.insert(delivery);
    return delivery;
  };
  return { clock, scheduler, agent, log, queue, dispatcher, superseded, logged };
}

describe('with a shared queue', () => {
  it('an attempt that ends after another replica recorded one of the same delivery records nothing: its 500 does not turn the other’s delivered into a retry, and no retry is scheduled (2026-12-07, a user test: sent a third time)', async () => {
    const { clock, scheduler, agent, log, queue, dispatcher, superseded, logged } = await sharedDispatcher();
    let answer = (): void => undefined;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    let started = (): void => undefined;
    const sent = new Promise<void>((resolve) => (started = resolve));
    agent
      .get(ORIGIN)
      .intercept({ path: '/hooks', method: 'POST' })
      .reply(async () => {
        started();
        await answered;
        return { statusCode: 500, data: 'boom' };
      });
    const delivery = await logged('whd_both');
    queue.handler({ ...delivery }, ORIGIN, 'T1');
    await sent;
    // Meanwhile the replica that took it over (this one stalled) delivered it.
    const theirs = { at: clock.now(), statusCode: 200, durationMs: 3, error: null };
    await log.update(delivery.id, { status: 'delivered', failureReason: null, nextAttemptAt: null, attempt: theirs, updatedAt: clock.now() });
    const recorded = await log.get(delivery.id);
    answer();
    await eventually(() => (superseded.length > 0 ? true : undefined), 'the attempt to end');
    expect(await log.get(delivery.id)).toEqual(recorded);
    expect(recorded?.attempts).toEqual([theirs]);
    // A memory log marks after its job (no one store call): the job left behind finds it delivered, and ends.
    await clock.advance(SETTINGS.backoffMaxMs);
    await eventually(async () => ((await scheduler.pending(RETRY_JOB)) === 0 ? true : undefined), 'the retry job to end');
    expect(await log.get(delivery.id)).toEqual(recorded);
    // Nothing is left to send: the entry is acknowledged, and the drain has nothing to wait for (rev74b: left held, it waited out its budget).
    expect(queue.calls).toEqual(['begin T1', 'ack T1']);
    expect(superseded).toEqual([['whd_both', NOT_RECORDED]]);
    const drainStarted = performance.now();
    await dispatcher.drain(5_000);
    expect(performance.now() - drainStarted).toBeLessThan(1_000);
  });

  it('close hands back a later entry of a delivery that never began, though an earlier entry of it had (its ack under way)', async () => {
    const { clock, agent, log, queue, dispatcher, logged } = await sharedDispatcher({ concurrency: 1, originConcurrency: 1 });
    agent.get(ORIGIN).intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok').persist();
    agent.get('http://slow.test').intercept({ path: '/hooks', method: 'POST' }).reply(200, 'ok').delay(3000);
    const delivery = await logged('whd_d');
    const slow = await logged('whd_slow', 'http://slow.test/hooks');
    // The first entry's result is recorded, and its reply held back (a slow store round trip).
    let recorded = (): void => undefined;
    const recordedSeen = new Promise<void>((resolve) => (recorded = resolve));
    let letGo = (): void => undefined;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    // A shared queue's attempt is recorded only while the log holds the delivery as it began (updateIf).
    const updateIf = log.updateIf.bind(log);
    log.updateIf = async (id, expect, change) => {
      const out = await updateIf(id, expect, change);
      if (id === delivery.id && change.status === 'delivered') {
        recorded();
        await held;
      }
      return out;
    };
    queue.handler({ ...delivery }, ORIGIN, 'T1');
    await recordedSeen;
    // Meanwhile a slow delivery takes the one worker next, and a later entry of the first (its replay) comes behind it.
    queue.handler({ ...slow }, 'http://slow.test', 'TX');
    await log.update(delivery.id, { status: 'pending', nextAttemptAt: null, failureReason: null, newSeries: true, updatedAt: clock.now() });
    queue.handler({ ...delivery }, ORIGIN, 'T2');
    letGo();
    for (let i = 0; i < 200 && !queue.calls.includes('begin TX'); i++) await sleep(5);
    dispatcher.close();
    // T1 is acknowledged once, by its attempt's end (before 2026-12-04 T2's coming acknowledged it too, while in flight).
    expect(queue.calls).toEqual(['begin T1', 'ack T1', 'begin TX', 'release T2']);
  });
});
