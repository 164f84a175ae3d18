import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import type { WaitingRoomAdmittedEvent } from '../../src/core/events.ts';
import { ULID } from '../helpers/app.ts';
import { confirm, createOrder, createPayment, errorOf, fpError, fpGet, fluxpayApps, fpPost, resultOf, SUCCESS, type Json } from '../helpers/fluxpay.ts';
import type { TestApp } from '../helpers/app.ts';
import { metricSample } from '../helpers/webhooks.ts';

/**
 * Issue 12's virtual waiting room over HTTP, in the FluxPay dialect, on the manual clock: the
 * routes, the order guard (WAIT_001) and the fairness of admission under 10,000 concurrent entries.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const { app, closeAll } = fluxpayApps();
afterEach(closeAll);

const ROOM = { admitPerSecond: 2, admissionTtlSeconds: 60, protectedServiceIds: ['ai-writer'] };
const orderBody = { userId: 'user_1', serviceId: 'ai-writer', orderName: 'AI Writer report', amount: 15000 };

function put(t: TestApp, roomId: string, body: Json) {
  return t.app.inject({ method: 'PUT', url: `/api/v1/waiting-rooms/${roomId}`, payload: body });
}
async function enter(t: TestApp, roomId: string, userId: string): Promise<Json> {
  return resultOf(await fpPost(t, `/api/v1/waiting-rooms/${roomId}/enter`, { userId }));
}
async function ticketOf(t: TestApp, roomId: string, ticket: string): Promise<Json> {
  return resultOf(await fpGet(t, `/api/v1/waiting-rooms/${roomId}/tickets/${ticket}`));
}
function order(t: TestApp, token?: string, body: Json = orderBody) {
  return fpPost(t, '/api/v1/orders', body, token === undefined ? {} : { 'x-admission-token': token });
}
function admittedEvents(t: TestApp): WaitingRoomAdmittedEvent[] {
  const events: WaitingRoomAdmittedEvent[] = [];
  t.app.core.bus.subscribe((event) => {
    if (event.type === 'waiting_room.admitted') events.push(event);
  });
  return events;
}

describe('waiting-room routes', () => {
  it('PUT creates (201) then changes (200) a room; GET shows its size, admitted so far and current rate; 404 and 400 in the wrapper', async () => {
    const t = await app();
    const created = await put(t, 'sale', ROOM);
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      ...SUCCESS,
      result: {
        roomId: 'sale',
        admitPerSecond: 2,
        admissionTtlSeconds: 60,
        protectedServiceIds: ['ai-writer'],
        maxActive: null,
        active: true,
        size: 0,
        entered: 0,
        admitted: 0,
        activeTokens: 0,
        used: 0,
        expired: 0,
        currentRate: 2,
        nextAdmissionAt: null,
        createdAt: iso(T0),
        updatedAt: iso(T0),
      },
    });
    await t.clock.advance(1000);
    const updated = await put(t, 'sale', { ...ROOM, admitPerSecond: 5, maxActive: 10 });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().result).toMatchObject({ admitPerSecond: 5, maxActive: 10, currentRate: 5, createdAt: iso(T0), updatedAt: iso(T0 + 1000) });

    for (const user of ['u1', 'u2', 'u3']) await enter(t, 'sale', user);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ entered: 3, admitted: 1, size: 2, activeTokens: 1, currentRate: 5 });
    const paused = await put(t, 'sale', { ...ROOM, active: false });
    expect(paused.json().result).toMatchObject({ active: false, currentRate: 0, nextAdmissionAt: null });

    expect(errorOf(await fpGet(t, '/api/v1/waiting-rooms/nope'))).toEqual([404, fpError('COMMON_404', 'Waiting room nope was not found.')]);
    expect(errorOf(await fpPost(t, '/api/v1/waiting-rooms/nope/enter', { userId: 'u1' }))).toEqual([404, fpError('COMMON_404', 'Waiting room nope was not found.')]);
    expect(errorOf(await fpGet(t, `/api/v1/waiting-rooms/sale/tickets/wrt_${'0'.repeat(26)}`))).toEqual([404, fpError('COMMON_404', `Ticket wrt_${'0'.repeat(26)} was not found.`)]);
    const [status, body] = errorOf(await put(t, 'sale', { ...ROOM, admitPerSecond: -1 }));
    expect(status).toBe(400);
    expect(body).toMatchObject({ isSuccess: false, code: 'COMMON_400', result: { errors: [{ field: 'admitPerSecond' }] } });
    expect(errorOf(await fpPost(t, '/api/v1/waiting-rooms/sale/enter', {}))[1]).toMatchObject({ code: 'COMMON_400', result: { errors: [{ field: 'userId' }] } });
    // The id's rule in full: it starts with a letter or digit (2026-12-05: the message left that out).
    const rule = 'must be 1–64 letters, digits, ., _ or -, starting with a letter or digit';
    expect(errorOf(await put(t, '-sale', ROOM))).toEqual([400, fpError('COMMON_400', `params /roomId: ${rule}`, { errors: [{ field: 'path.roomId', reason: rule }] })]);
  });

  it('enter → WAITING with position and estimate; twice → the same ticket; then ADMITTED with a token and its expiry; then EXPIRED', async () => {
    const t = await app();
    await put(t, 'sale', { ...ROOM, admitPerSecond: 0 });
    const first = await enter(t, 'sale', 'u1');
    const second = await enter(t, 'sale', 'u2');
    expect(first).toMatchObject({ ticket: expect.stringMatching(new RegExp(`^wrt_${ULID}$`)), status: 'WAITING', position: 1, estimatedWaitSeconds: null, admissionToken: null });
    expect(second).toMatchObject({ status: 'WAITING', position: 2 });
    expect(await enter(t, 'sale', 'u2')).toEqual(second);

    await put(t, 'sale', ROOM); // 2 a second: u1 at once, u2 0.5 s later
    const waiting = await ticketOf(t, 'sale', second.ticket);
    expect(waiting).toMatchObject({ status: 'WAITING', position: 1, estimatedWaitSeconds: 1 }); // 0.5 s, rounded up to whole seconds
    await t.clock.advance(500);
    const admitted = await ticketOf(t, 'sale', second.ticket);
    expect(admitted).toMatchObject({ status: 'ADMITTED', position: 0, estimatedWaitSeconds: 0, admissionToken: expect.stringMatching(new RegExp(`^adm_${ULID}$`)), admittedAt: iso(T0 + 500), expiresAt: iso(T0 + 500 + 60_000) });
    expect(await enter(t, 'sale', 'u2')).toMatchObject({ ticket: second.ticket, status: 'ADMITTED' });
    await t.clock.advance(60_000);
    expect(await ticketOf(t, 'sale', second.ticket)).toMatchObject({ status: 'EXPIRED', admissionToken: admitted.admissionToken });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ admitted: 2, expired: 2, activeTokens: 0 });
  });

  it('enter takes an Idempotency-Key as every FluxPay POST does: the same request again is replayed, another body with the key is 422 COMMON_422 and enters nobody (before, the key was ignored)', async () => {
    const t = await app();
    await put(t, 'sale', { ...ROOM, admitPerSecond: 0 });
    const key = { 'idempotency-key': 'enter-1' };
    const first = await fpPost(t, '/api/v1/waiting-rooms/sale/enter', { userId: 'y1' }, key);
    const again = await fpPost(t, '/api/v1/waiting-rooms/sale/enter', { userId: 'y1' }, key);
    expect([first.statusCode, first.headers['idempotent-replayed'], again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([200, undefined, 200, 'true', first.json()]);
    expect(errorOf(await fpPost(t, '/api/v1/waiting-rooms/sale/enter', { userId: 'y2' }, key))).toEqual([422, fpError('COMMON_422', 'This Idempotency-Key was used with a different request body.')]);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ size: 1 });
  });
});

describe('the order guard', () => {
  async function admittedToken(t: TestApp, userId: string): Promise<string> {
    const ticket = await enter(t, 'sale', userId);
    await t.clock.advance(1000);
    const now = await ticketOf(t, 'sale', ticket.ticket);
    expect(now.status).toBe('ADMITTED');
    return now.admissionToken as string;
  }

  it('403 WAIT_001 without a token, with an unknown, expired or used one; a valid token buys exactly one order', async () => {
    const t = await app();
    await put(t, 'sale', ROOM);
    expect(errorOf(await order(t))).toEqual([403, fpError('WAIT_001', 'Service ai-writer is behind waiting room sale: send the X-Admission-Token of an admitted ticket.')]);
    expect(errorOf(await order(t, 'adm_nope'))).toEqual([403, fpError('WAIT_001', 'The X-Admission-Token is not a token of waiting room sale, which protects service ai-writer.')]);

    const token = await admittedToken(t, 'u1');
    const placed = resultOf(await order(t, token));
    expect(placed).toMatchObject({ status: 'PENDING', serviceId: 'ai-writer' });
    expect(errorOf(await order(t, token))).toEqual([403, fpError('WAIT_001', `This admission token was already used (for order ${placed.orderId}); enter waiting room sale again.`)]);
    const ticket = (await enter(t, 'sale', 'u1')) as Json; // a used ticket is over: a new one
    expect(ticket.admissionToken === token).toBe(false);

    const late = await admittedToken(t, 'u9');
    await t.clock.advance(60_000);
    expect(errorOf(await order(t, late))).toEqual([403, fpError('WAIT_001', /^This admission token expired at 2026-01-15T12:0\d:\d\d\.\d{3}Z; enter waiting room sale again\.$/)]);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ used: 1 });
  });

  it('services no active room protects need no token; a paused (inactive) room protects nothing', async () => {
    const t = await app();
    await put(t, 'sale', ROOM);
    expect((await createOrder(t, { serviceId: 'image-studio' })).status).toBe('PENDING');
    await put(t, 'sale', { ...ROOM, active: false });
    expect((await createOrder(t)).status).toBe('PENDING');
  });

  it('a token is spent only on an order that exists: an order refused after the guard gives it back; a declined payment does not', async () => {
    const t = await app();
    await put(t, 'sale', ROOM);
    const token = await admittedToken(t, 'u1');
    const failing = { ...orderBody, metadata: { kind: 'CREDIT_CHARGE', credits: 0 } };
    expect(errorOf(await order(t, token, failing))).toEqual([400, fpError('COMMON_400', 'metadata.credits: must be a whole number of credits from 1 to 1000000000', { errors: [{ field: 'metadata.credits', reason: 'must be a whole number of credits from 1 to 1000000000' }] })]);
    expect(resultOf(await fpGet(t, '/api/v1/orders?userId=user_1')).items).toEqual([]);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ used: 0, activeTokens: 1 });
    // The same token, with a good body: the order is created and the token spent on it.
    const placed = resultOf(await order(t, token));
    const ticket = resultOf(await fpPost(t, '/api/v1/waiting-rooms/sale/enter', { userId: 'u2' }));
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ used: 1 });
    // Its payment declined: the order stays PENDING and is paid by another payment, with no new token.
    const declined = resultOf(await fpPost(t, '/api/v1/payments', { orderId: placed.orderId, method: 'CARD', card: { number: '4111111111111111', cvv: '442' } }));
    expect(errorOf(await confirm(t, declined))[1]).toMatchObject({ code: 'PAY_002' });
    expect(resultOf(await fpGet(t, `/api/v1/orders/${placed.orderId}`)).status).toBe('PENDING');
    expect(resultOf(await confirm(t, await createPayment(t, placed.orderId))).status).toBe('APPROVED');
    expect(errorOf(await order(t, token))).toEqual([403, fpError('WAIT_001', `This admission token was already used (for order ${placed.orderId}); enter waiting room sale again.`)]);
    expect(ticket.userId).toBe('u2');
  });
});

describe('the order guard when the store fails', () => {
  it('an order not created whose token could not be given back either (the store away): the token, sent again a lease after, buys the order', async () => {
    const t = await app();
    await put(t, 'sale', { ...ROOM, admissionTtlSeconds: 300 });
    const ticket = await enter(t, 'sale', 'u1');
    await t.clock.advance(1000);
    const token = (await ticketOf(t, 'sale', ticket.ticket)).admissionToken as string;
    const { fluxpay, waitingRooms } = t.app.core.stores;
    vi.spyOn(fluxpay, 'createOrder').mockRejectedValueOnce(new Error('the store is away'));
    vi.spyOn(waitingRooms, 'releaseToken').mockRejectedValueOnce(new Error('the store is away'));
    expect((await order(t, token)).statusCode).toBe(500);
    expect(resultOf(await fpGet(t, '/api/v1/orders?userId=user_1')).items).toEqual([]);
    const usedFor = (await ticketOf(t, 'sale', ticket.ticket)).usedFor as string;
    expect(usedFor).toMatch(/^ord_/);
    // Within a lease of its use its order could still be under way (its process slow): sent again later.
    const inUse = await order(t, token);
    expect([...errorOf(inUse), inUse.headers['retry-after']]).toEqual([409, fpError('COMMON_409', `This admission token is in use by order ${usedFor}, which is still being created; send this order again in a moment: if that order is not created, the token is given back.`), '1']);
    await t.clock.advance(30_000);
    const placed = resultOf(await order(t, token));
    expect(placed).toMatchObject({ status: 'PENDING', serviceId: 'ai-writer' });
    expect(await ticketOf(t, 'sale', ticket.ticket)).toMatchObject({ status: 'ADMITTED', usedFor: placed.orderId });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ used: 1 });
  });
});

describe('one admission token sent with two orders at once (2026-12-06, a user test: the second was told 403 "already used … enter again", kept under its key)', () => {
  it('while the first is being written the second is 409 COMMON_409 with Retry-After, not kept under its Idempotency-Key: the first failing, the same request again buys the order', async () => {
    const t = await app();
    await put(t, 'sale', { ...ROOM, admissionTtlSeconds: 300, maxActive: 1 });
    const ticket = await enter(t, 'sale', 'u1');
    await t.clock.advance(1000);
    const token = (await ticketOf(t, 'sale', ticket.ticket)).admissionToken as string;
    const { fluxpay } = t.app.core.stores;
    let fail = (): void => undefined;
    const held = new Promise<void>((resolve) => (fail = resolve));
    vi.spyOn(fluxpay, 'createOrder').mockImplementationOnce(async () => {
      await held;
      throw new StoreUnavailableError();
    });
    const first = order(t, token);
    await vi.waitFor(async () => expect((await ticketOf(t, 'sale', ticket.ticket)).usedFor).toMatch(/^ord_/));
    const usedFor = (await ticketOf(t, 'sale', ticket.ticket)).usedFor as string;
    const keyed = () => fpPost(t, '/api/v1/orders', orderBody, { 'x-admission-token': token, 'idempotency-key': 'second-1' });
    const second = await keyed();
    expect([...errorOf(second), second.headers['retry-after']]).toEqual([409, fpError('COMMON_409', `This admission token is in use by order ${usedFor}, which is still being created; send this order again in a moment: if that order is not created, the token is given back.`), '1']);
    fail();
    expect((await first).statusCode).toBe(503);
    // The token came back with the first's failure; the second's key kept nothing: run again, it buys the order.
    const again = await keyed();
    expect([again.statusCode, again.headers['idempotent-replayed']]).toEqual([200, undefined]);
    const placed = resultOf(again);
    expect(placed).toMatchObject({ status: 'PENDING', serviceId: 'ai-writer' });
    expect(resultOf(await fpGet(t, '/api/v1/orders?userId=user_1')).items).toMatchObject([{ orderId: placed.orderId }]);
    expect(await ticketOf(t, 'sale', ticket.ticket)).toMatchObject({ status: 'ADMITTED', usedFor: placed.orderId });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ used: 1, activeTokens: 0 });
    // Spent now: the same token with another order is the 403 of a used token.
    expect(errorOf(await order(t, token))).toEqual([403, fpError('WAIT_001', `This admission token was already used (for order ${placed.orderId}); enter waiting room sale again.`)]);
  });
});

describe('limits of PUT /api/v1/waiting-rooms/{roomId}', () => {
  it('protectedServiceIds must be services of the billing policy: 400 COMMON_400 naming the unknown ones, nothing created or changed', async () => {
    const t = await app();
    const reason = (id: string) => `"${id}" is not a service of the billing policy (its services: ai-writer, image-studio)`;
    expect(errorOf(await put(t, 'sale', { ...ROOM, protectedServiceIds: ['ai-writer', 'nope', 'ticket-sale'] }))).toEqual([
      400,
      fpError('COMMON_400', `protectedServiceIds: ${reason('nope')}; ${reason('ticket-sale')}.`, {
        errors: [
          { field: 'protectedServiceIds.1', reason: reason('nope') },
          { field: 'protectedServiceIds.2', reason: reason('ticket-sale') },
        ],
      }),
    ]);
    expect(errorOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))[0]).toBe(404);
    await put(t, 'sale', ROOM);
    expect(errorOf(await put(t, 'sale', { ...ROOM, admitPerSecond: 50, protectedServiceIds: ['nope'] }))[0]).toBe(400);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ admitPerSecond: 2, protectedServiceIds: ['ai-writer'], updatedAt: iso(T0) });
  });

  it('admitPerSecond above 0 and below 0.001 (a denormal once made GET answer 500): 400 COMMON_400, nothing created or changed; 0.001 admits one user every 1,000 s', async () => {
    const t = await app();
    const reason = 'must be 0 (paused) or from 0.001 (one admission every 1000 s) to 100000';
    for (const admitPerSecond of [5e-324, 6e-323, 1e-13, 0.000999]) {
      expect(errorOf(await put(t, 'sale', { ...ROOM, admitPerSecond }))).toEqual([400, fpError('COMMON_400', `admitPerSecond: ${reason}.`, { errors: [{ field: 'admitPerSecond', reason }] })]);
    }
    expect(errorOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))[0]).toBe(404);
    expect((await put(t, 'sale', ROOM)).statusCode).toBe(201);
    expect(errorOf(await put(t, 'sale', { ...ROOM, admitPerSecond: 1e-5 }))[0]).toBe(400);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ admitPerSecond: 2, updatedAt: iso(T0) });

    expect((await put(t, 'slow', { ...ROOM, admitPerSecond: 0.001 })).statusCode).toBe(201);
    for (const userId of ['user_a', 'user_b']) expect((await fpPost(t, '/api/v1/waiting-rooms/slow/enter', { userId })).statusCode).toBe(200);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/slow'))).toMatchObject({ admitPerSecond: 0.001, currentRate: 0.001, size: 1, admitted: 1, nextAdmissionAt: iso(T0 + 1_000_000) });
  });

  it('tickets of a room nobody calls end and are swept on time (the periodic sweep brings every room up to date): before 2026-12-07 they waited for a call or a scrape, and held the ticket bound against every other room', async () => {
    const t = await app({ FLUXPAY_MAX_WAITING_TICKETS: '5', FLUXPAY_WAITING_TICKET_TTL_MS: '60000' });
    const events = admittedEvents(t);
    await put(t, 'quiet', { admitPerSecond: 0, admissionTtlSeconds: 5, protectedServiceIds: [] });
    await put(t, 'busy', { admitPerSecond: 0, admissionTtlSeconds: 5, protectedServiceIds: [] });
    for (let i = 0; i < 5; i++) await enter(t, 'quiet', `u${i}`);
    expect(errorOf(await fpPost(t, '/api/v1/waiting-rooms/busy/enter', { userId: 'late' }))[0]).toBe(503);
    // All five admitted within 50 ms (its admission job); their tokens expire 5 s later; nobody calls the room again, nothing scrapes /metrics.
    await put(t, 'quiet', { admitPerSecond: 100, admissionTtlSeconds: 5, protectedServiceIds: [] });
    await t.clock.advance(1_000);
    expect(events).toHaveLength(5);
    // Expired after 5 s, ended tickets kept 60 s, swept every 60 s: all gone within 2 minutes and a sweep.
    for (let i = 0; i < 190; i++) await t.clock.advance(1_000);
    expect(await enter(t, 'busy', 'late')).toMatchObject({ status: 'WAITING', position: 1 });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/quiet'))).toMatchObject({ admitted: 5, expired: 5, activeTokens: 0 });
    expect(events).toHaveLength(5);
  });

  it('the ended tickets are swept even when bringing the rooms up to date fails (the store refusing that read): the sweep does not depend on it (a review: no test saw the try/finally)', async () => {
    const t = await app({ FLUXPAY_MAX_WAITING_TICKETS: '5', FLUXPAY_WAITING_TICKET_TTL_MS: '60000' });
    await put(t, 'quiet', { admitPerSecond: 100, admissionTtlSeconds: 5, protectedServiceIds: [] });
    for (let i = 0; i < 5; i++) await enter(t, 'quiet', `u${i}`);
    await t.clock.advance(6_000);
    // A call brings the room up to date: its five tickets end (their tokens expired).
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/quiet'))).toMatchObject({ admitted: 5, expired: 5, activeTokens: 0 });
    const store = t.app.core.stores.waitingRooms;
    expect((await store.stats()).size).toBe(5);
    // From now on the read of every room fails; the minute's sweep must still drop what ended.
    let refused = 0;
    store.listRooms = () => {
      refused++;
      return Promise.reject(new Error('the rooms cannot be read'));
    };
    // A minute's sweep at a time (on Redis its calls end in real time, after the clock has moved on):
    // ended at 6 s, kept 60 s, gone at the sweep after that.
    let size = 5;
    for (let minute = 0; minute < 4 && size > 0; minute++) {
      await t.clock.advance(60_000);
      for (let i = 0; i < 100 && (size = (await store.stats()).size) > 0 && refused <= minute; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(refused).toBeGreaterThan(0);
    expect(size).toBe(0);
  });

  it('FLUXPAY_MAX_WAITING_ROOMS: one room more is 409 WAIT_002 and nothing is created; existing rooms still change', async () => {
    const t = await app({ FLUXPAY_MAX_WAITING_ROOMS: '2' });
    expect((await put(t, 'one', ROOM)).statusCode).toBe(201);
    expect((await put(t, 'two', ROOM)).statusCode).toBe(201);
    expect(errorOf(await put(t, 'three', ROOM))).toEqual([409, fpError('WAIT_002', 'Waiting room three was not created: there are 2 rooms already, the most FLUXPAY_MAX_WAITING_ROOMS allows; change an existing room instead.')]);
    expect(errorOf(await fpGet(t, '/api/v1/waiting-rooms/three'))[0]).toBe(404);
    expect((await put(t, 'two', { ...ROOM, admitPerSecond: 9 })).statusCode).toBe(200);
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/two')).admitPerSecond).toBe(9);
  });
});

describe('fairness', () => {
  it('10,000 users enter concurrently; admitted in exactly their entry order at the configured rate ± 5 %, none twice, none skipped', async () => {
    const t = await app();
    const events = admittedEvents(t);
    const N = 10_000;
    const RATE = 100;
    await put(t, 'sale', { ...ROOM, admitPerSecond: 0, admissionTtlSeconds: 3600 });
    const tickets = await Promise.all(Array.from({ length: N }, (_, i) => enter(t, 'sale', `user_${i}`)));
    // Entry order is the order the store gave out places: positions 1 … N, no gap, no repeat.
    const byPosition = new Map<number, string>();
    for (const ticket of tickets) byPosition.set(ticket.position as number, ticket.ticket as string);
    expect(byPosition.size).toBe(N);
    expect(Math.min(...byPosition.keys())).toBe(1);
    expect(Math.max(...byPosition.keys())).toBe(N);
    const entryOrder = Array.from({ length: N }, (_, i) => byPosition.get(i + 1) as string);

    await put(t, 'sale', { ...ROOM, admitPerSecond: RATE, admissionTtlSeconds: 3600 });
    const start = t.clock.now();
    for (let second = 1; second <= N / RATE; second++) {
      await t.clock.advance(1000);
      const { admitted } = resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'));
      const expected = second * RATE;
      expect(Math.abs(admitted - expected) / expected).toBeLessThanOrEqual(0.05);
    }
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ admitted: N, size: 0 });
    expect(events.map((e) => e.ticket)).toEqual(entryOrder);
    expect(new Set(events.map((e) => e.ticket)).size).toBe(N);
    const times = events.map((e) => e.admittedAt);
    expect(times.every((at, i) => i === 0 || at >= (times[i - 1] as number))).toBe(true);
    const rate = ((N - 1) * 1000) / ((times[N - 1] as number) - (times[0] as number));
    expect(Math.abs(rate - RATE) / RATE).toBeLessThanOrEqual(0.05);
    expect(times[0]).toBe(start);
    // A sample of tickets over HTTP agrees.
    for (const i of [0, 1, 4999, N - 1]) expect(await ticketOf(t, 'sale', entryOrder[i] as string)).toMatchObject({ status: 'ADMITTED', admittedAt: iso(start + i * (1000 / RATE)) });
  }, 120_000);
});

describe('metrics', () => {
  it('queue length per room, admissions counter and wait-time histogram', async () => {
    const t = await app();
    await put(t, 'sale', { ...ROOM, admitPerSecond: 0 });
    for (const user of ['u1', 'u2', 'u3']) await enter(t, 'sale', user);
    let metrics = (await fpGet(t, '/metrics')).body;
    expect(metricSample(metrics, 'fluxpay_waiting_room_queue_length{room="sale"}')).toBe(3);
    await put(t, 'sale', ROOM);
    await t.clock.advance(1000);
    metrics = (await fpGet(t, '/metrics')).body;
    expect(metricSample(metrics, 'fluxpay_waiting_room_queue_length{room="sale"}')).toBe(0);
    expect(metricSample(metrics, 'fluxpay_waiting_room_admissions_total{room="sale"}')).toBe(3);
    expect(metricSample(metrics, 'fluxpay_waiting_room_wait_seconds_count{room="sale"}')).toBe(3);
    expect(metricSample(metrics, 'fluxpay_waiting_room_wait_seconds_sum{room="sale"}')).toBe(1.5); // 0 + 0.5 + 1
  });
});

describe('metrics after a sale', () => {
  it('queue length, admissions (and so admissions per second) and wait times per room agree with the rooms, even when no tick has published yet', async () => {
    const t = await app();
    const sample = async () => {
      const text = (await fpGet(t, '/metrics')).body;
      const of = (name: string, room: string) => metricSample(text, `${name}{room="${room}"}`);
      return ['sale', 'quiet'].map((room) => ({
        room,
        queue: of('fluxpay_waiting_room_queue_length', room),
        admitted: of('fluxpay_waiting_room_admissions_total', room),
        waits: of('fluxpay_waiting_room_wait_seconds_count', room),
        waitSum: of('fluxpay_waiting_room_wait_seconds_sum', room),
        waitedUpTo5s: metricSample(text, `fluxpay_waiting_room_wait_seconds_bucket{le="5",room="${room}"}`),
      }));
    };
    await put(t, 'sale', { ...ROOM, admitPerSecond: 0 });
    await put(t, 'quiet', { ...ROOM, admitPerSecond: 0, protectedServiceIds: ['image-studio'] });
    for (let i = 0; i < 20; i++) await enter(t, 'sale', `user_${i}`);
    for (let i = 0; i < 3; i++) await enter(t, 'quiet', `user_${i}`);
    await t.clock.advance(10_000); // everyone has waited 10 s
    await put(t, 'sale', { ...ROOM, admitPerSecond: 2 }); // user_0 admitted at once
    expect(await sample()).toEqual([
      { room: 'sale', queue: 19, admitted: 1, waits: 1, waitSum: 10, waitedUpTo5s: 0 },
      { room: 'quiet', queue: 3, admitted: undefined, waits: undefined, waitSum: undefined, waitedUpTo5s: undefined },
    ]);
    // 5 s at 2 a second: 10 more admitted, each by the room's tick as it falls due.
    await t.clock.advance(5_000);
    expect((await sample())[0]).toEqual({ room: 'sale', queue: 9, admitted: 11, waits: 11, waitSum: 10 * 11 + (0.5 * 10 * 11) / 2, waitedUpTo5s: 0 });
    // With the scheduler stopped (nothing published since), a scrape brings the rooms up to now itself:
    // the 4 admissions due in these 2 s are counted in the same scrape that no longer shows them waiting.
    t.app.core.scheduler.stop();
    await t.clock.advance(2_000);
    expect((await sample())[0]).toEqual({ room: 'sale', queue: 5, admitted: 15, waits: 15, waitSum: 10 * 15 + (0.5 * 14 * 15) / 2, waitedUpTo5s: 0 });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ size: 5, admitted: 15, entered: 20 });
  });
});

describe('the billing policy’s waitingRooms and rateLimits', () => {
  it('rooms declared in FLUXPAY_POLICY_FILE exist (and guard) from the start; limits default; a bad section stops the start with one line', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfig } = await import('../../src/config.ts');
    const dir = mkdtempSync(join(tmpdir(), 'fluxpay-rooms-'));
    const good = join(dir, 'policy.yaml');
    writeFileSync(
      good,
      'services:\n  chat:\n    creditsPerUse: 7\nwaitingRooms:\n  launch:\n    admitPerSecond: 10\n    admissionTtlSeconds: 120\n    protectedServiceIds: [chat]\nrateLimits:\n  orders:\n    max: 5\n    windowSeconds: 10\n',
    );
    const config = loadConfig({ FLUXPAY_POLICY_FILE: good });
    expect(config.fluxpay.policy.rateLimits.orders).toEqual({ max: 5, windowSeconds: 10 });
    expect(config.fluxpay.policy.rateLimits.reads).toEqual({ max: 100_000, windowSeconds: 1 });
    const t = await app({ FLUXPAY_POLICY_FILE: good });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/launch'))).toMatchObject({ admitPerSecond: 10, admissionTtlSeconds: 120, protectedServiceIds: ['chat'], active: true, maxActive: null });
    // Its admissions and waits are series from the start, at 0 (rate() misses a series' first increment).
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect([metricSample(metrics, 'fluxpay_waiting_room_admissions_total{room="launch"}'), metricSample(metrics, 'fluxpay_waiting_room_wait_seconds_count{room="launch"}')]).toEqual([0, 0]);
    expect(errorOf(await order(t, undefined, { ...orderBody, serviceId: 'chat' }))[1]).toMatchObject({ code: 'WAIT_001' });

    const bad = join(dir, 'bad.yaml');
    const refuses = (yaml: string, message: string) => {
      writeFileSync(bad, `services:\n  chat:\n    creditsPerUse: 7\n${yaml}`);
      expect(() => loadConfig({ FLUXPAY_POLICY_FILE: bad })).toThrow(`Invalid configuration: FLUXPAY_POLICY_FILE: ${bad}: ${message}`);
    };
    refuses('waitingRooms:\n  launch:\n    admitPerSecond: -1\n    admissionTtlSeconds: 1\n', 'waitingRooms.launch.admitPerSecond must be 0 (paused) or from 0.001 (one admission every 1000 s) to 100000');
    refuses('waitingRooms:\n  launch:\n    admitPerSecond: 0.0001\n    admissionTtlSeconds: 1\n', 'waitingRooms.launch.admitPerSecond must be 0 (paused) or from 0.001 (one admission every 1000 s) to 100000');
    refuses('waitingRooms:\n  launch:\n    admitPerSecond: fast\n    admissionTtlSeconds: 1\n', 'waitingRooms.launch.admitPerSecond must be a number');
    refuses('waitingRooms:\n  launch:\n    admitPerSecond: 1\n    admissionTtlSeconds: 1\n    protectedServiceIds: [nope]\n', 'waitingRooms.launch.protectedServiceIds names "nope", which is not a service of the policy');
    refuses('waitingRooms:\n  launch:\n    admitPerSecond: 1\n', 'waitingRooms.launch.admissionTtlSeconds must be a whole number from 1 to 1000000000 (got nothing)');
    refuses('rateLimits:\n  everything:\n    max: 1\n', 'rateLimits has an unknown key "everything" (allowed: orders, payments, credits, events, subscriptions, waiting-rooms, reads)');
    refuses('rateLimits:\n  orders:\n    max: 0\n', 'rateLimits.orders.max must be a whole number from 1 to 1000000000 (got 0)');
  });
});
