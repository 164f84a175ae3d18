import { describe, expect, it } from 'vitest';
import { RedisBookingStore } from '../../src/adapters/redis/bookings.ts';
import { RedisFaultRuleStore } from '../../src/adapters/redis/fault-rules.ts';
import { RedisFluxPaySubscriptionStore } from '../../src/adapters/redis/fluxpay-subscriptions.ts';
import { RedisRateLimitStore } from '../../src/adapters/redis/rate-limits.ts';
import { RedisRevokedSessions } from '../../src/adapters/redis/revoked-sessions.ts';
import { RedisV2PaymentStore } from '../../src/adapters/redis/v2-payments.ts';
import { RedisWaitingRoomStore } from '../../src/adapters/redis/waiting-rooms.ts';
import type { Booking } from '../../src/core/bookings/booking.ts';
import type { FaultRule } from '../../src/core/faults/model.ts';
import { parseRule } from '../../src/core/faults/validation.ts';
import type { RoomSettings } from '../../src/core/waiting-room/room.ts';
import { sentTogetherTwice, sentTwice, type TestRedis, withRedisServer } from '../helpers/redis.ts';
import { bookingStoreContract } from './contracts/bookings.contract.ts';
import { faultRuleStoreContract } from './contracts/fault-rules.contract.ts';
import { fluxPaySubscriptionStoreContract } from './contracts/fluxpay-subscriptions.contract.ts';
import { aBooking, anInboxEvent, aV2Payment, DAY, HOUR, MINUTE, T0, tally } from './contracts/fixtures.ts';
import { rateLimitStoreContract } from './contracts/rate-limits.contract.ts';
import { revokedSessionStoreContract } from './contracts/revoked-sessions.contract.ts';
import { v2PaymentStoreContract } from './contracts/v2-payments.contract.ts';
import { waitingRoomStoreContract } from './contracts/waiting-rooms.contract.ts';

/**
 * The shared port contracts against the Redis adapters of records (bookings and their inbox, the
 * /api/v2 payments, waiting rooms, rate limits, FluxPay's webhook subscriptions, fault rules), on a
 * private redis-server this file starts (test/helpers/redis.ts), each store on a key prefix of its
 * own; then what only several connections can show: two replicas (two clients on one prefix)
 * racing each other. Skipped without redis-server locally; in CI its absence fails.
 */

withRedisServer('Redis adapters of records', (server) => {
  bookingStoreContract('redis', ({ ttlMs, maxBookings }) => new RedisBookingStore(server().client, { keyPrefix: server().newPrefix(), ttlMs, maxBookings }));
  v2PaymentStoreContract('redis', ({ ttlMs, maxPayments }) => new RedisV2PaymentStore(server().client, { keyPrefix: server().newPrefix(), ttlMs, maxPayments }));
  waitingRoomStoreContract('redis', ({ maxRooms, maxTickets, ttlMs }) => new RedisWaitingRoomStore(server().client, { keyPrefix: server().newPrefix(), maxRooms, maxTickets, ttlMs }));
  rateLimitStoreContract('redis', ({ maxKeys }) => new RedisRateLimitStore(server().client, { keyPrefix: server().newPrefix(), maxKeys }));
  revokedSessionStoreContract('redis', ({ max }) => new RedisRevokedSessions(server().client, { keyPrefix: server().newPrefix(), max }));
  fluxPaySubscriptionStoreContract('redis', ({ maxSubscriptions }) => new RedisFluxPaySubscriptionStore(server().client, { keyPrefix: server().newPrefix(), maxSubscriptions }));
  faultRuleStoreContract('redis', ({ maxRules }) => new RedisFaultRuleStore(server().client, { keyPrefix: server().newPrefix(), maxRules }));

  /** `count` stores of one kind on one prefix, each on a connection of its own: replicas of one service. */
  function replicas<S>(count: number, make: (client: TestRedis['client'], keyPrefix: string) => S): S[] {
    const redis = server();
    const keyPrefix = redis.newPrefix();
    return Array.from({ length: count }, () => make(redis.connect(), keyPrefix));
  }

  describe('Redis adapters of records across connections', () => {
    const ROOM: RoomSettings = { admitPerSecond: 0, admissionTtlSeconds: 60, protectedServiceIds: ['svc_concert'], maxActive: null, active: true };

    it('waiting room: 600 users entering through two replicas at once get sequence numbers 1 … 600, one ticket each', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 10_000, ttlMs: HOUR })) as [RedisWaitingRoomStore, RedisWaitingRoomStore];
      await a.putRoom('room_1', ROOM, T0);
      // Every user enters twice, once through each replica.
      const outcomes = await Promise.all(
        Array.from({ length: 1_200 }, (_, i) => (i % 2 === 0 ? a : b).enter('room_1', `user_${i >> 1}`, { ticket: `wrt_${i}`, admissionToken: `adm_${i}` }, T0)),
      );
      expect(tally(outcomes)).toEqual({ entered: 600, existing: 600 });
      const tickets = outcomes.map((o) => (o.kind === 'entered' || o.kind === 'existing' ? o.ticket : undefined));
      expect(tickets.map((t) => t?.sequence).filter((s, i) => outcomes[i]?.kind === 'entered').sort((x, y) => (x as number) - (y as number))).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
      for (let user = 0; user < 600; user++) expect(tickets[2 * user]?.ticket).toBe(tickets[2 * user + 1]?.ticket);
      expect((await b.getRoom('room_1', T0))?.room).toMatchObject({ entered: 600, admitted: 0 });
      expect(await a.stats()).toEqual({ size: 600, max: 10_000 });
    });

    it('waiting room: admissions seen through two replicas are each handed out once, at their own times', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 10_000, ttlMs: HOUR })) as [RedisWaitingRoomStore, RedisWaitingRoomStore];
      await a.putRoom('room_1', { ...ROOM, admitPerSecond: 3 }, T0);
      for (let i = 0; i < 30; i++) await (i % 2 === 0 ? a : b).enter('room_1', `user_${i}`, { ticket: `wrt_${i}`, admissionToken: `adm_${i}` }, T0);
      const polls = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).getRoom('room_1', T0 + 10_000)));
      const admitted = polls.flatMap((p) => p?.admitted ?? []);
      // Ticket 1 was admitted on entering; 2 … 30 once each, 1000/3 ms apart (fractional times, bit for bit).
      expect(admitted.map((t) => t.sequence).sort((x, y) => x - y)).toEqual(Array.from({ length: 29 }, (_, i) => i + 2));
      expect(admitted.map((t) => t.admittedAt).sort((x, y) => (x as number) - (y as number))).toEqual(Array.from({ length: 29 }, (_, i) => {
        let at = T0;
        for (let k = 0; k <= i; k++) at += 1000 / 3;
        return at;
      }));
    });

    it('waiting room: one token used through two replicas at once is used once', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 10_000, ttlMs: HOUR })) as [RedisWaitingRoomStore, RedisWaitingRoomStore];
      await a.putRoom('room_1', { ...ROOM, admitPerSecond: 10 }, T0);
      const entered = await a.enter('room_1', 'user_1', { ticket: 'wrt_1', admissionToken: 'adm_1' }, T0);
      expect(entered).toMatchObject({ kind: 'entered', ticket: { status: 'ADMITTED' } });
      const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).useToken('svc_concert', 'adm_1', `ord_${i}`, T0 + 1)));
      expect(tally(outcomes)).toEqual({ used: 1, already_used: 99 });
      // It holds its slot until its order is written; spent through both at once, it frees it once.
      expect((await b.getRoom('room_1', T0 + 1))?.room).toMatchObject({ used: 1, activeCount: 1 });
      const order = `ord_${outcomes.findIndex((o) => o.kind === 'used')}`;
      const spends = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).spendToken('adm_1', order, T0 + 2)));
      expect(spends.filter((s) => s.spent)).toHaveLength(1);
      expect((await a.getRoom('room_1', T0 + 2))?.room).toMatchObject({ used: 1, activeCount: 0 });
    });

    it('waiting room: an entry and a token use whose script the client sent twice (its reply lost, sent again after a reconnect) enter once and use the token once, for its order, answered as the first run', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisWaitingRoomStore(client, { keyPrefix: redis.newPrefix(), maxRooms: 10, maxTickets: 100, ttlMs: HOUR });
      await store.putRoom('room_1', { ...ROOM, admitPerSecond: 10 }, T0);
      expect(await sentTwice(client, () => store.enter('room_1', 'user_1', { ticket: 'wrt_1', admissionToken: 'adm_1' }, T0))).toMatchObject({ kind: 'entered', ticket: { ticket: 'wrt_1', sequence: 1 } });
      expect(await store.enter('room_1', 'user_1', { ticket: 'wrt_2', admissionToken: 'adm_2' }, T0)).toMatchObject({ kind: 'existing', ticket: { ticket: 'wrt_1' } });
      const used = await sentTwice(client, () => store.useToken('svc_concert', 'adm_1', 'ord_1', T0 + 1));
      expect(used).toMatchObject({ kind: 'used', ticket: { admissionToken: 'adm_1', usedFor: 'ord_1', usedAt: T0 + 1 } });
      expect((await store.getRoom('room_1', T0 + 1))?.room).toMatchObject({ used: 1, activeCount: 1 });
      expect(await sentTwice(client, () => store.spendToken('adm_1', 'ord_1', T0 + 1))).toEqual({ spent: true, roomId: 'room_1', admitted: [], nextDueAt: null });
      expect((await store.getRoom('room_1', T0 + 1))?.room).toMatchObject({ used: 1, activeCount: 0 });
      // Another order with that token is refused.
      expect(await store.useToken('svc_concert', 'adm_1', 'ord_2', T0 + 2)).toMatchObject({ kind: 'already_used', ticket: { usedFor: 'ord_1' } });
      client.disconnect();
    });

    it('waiting room: a PUT that makes a room, a read that admits and a token given back, each sent twice, answer as the first run (created, the tickets admitted, released)', async () => {
      const redis = server();
      const client = redis.connect();
      const keyPrefix = redis.newPrefix();
      const store = new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 100, ttlMs: HOUR });
      expect(await sentTwice(client, () => store.putRoom('room_1', { ...ROOM, admitPerSecond: 0 }, T0))).toMatchObject({ kind: 'created', admitted: [] });
      for (const user of ['user_1', 'user_2']) await store.enter('room_1', user, { ticket: `wrt_${user}`, admissionToken: `adm_${user}` }, T0);
      // Admission starts (10 a second): a PUT that admits the first at once, sent twice, tells of it.
      const started = await sentTwice(client, () => store.putRoom('room_1', { ...ROOM, admitPerSecond: 10 }, T0 + 1));
      expect(started).toMatchObject({ kind: 'updated', admitted: [{ ticket: 'wrt_user_1', status: 'ADMITTED', admittedAt: T0 + 1 }] });
      // A read 100 ms on admits the second; sent twice, it still says so (a second run admits nobody).
      const read = await sentTwice(client, () => store.getRoom('room_1', T0 + 101));
      expect(read?.admitted).toMatchObject([{ ticket: 'wrt_user_2', status: 'ADMITTED', admittedAt: T0 + 101 }]);
      expect(read?.room).toMatchObject({ entered: 2, admitted: 2, activeCount: 2 });
      // A read that admits nobody keeps nothing: the only replies kept are the three above.
      expect(await sentTwice(client, () => store.getRoom('room_1', T0 + 102))).toMatchObject({ admitted: [] });
      const used = await store.useToken('svc_concert', 'adm_user_1', 'ord_1', T0 + 200);
      expect(used).toMatchObject({ kind: 'used' });
      expect(await sentTwice(client, () => store.releaseToken('adm_user_1', 'ord_1', T0 + 300))).toEqual({ released: true, admitted: [] });
      expect((await store.getRoom('room_1', T0 + 300))?.room).toMatchObject({ used: 0, activeCount: 2 });
      // The three above, the token given back, its use and the two entries (since 2026-12-06 a use that answers used and an entry that answers entered are kept).
      expect(await client.keys(`${keyPrefix}wr:kept:*`)).toHaveLength(7);
      client.disconnect();
    });

    it('waiting room: an entry refused as full that admitted a ticket on the way, sent twice, still answers that admission (a second run admits nobody)', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisWaitingRoomStore(client, { keyPrefix: redis.newPrefix(), maxRooms: 10, maxTickets: 2, ttlMs: HOUR });
      await store.putRoom('room_1', { ...ROOM, admitPerSecond: 10 }, T0);
      for (const user of ['user_1', 'user_2']) await store.enter('room_1', user, { ticket: `wrt_${user}`, admissionToken: `adm_${user}` }, T0);
      const refused = await sentTwice(client, () => store.enter('room_1', 'user_3', { ticket: 'wrt_3', admissionToken: 'adm_3' }, T0 + 150));
      expect(refused).toMatchObject({ kind: 'full', admitted: [{ ticket: 'wrt_user_2', status: 'ADMITTED', admittedAt: T0 + 100 }], nextDueAt: null, room: { entered: 2, admitted: 2 } });
      expect(await store.getTicket('room_1', 'wrt_3', T0 + 150)).toBeUndefined();
      client.disconnect();
    });

    it('waiting room: an entry refused as full after its own sweep removed tickets it had just admitted still answers those admissions (a bound lowered on the same Redis)', async () => {
      const redis = server();
      const client = redis.connect();
      const keyPrefix = redis.newPrefix();
      const roomy = new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 10, ttlMs: MINUTE });
      await roomy.putRoom('room_1', { ...ROOM, admitPerSecond: 10, admissionTtlSeconds: 1 }, T0);
      await roomy.putRoom('room_2', { ...ROOM, admitPerSecond: 0 }, T0);
      for (const user of ['a', 'b', 'c']) await roomy.enter('room_1', user, { ticket: `wrt_${user}`, admissionToken: `adm_${user}` }, T0);
      // Two tickets that stay WAITING (room_2 admits nobody): live, never evicted.
      for (const user of ['d', 'e']) await roomy.enter('room_2', user, { ticket: `wrt_${user}`, admissionToken: `adm_${user}` }, T0);
      // Restarted with a bound of 2: an hour on, b and c are admitted (and long expired), then swept with a; d and e fill the store.
      const tight = new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: 10, maxTickets: 2, ttlMs: MINUTE });
      const refused = await tight.enter('room_1', 'x', { ticket: 'wrt_x', admissionToken: 'adm_x' }, T0 + HOUR);
      expect(refused).toMatchObject({
        kind: 'full',
        admitted: [
          { ticket: 'wrt_b', userId: 'b', status: 'EXPIRED', admittedAt: T0 + 100, expiresAt: T0 + 1_100 },
          { ticket: 'wrt_c', userId: 'c', status: 'EXPIRED', admittedAt: T0 + 200, expiresAt: T0 + 1_200 },
        ],
        nextDueAt: null,
      });
      expect(await tight.getTicket('room_1', 'wrt_b', T0 + HOUR)).toBeUndefined();
      expect(await tight.stats()).toEqual({ size: 2, max: 2 });
      client.disconnect();
    });

    it('fault rules: a create and claims whose script the client sent twice make the rule once and count each match and hit once, answered as the first run', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisFaultRuleStore(client, { keyPrefix: redis.newPrefix(), maxRules: 10 });
      const parsed = parseRule({ action: { type: 'error', status: 503 }, count: 2 }, { now: T0 });
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
      const rule = { ...parsed.value.input, id: 'rule_twice', createdAt: T0 } as FaultRule;
      expect(await sentTwice(client, () => store.create('default', rule))).toEqual({ ok: true });
      expect(await store.create('default', rule)).toEqual({ ok: false, reason: 'exists' });
      expect(await sentTwice(client, () => store.claimHit('default', rule.id, true, T0 + 1))).toEqual({ kind: 'applied', hits: 1 });
      expect(await sentTwice(client, () => store.claimHit('default', rule.id, false, T0 + 2))).toEqual({ kind: 'skipped', reason: 'probability' });
      expect(await sentTwice(client, () => store.claimHit('default', rule.id, true, T0 + 3))).toEqual({ kind: 'applied', hits: 2 });
      expect(await sentTwice(client, () => store.claimHit('default', rule.id, true, T0 + 4))).toEqual({ kind: 'skipped', reason: 'exhausted' });
      expect(await store.get('default', rule.id)).toMatchObject({ hits: 2, matched: 4, lastHitAt: T0 + 3 });
      // Several claims of one rule waiting at once, all sent again: each counted once.
      const other = { ...rule, id: 'rule_together', count: 3 } as FaultRule;
      await store.create('default', other);
      const claims = await sentTogetherTwice(client, [() => store.claimHit('default', other.id, true, T0 + 5), () => store.claimHit('default', other.id, true, T0 + 5), () => store.claimHit('default', other.id, false, T0 + 5)]);
      expect(claims).toEqual([{ kind: 'applied', hits: 1 }, { kind: 'applied', hits: 2 }, { kind: 'skipped', reason: 'probability' }]);
      expect(await store.get('default', other.id)).toMatchObject({ hits: 2, matched: 3 });
      // A delete and a namespace's delete, sent twice, answer as they did: the rule deleted, the rules counted.
      expect(await sentTwice(client, () => store.delete('default', rule.id))).toBe(true);
      expect(await store.delete('default', rule.id)).toBe(false);
      await store.create('other', { ...rule, id: 'rule_other_1' } as FaultRule);
      await store.create('other', { ...rule, id: 'rule_other_2' } as FaultRule);
      expect(await sentTwice(client, () => store.deleteAll('other'))).toBe(2);
      expect(await store.list('other')).toEqual([]);
      expect(await store.list('default')).toMatchObject([{ rule: { id: other.id } }]);
      client.disconnect();
    });

    it('FluxPay webhook subscriptions: an add whose script the client sent twice fills the last place once and answers created; a remove sent twice answers the subscription removed', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisFluxPaySubscriptionStore(client, { keyPrefix: redis.newPrefix(), maxSubscriptions: 1 });
      const subscription = { subscriptionId: 'whs_twice', url: 'http://127.0.0.1:1/hooks', events: [], createdAt: T0 };
      expect(await sentTwice(client, () => store.add(subscription))).toEqual({ kind: 'created', record: subscription });
      expect(await store.list()).toEqual([subscription]);
      expect(await sentTwice(client, () => store.remove(subscription.subscriptionId))).toEqual(subscription);
      expect(await store.remove(subscription.subscriptionId)).toBeUndefined();
      expect(await store.list()).toEqual([]);
      client.disconnect();
    });

    it('bookings: two replicas paying, cancelling and processing the inbox event of one booking at once', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisBookingStore(client, { keyPrefix, ttlMs: DAY, maxBookings: 100 })) as [RedisBookingStore, RedisBookingStore];
      const booking = aBooking();
      await a.insert(booking);
      const begun = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).beginPayment(booking.id, 'user_1', 'execute', T0 + 1)));
      expect(tally(begun)).toEqual({ started: 1, already_processed: 99 });
      // While the payment is in flight no cancel goes through, on either replica.
      const cancels = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).transition(booking.id, ['pending'], 'cancelled', T0 + 2)));
      expect(cancels.filter((c) => c.ok)).toHaveLength(0);
      const event = anInboxEvent(booking.id);
      const recorded = await Promise.all([a.recordPayment(booking.id, { status: 'SUCCESS', pgMockData: null }, event), b.recordPayment(booking.id, { status: 'SUCCESS', pgMockData: null }, anInboxEvent(booking.id))]);
      expect(recorded.filter((r) => r !== undefined)).toHaveLength(1);
      const written = await a.events(booking.id);
      expect(written).toHaveLength(1);
      const marks = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).markEventProcessed((written[0] as { eventId: string }).eventId, T0 + i)));
      expect(marks.filter((m) => m?.first === true)).toHaveLength(1);
      expect(await b.counts()).toEqual({ bookings: { pending: 1, confirmed: 0, failed: 0, expired: 0, cancelled: 0 }, paymentsInFlight: 0, unprocessedEvents: 0 });
    });

    it('bookings: a call whose script the client sent twice (its reply lost, sent again after a reconnect) answers what it did; another call is a call of its own', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisBookingStore(client, { keyPrefix: redis.newPrefix(), ttlMs: DAY, maxBookings: 100 });
      const [paid, cancelled, lapsed, late] = [aBooking(), aBooking(), aBooking(), aBooking()];
      for (const booking of [paid, cancelled, lapsed, late]) await store.insert(booking);

      expect(await sentTwice(client, () => store.beginPayment(paid.id, 'user_1', 'execute', T0 + 1))).toEqual({ kind: 'started', booking: { ...paid, paymentInFlight: 'execute' } });
      const event = anInboxEvent(paid.id);
      const intent = { status: 'SUCCESS' as const, pgMockData: null };
      const recorded = { ...paid, paymentIntent: intent };
      expect(await sentTwice(client, () => store.recordPayment(paid.id, intent, event))).toEqual(recorded);
      expect(await store.events(paid.id)).toEqual([event]);
      expect(await sentTwice(client, () => store.transition(paid.id, ['pending'], 'confirmed', T0 + 2))).toEqual({ ok: true, record: { ...recorded, status: 'confirmed', settledAt: T0 + 2 } });
      expect(await sentTwice(client, () => store.transition(cancelled.id, ['pending'], 'cancelled', T0 + 3, { unpaid: true }))).toEqual({ ok: true, record: { ...cancelled, status: 'cancelled', settledAt: T0 + 3 } });
      const expired = { ...lapsed, status: 'expired' as const, settledAt: lapsed.expiresAt };
      expect(await sentTwice(client, () => store.expireIfDue(lapsed.id, lapsed.expiresAt))).toEqual(expired);
      expect(await sentTwice(client, () => store.beginPayment(late.id, 'user_1', 'direct', late.expiresAt))).toEqual({ kind: 'expired_now', booking: { ...late, status: 'expired', settledAt: late.expiresAt } });
      expect(await store.counts()).toEqual({ bookings: { pending: 0, confirmed: 1, failed: 0, expired: 2, cancelled: 1 }, paymentsInFlight: 0, unprocessedEvents: 1 });

      // Other calls, each with its own token, are refused as before.
      expect(await store.transition(cancelled.id, ['pending'], 'cancelled', T0 + 3, { unpaid: true })).toEqual({ ok: false, current: { ...cancelled, status: 'cancelled', settledAt: T0 + 3 } });
      expect(await store.expireIfDue(lapsed.id, lapsed.expiresAt)).toBeUndefined();
      expect(await store.beginPayment(late.id, 'user_1', 'direct', late.expiresAt)).toEqual({ kind: 'expired', booking: { ...late, status: 'expired', settledAt: late.expiresAt } });
      expect(await store.recordPayment(paid.id, intent, anInboxEvent(paid.id))).toBeUndefined();
      client.disconnect();
    });

    it('bookings: a takeover sent twice starts once (the in-flight count 1) and says it took over (before 2026-12-06 the second run left that out); a payment begun by an earlier version (f and ct written, no fl or ft) is not taken over by a lostAfter an earlier payment of the booking left (a review)', async () => {
      const redis = server();
      const client = redis.connect();
      const keyPrefix = redis.newPrefix();
      const store = new RedisBookingStore(client, { keyPrefix, ttlMs: DAY, maxBookings: 100 });
      const [taken, upgraded] = [aBooking(), aBooking()];
      for (const booking of [taken, upgraded]) await store.insert(booking);
      await store.beginPayment(taken.id, 'user_1', 'execute', T0 + 1, 'tok_gone', T0 + 2);
      expect(await sentTwice(client, () => store.beginPayment(taken.id, 'user_1', 'direct', T0 + 3, 'tok_new', T0 + 4))).toEqual({ kind: 'started', booking: { ...taken, paymentInFlight: 'direct' }, tookOver: true });
      expect((await store.counts()).paymentsInFlight).toBe(1);

      await store.beginPayment(upgraded.id, 'user_1', 'execute', T0 + 1, 'tok_first', T0 + 2);
      await store.abortPayment(upgraded.id, 'tok_first');
      // An earlier version's begin: the in-flight mark and its token, nothing of lostAfter.
      await client.hset(`${keyPrefix}bk:r:${upgraded.id}`, 'f', 'execute', 'ct', 'tok_old');
      await client.hincrby(`${keyPrefix}bk:counts`, 'inflight', 1);
      expect(await store.beginPayment(upgraded.id, 'user_1', 'direct', T0 + 10, 'tok_new', T0 + 20)).toEqual({ kind: 'already_processed', booking: { ...upgraded, paymentInFlight: 'execute' } });
      client.disconnect();
    });

    it('bookings: a cancel sent twice answers as its first run: one that took a lost payment over cancels once (cancelled, the in-flight count 0) and says it took over (before 2026-12-06 the second run left that out, so the cancel logged no warning); one that found the hold lapsed is expiredNow again, not cancelled', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisBookingStore(client, { keyPrefix: redis.newPrefix(), ttlMs: DAY, maxBookings: 100 });
      const [taken, lapsed] = [aBooking(), aBooking()];
      for (const booking of [taken, lapsed]) await store.insert(booking);
      await store.beginPayment(taken.id, 'user_1', 'execute', T0 + 1, 'tok_gone', T0 + 2);
      const cancelled: Booking = { ...taken, status: 'cancelled', settledAt: T0 + 3 };
      expect(await sentTwice(client, () => store.transition(taken.id, ['pending'], 'cancelled', T0 + 3, { unpaid: true }))).toEqual({ ok: true, record: cancelled, tookOver: true });
      await store.beginPayment(lapsed.id, 'user_1', 'execute', T0 + 1, 'tok_gone', T0 + 2);
      const expired: Booking = { ...lapsed, status: 'expired', settledAt: lapsed.expiresAt };
      expect(await sentTwice(client, () => store.transition(lapsed.id, ['pending'], 'cancelled', lapsed.expiresAt, { unpaid: true }))).toEqual({ ok: false, current: expired, expiredNow: true, tookOver: true });
      const counts = await store.counts();
      expect([counts.bookings.cancelled, counts.bookings.expired, counts.bookings.pending, counts.paymentsInFlight]).toEqual([1, 1, 0, 0]);
      client.disconnect();
    });

    it('bookings: an insert and an inbox mark whose script the client sent twice store and count the booking once (at the bound too, not refused as full) and answer the mark as first', async () => {
      const redis = server();
      const client = redis.connect();
      const store = new RedisBookingStore(client, { keyPrefix: redis.newPrefix(), ttlMs: DAY, maxBookings: 2 });
      const [first, last] = [aBooking(), aBooking()];
      expect(await sentTwice(client, () => store.insert(first))).toEqual({ ok: true, evicted: [] });
      // The second fills the store: its second run must not find it full (the caller would free the seats of a stored booking).
      expect(await sentTwice(client, () => store.insert(last))).toEqual({ ok: true, evicted: [] });
      expect(await store.get(last.id)).toEqual(last);
      expect(await store.counts()).toEqual({ bookings: { pending: 2, confirmed: 0, failed: 0, expired: 0, cancelled: 0 }, paymentsInFlight: 0, unprocessedEvents: 0 });
      await store.transition(first.id, ['pending'], 'cancelled', T0 + 1);
      expect((await store.counts()).bookings).toEqual({ pending: 1, confirmed: 0, failed: 0, expired: 0, cancelled: 1 });

      await store.beginPayment(last.id, 'user_1', 'execute', T0 + 1);
      const event = anInboxEvent(last.id);
      await store.recordPayment(last.id, { status: 'SUCCESS', pgMockData: null }, event);
      // First, as the first run answered: else booking.event_processed would never be published.
      expect(await sentTwice(client, () => store.markEventProcessed(event.eventId, T0 + 2))).toEqual({ first: true, event: { ...event, processedAt: T0 + 2 } });
      expect((await store.counts()).unprocessedEvents).toBe(0);
      // Another mark of that event is not first.
      expect(await store.markEventProcessed(event.eventId, T0 + 3)).toEqual({ first: false, event: { ...event, processedAt: T0 + 2 } });
      client.disconnect();
    });

    it('v2 payments: 200 begins of one tx_id through two replicas create one payment', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisV2PaymentStore(client, { keyPrefix, ttlMs: DAY, maxPayments: 1_000 })) as [RedisV2PaymentStore, RedisV2PaymentStore];
      const payment = aV2Payment();
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).begin({ ...payment })));
      expect(tally(outcomes)).toEqual({ created: 1, existing: 199 });
      const decided = await Promise.all([a.decide(payment.id, T0 + 1), b.decide(payment.id, T0 + 2)]);
      expect(decided.filter((d) => d.ok)).toHaveLength(1);
    });

    it('rate limits: hits through three replicas share one window', async () => {
      const stores = replicas(3, (client, keyPrefix) => new RedisRateLimitStore(client, { keyPrefix, maxKeys: 100 }));
      const windows = await Promise.all(Array.from({ length: 300 }, (_, i) => (stores[i % 3] as RedisRateLimitStore).hit('client_a:orders', 60_000, T0 + (i % 7))));
      expect(windows.map((w) => w.current).sort((x, y) => x - y)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(new Set(windows.map((w) => w.resetAt)).size).toBe(1);
    });

    it('fault rules: claims through two replicas apply a rule of count 5 exactly 5 times', async () => {
      const [a, b] = replicas(2, (client, keyPrefix) => new RedisFaultRuleStore(client, { keyPrefix, maxRules: 10 })) as [RedisFaultRuleStore, RedisFaultRuleStore];
      const rule = { id: 'rule_1', name: null, enabled: true, probability: 1, count: 5, window: { from: null, until: null }, createdAt: T0, target: 'webhook' as const, match: { urlPrefix: null }, action: { type: 'duplicate' as const } };
      expect(await a.create('default', rule)).toEqual({ ok: true });
      const revision = await b.revision('default');
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).claimHit('default', rule.id, true, T0)));
      expect(tally(outcomes)).toEqual({ applied: 5, skipped: 195 });
      await a.setEnabled('default', rule.id, false);
      expect(await b.revision('default')).not.toBe(revision);
      expect(await b.counters('default')).toEqual([{ id: 'rule_1', hits: 5, matched: 200 }]);
    });
  });
});
