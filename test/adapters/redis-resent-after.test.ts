import type { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { RedisBookingStore } from '../../src/adapters/redis/bookings.ts';
import { RedisDeliveryLog } from '../../src/adapters/redis/deliveries.ts';
import { RedisDisabledUrls } from '../../src/adapters/redis/disabled-urls.ts';
import { RedisFaultRuleStore } from '../../src/adapters/redis/fault-rules.ts';
import { RedisBillingStore } from '../../src/adapters/redis/fluxpay-billing.ts';
import { RedisFluxPayStore } from '../../src/adapters/redis/fluxpay.ts';
import { RedisFluxPaySubscriptionStore } from '../../src/adapters/redis/fluxpay-subscriptions.ts';
import { RedisIdempotencyStore } from '../../src/adapters/redis/idempotency.ts';
import { RedisIntentStore } from '../../src/adapters/redis/intents.ts';
import { RedisSchedulerStore } from '../../src/adapters/redis/scheduler.ts';
import { RedisV2PaymentStore } from '../../src/adapters/redis/v2-payments.ts';
import { RedisWaitingRoomStore } from '../../src/adapters/redis/waiting-rooms.ts';
import type { FaultRule } from '../../src/core/faults/model.ts';
import { parseRule } from '../../src/core/faults/validation.ts';
import type { ClaimedJob } from '../../src/core/ports.ts';
import type { SubscriptionRecord } from '../../src/core/subscriptions/ports.ts';
import { canceled } from '../../src/core/subscriptions/subscription.ts';
import { resentAfter, sentTogetherTwice, withRedisServer } from '../helpers/redis.ts';
import { aSubscription } from './contracts/billing.contract.ts';
import { aBooking, aDelivery, anInboxEvent, anIntent, aV2Payment, DAY, T0 } from './contracts/fixtures.ts';

/*
 * A call whose reply was lost (the connection dropped after its script ran) is sent again by
 * ioredis on its next connection; meanwhile another replica may have changed the same record. The
 * second run must change nothing: not write its change over the later one, nor bring back what
 * was deleted since. Each test here fails without its store's kept reply (or mark).
 */
withRedisServer('Redis scripts sent again after another replica changed their record', (server) => {
  /** Two replicas' connections to one Redis, under one prefix. */
  function twoReplicas(): { keyPrefix: string; a: Redis; b: Redis } {
    const redis = server();
    return { keyPrefix: redis.newPrefix(), a: redis.connect(), b: redis.connect() };
  }

  function aRule(id: string): FaultRule {
    const parsed = parseRule({ action: { type: 'error', status: 503 } }, { now: T0 });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    return { ...parsed.value.input, id, createdAt: T0 } as FaultRule;
  }

  it('delivery log: an update to retrying sent again after another replica retried and delivered leaves it delivered, each attempt logged once', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const logA = new RedisDeliveryLog(a, { keyPrefix, ttlMs: DAY, maxDeliveries: 100 });
    const logB = new RedisDeliveryLog(b, { keyPrefix, ttlMs: DAY, maxDeliveries: 100 });
    const delivery = aDelivery();
    await logA.insert(delivery);
    const failed = { at: T0 + 1, statusCode: 503, durationMs: 5, error: null };
    const delivered = { at: T0 + 20, statusCode: 200, durationMs: 5, error: null };
    const answered = await resentAfter(
      a,
      () => logA.update(delivery.id, { status: 'retrying', attempt: failed, nextAttemptAt: T0 + 11, failureReason: null, updatedAt: T0 + 1 }),
      async () => {
        // B's retry job (due 10 ms later, as under TIME_SCALE=0.01): pending, attempted, delivered.
        await logB.update(delivery.id, { status: 'pending', nextAttemptAt: null, failureReason: null, updatedAt: T0 + 12 });
        await logB.update(delivery.id, { status: 'delivered', attempt: delivered, nextAttemptAt: null, failureReason: null, updatedAt: T0 + 20 });
      },
    );
    const expected = { ...delivery, status: 'delivered', attempts: [failed, delivered], nextAttemptAt: null, failureReason: null, updatedAt: T0 + 20 };
    // The second run answers the delivery as it is now.
    expect(answered).toEqual(expected);
    expect(await logB.get(delivery.id)).toEqual(expected);
    // Finished: evictable again (a delivery left unfinished is never evicted).
    expect(await b.zscore(`${keyPrefix}dlv:evict`, delivery.id)).toBe(String(delivery.createdAt));
  });

  it('delivery log: two updates of one delivery sent again together log each attempt once', async () => {
    const { keyPrefix, a } = twoReplicas();
    const log = new RedisDeliveryLog(a, { keyPrefix, ttlMs: DAY, maxDeliveries: 100 });
    const delivery = aDelivery();
    await log.insert(delivery);
    // Redis holds the update's script already: both are sent, and run, in the order called.
    await log.update(delivery.id, { status: 'pending', nextAttemptAt: null, failureReason: null, updatedAt: T0 });
    const failed = { at: T0 + 1, statusCode: 503, durationMs: 5, error: null };
    const delivered = { at: T0 + 2, statusCode: 200, durationMs: 5, error: null };
    await sentTogetherTwice<unknown>(a, [
      () => log.update(delivery.id, { status: 'retrying', attempt: failed, nextAttemptAt: T0 + 11, failureReason: null, updatedAt: T0 + 1 }),
      () => log.update(delivery.id, { status: 'delivered', attempt: delivered, nextAttemptAt: null, failureReason: null, updatedAt: T0 + 2 }),
    ]);
    expect(await log.get(delivery.id)).toMatchObject({ status: 'delivered', attempts: [failed, delivered] });
    // A mark per update, not the delivery itself.
    const marks = await a.keys(`${keyPrefix}dlv:kept:*`);
    expect(marks).toHaveLength(3);
    for (const mark of marks) expect(await a.get(mark)).toBe('1');
  });

  it('delivery log: a retry’s mark with its job (one script run) sent again together with a claim of the job schedules it once, and an unknown delivery gets no job', async () => {
    const { keyPrefix, a } = twoReplicas();
    const scheduler = new RedisSchedulerStore(a, { keyPrefix });
    const log = new RedisDeliveryLog(a, { keyPrefix, ttlMs: DAY, maxDeliveries: 100, scheduler });
    const delivery = aDelivery();
    await log.insert(delivery);
    const job = { kind: 'webhook.retry', key: delivery.id, dueAt: T0 + 11 };
    const failed = { at: T0 + 1, statusCode: 503, durationMs: 5, error: null };
    const change = { status: 'retrying' as const, attempt: failed, nextAttemptAt: T0 + 11, failureReason: null, updatedAt: T0 + 1 };
    // Redis holds both scripts already, so both are sent (and run) in the order called.
    expect(await log.updateScheduled!('whd_none', change, { ...job, key: 'whd_none' })).toBeUndefined();
    expect(await scheduler.count('webhook.retry')).toBe(0);
    expect(await scheduler.claimDue(T0, 1, 1_000)).toEqual([]);
    const [marked, claimed] = await sentTogetherTwice<unknown>(a, [() => log.updateScheduled!(delivery.id, change, job), () => scheduler.claimDue(T0 + 11, 10, 1_000)]);
    expect(marked).toEqual({ ...delivery, status: 'retrying', attempts: [failed], nextAttemptAt: T0 + 11, updatedAt: T0 + 1 });
    expect((claimed as ClaimedJob[]).map((j) => [j.kind, j.key])).toEqual([['webhook.retry', delivery.id]]);
    await scheduler.complete(claimed as ClaimedJob[]);
    expect(await scheduler.count('webhook.retry')).toBe(0);
    expect(await scheduler.claimDue(T0 + 5_000, 10, 1_000)).toEqual([]);
  });

  it('idempotency: a release (after a 5xx) sent again after the client’s retry began on another replica leaves that retry’s claim, so a third request waits for it', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: 2 * DAY };
    const storeA = new RedisIdempotencyStore(a, options);
    const storeB = new RedisIdempotencyStore(b, options);
    const first = await storeA.begin('POST /v1/sim/intent', 'k1', 'fp', T0);
    if (first.kind !== 'started') throw new Error(`the first begin was ${first.kind}`);
    await resentAfter(
      a,
      () => storeA.release('POST /v1/sim/intent', 'k1', first.claim),
      async () => expect(await storeB.begin('POST /v1/sim/intent', 'k1', 'fp', T0 + 5)).toEqual({ kind: 'started', claim: expect.any(String) }),
    );
    expect(await storeB.begin('POST /v1/sim/intent', 'k1', 'fp', T0 + 6)).toEqual({ kind: 'in_progress' });
    expect((await storeB.stats()).size).toBe(1);
  });

  it('idempotency: a begin sent again after its replica’s mark of life lapsed sets the mark again: another replica does not take the running key', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: 2 * DAY, aliveMs: 60_000 };
    const storeA = new RedisIdempotencyStore(a, options);
    const storeB = new RedisIdempotencyStore(b, options);
    const begun = await resentAfter(
      a,
      () => storeA.begin('POST /v1/sim/intent', 'k1', 'fp', T0),
      // The resend comes later than the mark's life (behind a proxy): the mark is gone meanwhile.
      async () => {
        const marks = await b.keys(`${keyPrefix}idem:alive:*`);
        expect(marks).toHaveLength(1);
        await b.del(...marks);
      },
    );
    expect(begun).toEqual({ kind: 'started', claim: expect.any(String) });
    expect(await storeB.begin('POST /v1/sim/intent', 'k1', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
  });

  /** A booking with a payment in flight (begun with `token`, when given), in the stores of two replicas. */
  async function aPaymentInFlight(token?: string) {
    const { keyPrefix, a, b } = twoReplicas();
    const storeA = new RedisBookingStore(a, { keyPrefix, ttlMs: DAY, maxBookings: 100 });
    const storeB = new RedisBookingStore(b, { keyPrefix, ttlMs: DAY, maxBookings: 100 });
    const booking = aBooking();
    await storeA.insert(booking);
    expect((await storeA.beginPayment(booking.id, 'user_1', 'execute', T0 + 1, token)).kind).toBe('started');
    return { a, storeA, storeB, booking };
  }

  it('bookings: a payment’s abort sent again after another payment of the booking began leaves that payment in flight, and its result is recorded', async () => {
    const { a, storeA, storeB, booking } = await aPaymentInFlight();
    await resentAfter(
      a,
      () => storeA.abortPayment(booking.id),
      async () => expect((await storeB.beginPayment(booking.id, 'user_1', 'direct', T0 + 2)).kind).toBe('started'),
    );
    expect((await storeB.get(booking.id))?.paymentInFlight).toBe('direct');
    const recorded = await storeB.recordPayment(booking.id, { status: 'SUCCESS', pgMockData: null }, anInboxEvent(booking.id));
    expect(recorded?.paymentIntent.status).toBe('SUCCESS');
  });

  it('bookings: a payment’s record sent again after the inbox confirmed the booking answers what it recorded, not nothing (before 2026-12-06 the confirm had overwritten the mark it looked for: its payment answered 409 and ran the expiry job)', async () => {
    const { a, storeA, storeB, booking } = await aPaymentInFlight('payment-A');
    const event = anInboxEvent(booking.id);
    const recorded = await resentAfter(
      a,
      () => storeA.recordPayment(booking.id, { status: 'SUCCESS', pgMockData: null }, event, undefined, 'payment-A'),
      async () => expect((await storeB.transition(booking.id, ['pending'], 'confirmed', T0 + 60)).ok).toBe(true),
    );
    expect([recorded?.status, recorded?.paymentIntent.status, recorded?.paymentInFlight]).toEqual(['confirmed', 'SUCCESS', null]);
    expect(await storeB.events(booking.id)).toEqual([event]);
  });

  it('bookings: an abort naming its payment (the begin\u2019s token), tried again however late, leaves a payment begun since in flight; one naming none ends it', async () => {
    const { storeA, storeB, booking } = await aPaymentInFlight('payment-A');
    await storeA.abortPayment(booking.id, 'payment-A');
    expect((await storeB.beginPayment(booking.id, 'user_1', 'direct', T0 + 2, 'payment-B')).kind).toBe('started');
    // A's abort again, as a late try whose first answer was lost: no time window (a kept reply lasts 10 s).
    await storeA.abortPayment(booking.id, 'payment-A');
    expect((await storeB.get(booking.id))?.paymentInFlight).toBe('direct');
    // The expiry job's backstop names none: it ends whichever is in flight.
    await storeA.abortPayment(booking.id);
    expect((await storeB.get(booking.id))?.paymentInFlight).toBeNull();
  });

  it('fault rules: a disable sent again after another replica enabled the rule leaves it enabled; a create sent again after the namespace was emptied does not bring the rule back', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const rulesA = new RedisFaultRuleStore(a, { keyPrefix, maxRules: 10 });
    const rulesB = new RedisFaultRuleStore(b, { keyPrefix, maxRules: 10 });
    const toggled = aRule('rule_toggle');
    await rulesA.create('default', toggled);
    const disabled = await resentAfter(
      a,
      () => rulesA.setEnabled('default', toggled.id, false),
      () => rulesB.setEnabled('default', toggled.id, true),
    );
    // The disable's own answer, the rule as it left it.
    expect(disabled?.rule.enabled).toBe(false);
    expect((await rulesB.get('default', toggled.id))?.rule.enabled).toBe(true);
    const created = await resentAfter(a, () => rulesA.create('ns1', aRule('rule_reset')), () => rulesB.deleteAll('ns1'));
    expect(created).toEqual({ ok: true });
    expect(await rulesB.list('ns1')).toEqual([]);
    expect(await rulesB.get('ns1', 'rule_reset')).toBeUndefined();
    // FAULTS_FILE's rules: sent again after they were deleted, the declaration answers what it did and brings nothing back.
    const declared = await resentAfter(a, () => rulesA.declare('ns2', 'fp-1', [aRule('rule_file')]), () => rulesB.deleteAll('ns2'));
    expect(declared).toEqual({ kind: 'applied', replaced: 0 });
    expect(await rulesB.list('ns2')).toEqual([]);
  });

  it('disabled URLs: an enable sent again after a 410 disabled the URL anew leaves it disabled; a disable sent again after an enable leaves it enabled', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const urlsA = new RedisDisabledUrls(a, { keyPrefix, maxUrls: 1000 });
    const urlsB = new RedisDisabledUrls(b, { keyPrefix, maxUrls: 1000 });
    const url = 'http://127.0.0.1:9/gone';
    await urlsA.disable(url, T0);
    expect(await resentAfter(a, () => urlsA.enable(url), () => urlsB.disable(url, T0 + 5))).toBe(true);
    expect(await urlsB.list()).toEqual([{ url, disabledAt: T0 + 5 }]);
    await resentAfter(a, () => urlsA.disable(url, T0 + 6), () => urlsB.enable(url));
    expect(await urlsB.isDisabled(url)).toBe(false);
  });

  it('billing: an update sent again after another replica changed the subscription answers updated (the service refunds a charge it is told lost), and the later change stands', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const billingOf = (client: Redis) => new RedisBillingStore(client, { keyPrefix, maxSubscriptions: 100, ttlMs: DAY }, new RedisFluxPayStore(client, { keyPrefix, ttlMs: DAY, maxRecords: 1000 }).outbox);
    const [billingA, billingB] = [billingOf(a), billingOf(b)];
    const sub = aSubscription();
    await billingA.create(sub, 'evt_created');
    const next = canceled(sub, T0 + 1) as SubscriptionRecord;
    const later = { ...next, version: next.version + 1, updatedAt: T0 + 2 };
    const outcome = await resentAfter(
      a,
      () => billingA.update({ next, invoice: null, card: null, event: { eventId: 'evt_a', eventType: 'subscription.canceled' } }),
      async () => expect((await billingB.update({ next: later, invoice: null, card: null, event: null })).kind).toBe('updated'),
    );
    expect(outcome).toEqual({ kind: 'updated', record: next });
    expect(await billingB.get(sub.subscriptionId)).toEqual(later);
  });

  it('FluxPay webhook subscriptions: an add sent again after the subscription was removed does not bring it back', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const subsA = new RedisFluxPaySubscriptionStore(a, { keyPrefix, maxSubscriptions: 10 });
    const subsB = new RedisFluxPaySubscriptionStore(b, { keyPrefix, maxSubscriptions: 10 });
    const subscription = { subscriptionId: 'whs_1', url: 'http://127.0.0.1:9/hook', events: ['order.completed'], createdAt: T0 };
    const added = await resentAfter(a, () => subsA.add(subscription as never), () => subsB.remove('whs_1'));
    expect(added).toEqual({ kind: 'created', record: subscription });
    expect(await subsB.list()).toEqual([]);
  });

  const ROOM = { admitPerSecond: 1, admissionTtlSeconds: 1, protectedServiceIds: ['svc'], maxActive: null, active: true };

  it('waiting rooms: an entry sent again after its ticket was admitted and expired (another replica read the room meanwhile), later than its kept reply lasts, answers its ticket as it is, and makes none again', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, maxRooms: 10, maxTickets: 10, ttlMs: 60_000 };
    const [roomsA, roomsB] = [new RedisWaitingRoomStore(a, options), new RedisWaitingRoomStore(b, options)];
    await roomsA.putRoom('room_1', ROOM, T0);
    expect((await roomsA.enter('room_1', 'alice', { ticket: 'wrt_a', admissionToken: 'adm_a' }, T0)).kind).toBe('entered');
    // Bob waits a second; admitted at T0 + 1000, his token expired at T0 + 2000, when replica B looks.
    // Its kept reply gone meanwhile too (sent again after RESENT_WITHIN_MS): the ticket itself is found.
    const entered = await resentAfter(
      a,
      () => roomsA.enter('room_1', 'bob', { ticket: 'wrt_b', admissionToken: 'adm_b' }, T0 + 10),
      async () => {
        await roomsB.getRoom('room_1', T0 + 2100);
        for (const key of await b.keys(`${keyPrefix}wr:kept:*`)) await b.del(key);
      },
    );
    expect(entered.kind === 'entered' ? [entered.kind, entered.ticket] : entered).toEqual([
      'entered',
      { ticket: 'wrt_b', roomId: 'room_1', userId: 'bob', sequence: 2, status: 'EXPIRED', enteredAt: T0 + 10, admittedAt: T0 + 1000, admissionToken: 'adm_b', expiresAt: T0 + 2000, usedAt: null, usedFor: null },
    ]);
    // Before 2026-12-06 it was made again, WAITING: 3 entered, 3 tickets counted for 2 held, and
    // after everything ended and was swept, 1 still counted, for good.
    expect([(await roomsB.getRoom('room_1', T0 + 2200))?.room.entered, await a.get(`${keyPrefix}wr:n`)]).toEqual([2, '2']);
    await roomsB.getRoom('room_1', T0 + 600_000);
    expect(await roomsB.sweep(T0 + 6_000_000)).toBe(2);
    expect(await roomsB.stats()).toEqual({ size: 0, max: 10 });
  });

  it('waiting rooms: an entry sent again after its ticket was admitted, expired and evicted at the bound (other entries on replica B) answers entered with its ticket as it made it, and makes none again', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, maxRooms: 10, maxTickets: 2, ttlMs: 60_000 };
    const [roomsA, roomsB] = [new RedisWaitingRoomStore(a, options), new RedisWaitingRoomStore(b, options)];
    await roomsA.putRoom('room_1', ROOM, T0);
    await roomsA.enter('room_1', 'alice', { ticket: 'wrt_a', admissionToken: 'adm_a' }, T0);
    // Bob: admitted at T0 + 1000, expired at T0 + 2000; at T0 + 3100 carol's entry evicts alice's ticket, dave's bob's.
    const entered = await resentAfter(
      a,
      () => roomsA.enter('room_1', 'bob', { ticket: 'wrt_b', admissionToken: 'adm_b' }, T0 + 10),
      async () => {
        for (const user of ['carol', 'dave']) await roomsB.enter('room_1', user, { ticket: `wrt_${user}`, admissionToken: `adm_${user}` }, T0 + 3100);
        expect(await roomsB.getTicket('room_1', 'wrt_b', T0 + 3100)).toBeUndefined();
      },
    );
    // Before (a review): full, a 503 for an entry that was made (or, with room, the ticket made again).
    expect(entered.kind === 'entered' ? [entered.kind, entered.ticket] : entered).toEqual([
      'entered',
      { ticket: 'wrt_b', roomId: 'room_1', userId: 'bob', sequence: 2, status: 'WAITING', enteredAt: T0 + 10, admittedAt: null, admissionToken: 'adm_b', expiresAt: null, usedAt: null, usedFor: null },
    ]);
    expect([(await roomsB.getRoom('room_1', T0 + 3200))?.room.entered, await roomsB.stats()]).toEqual([4, { size: 2, max: 2 }]);
  });

  it('waiting rooms: a token use sent again after its ticket, used in its token’s last moment, was evicted at the bound answers used, not invalid', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, maxRooms: 10, maxTickets: 2, ttlMs: 60_000 };
    const [roomsA, roomsB] = [new RedisWaitingRoomStore(a, options), new RedisWaitingRoomStore(b, options)];
    await roomsA.putRoom('room_1', { ...ROOM, admitPerSecond: 100 }, T0);
    await roomsA.enter('room_1', 'alice', { ticket: 'wrt_a', admissionToken: 'adm_a' }, T0);
    await roomsA.enter('room_1', 'bob', { ticket: 'wrt_b', admissionToken: 'adm_b' }, T0);
    // Both admitted by now: the use admits nothing (a use that admitted tickets kept its reply already).
    expect((await roomsA.getRoom('room_1', T0 + 500))?.room.admitted).toBe(2);
    // Alice's token expires at T0 + 1000; used at T0 + 990, her ticket has ended by T0 + 1001, when
    // carol's entry on replica B finds the store full and evicts it.
    const used = await resentAfter(a, () => roomsA.useToken('svc', 'adm_a', 'ord_1', T0 + 990), () => roomsB.enter('room_1', 'carol', { ticket: 'wrt_c', admissionToken: 'adm_c' }, T0 + 1001));
    expect(await roomsB.getTicket('room_1', 'wrt_a', T0 + 1002)).toBeUndefined();
    // Before 2026-12-06: invalid, and the order was refused (403 WAIT_001).
    expect(used.kind === 'used' ? [used.kind, used.ticket] : used).toEqual([
      'used',
      { ticket: 'wrt_a', roomId: 'room_1', userId: 'alice', sequence: 1, status: 'ADMITTED', enteredAt: T0, admittedAt: T0, admissionToken: 'adm_a', expiresAt: T0 + 1000, usedAt: T0 + 990, usedFor: 'ord_1' },
    ]);
  });

  /** Two replicas' intent stores at a bound of `maxIntents`, each with its scheduler (as the service has them on Redis). */
  function intentStores(maxIntents: number): { a: Redis; storeA: RedisIntentStore; storeB: RedisIntentStore } {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, ttlMs: DAY, maxIntents };
    return { a, storeA: new RedisIntentStore(a, { ...options, scheduler: new RedisSchedulerStore(a, { keyPrefix }) }), storeB: new RedisIntentStore(b, { ...options, scheduler: new RedisSchedulerStore(b, { keyPrefix }) }) };
  }

  it('intents: a cancel sent again after another replica’s create evicted the intent it cancelled (the oldest final one, at the bound) answers its cancel, not not found', async () => {
    const { a, storeA, storeB } = intentStores(2);
    const [old, other, next] = [anIntent({ createdAt: T0 }), anIntent({ createdAt: T0 + 1 }), anIntent({ createdAt: T0 + 2 })];
    for (const intent of [old, other]) await storeA.insert(intent);
    const job = { kind: 'intent.cancel_event', key: old.id, dueAt: T0 + 30_000 };
    const cancelled = await resentAfter(a, () => storeA.cancelScheduled!(old.id, T0 + 10, job), async () => expect(await storeB.insert(next)).toEqual({ ok: true }));
    // Before 2026-12-06: { ok: false, current: undefined } (its token went with the record), and the service answered 404, its event never sent.
    expect(cancelled).toEqual({ ok: true, record: { ...old, status: 'CANCELLED', updatedAt: T0 + 10 } });
    expect(await storeB.get(old.id)).toBeUndefined();
  });

  it('intents: a refund sent again together with the create that evicted the intent it refunded in full answers its refund, not not found', async () => {
    const { a, storeA } = intentStores(2);
    const approved = anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0, createdAt: T0 });
    const [pending, next] = [anIntent({ createdAt: T0 + 1 }), anIntent({ createdAt: T0 + 2 })];
    for (const intent of [approved, pending]) await storeA.insert(intent);
    // Both scripts loaded first, so the two calls run in the order sent.
    await storeA.refundScheduled!('pay_none', 1, T0, { kind: 'intent.refund_event', key: 'pay_none', dueAt: T0 });
    const job = { kind: 'intent.refund_event', key: approved.id, dueAt: T0 + 30_000 };
    const [refund, insert] = await sentTogetherTwice<unknown>(a, [() => storeA.refundScheduled!(approved.id, undefined, T0 + 10, job, 'token-1'), () => storeA.insert(next)]);
    expect(insert).toEqual({ ok: true });
    // Before 2026-12-06: { kind: 'not_found' }.
    expect(refund).toEqual({ kind: 'refunded', intent: { ...approved, status: 'REFUNDED', refundedAmount: 1000, updatedAt: T0 + 10 }, amount: 1000, at: T0 + 10 });
  });

  it('/api/v2 payments: a create sent again after another replica confirmed the payment by hand answers created, not a replay', async () => {
    const { keyPrefix, a, b } = twoReplicas();
    const options = { keyPrefix, ttlMs: DAY, maxPayments: 100 };
    const storeA = new RedisV2PaymentStore(a, { ...options, scheduler: new RedisSchedulerStore(a, { keyPrefix }) });
    const storeB = new RedisV2PaymentStore(b, { ...options, scheduler: new RedisSchedulerStore(b, { keyPrefix }) });
    const payment = aV2Payment({ createdAt: T0 });
    const job = { kind: 'v2.decide', key: payment.id, dueAt: T0 + 3_000 };
    const begun = await resentAfter(a, () => storeA.beginScheduled!(payment, job), async () => expect(await storeB.complete(payment.id, 'manual', T0 + 5)).toMatchObject({ ok: true }));
    // Before 2026-12-06 the confirm's token had replaced the begin's: existing, answered as a replay, its payment_created never published.
    const completed = await storeB.get(payment.id);
    expect(completed?.status).toBe('PAYMENT_COMPLETED');
    expect(begun).toEqual({ kind: 'created', payment: completed });
  });
});
