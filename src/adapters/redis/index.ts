import type { Redis } from 'ioredis';
import { isLoadingError, LOADED, LOADING_SEEN } from './connection.ts';
import { CONSOLE_MAX_LOGIN_ADDRESSES, type Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';
import { inFlightHoldMs } from '../../core/idempotency.ts';
import { MAX_ATTEMPTS } from '../../core/subscriptions/service.ts';
import { RedisBookingStore } from './bookings.ts';
import { RedisDeliveryLog } from './deliveries.ts';
import { RedisDisabledUrls } from './disabled-urls.ts';
import { RedisFaultRuleStore } from './fault-rules.ts';
import { RedisFluxPayStore } from './fluxpay.ts';
import { RedisBillingStore } from './fluxpay-billing.ts';
import { RedisFluxPaySubscriptionStore } from './fluxpay-subscriptions.ts';
import { RedisIdempotencyStore } from './idempotency.ts';
import { RedisIntentStore } from './intents.ts';
import { RedisLedgerStore } from './ledger.ts';
import { RedisRateLimitStore } from './rate-limits.ts';
import { RedisRevokedSessions } from './revoked-sessions.ts';
import { RedisSchedulerStore } from './scheduler.ts';
import { RedisSeatStore } from './seats.ts';
import { RedisV2PaymentStore } from './v2-payments.ts';
import { RedisWaitingRoomStore } from './waiting-rooms.ts';
import { guardStores, isRedisRefusingUser, isRedisRefusingWrites, storeCall } from './unavailable.ts';

/**
 * Every port on one Redis (STORE=redis), bounded by the configuration as memory's are
 * (src/adapters/memory/index.ts takes the same settings), each key under `config.redis.keyPrefix`.
 * Lays out what must exist before the first request (the seat maps of the catalog, where missing,
 * and again on every reconnect and at the end of a load the stores' plugin saw: `LOADED`), so it
 * needs Redis to answer; a connection failure rejects with STORE_UNAVAILABLE. Every port's calls
 * map connection failures to STORE_UNAVAILABLE; one refused because Redis is loading its data set
 * is told on the client (`LOADING_SEEN`), for the stores' plugin to watch the load.
 */
/** `onRefused`: told of each call Redis refused because it takes no writes for now (full, unable to persist). */
export async function createRedisStores(config: Config, client: Redis, closed?: AbortSignal, onRefused?: (error: Error) => void): Promise<Stores> {
  const { keyPrefix } = config.redis;
  const layOutSeats = (): Promise<RedisSeatStore> => RedisSeatStore.create(client, { keyPrefix }, config.bookings.performances);
  const seats = await storeCall(layOutSeats());
  // A Redis that came back without its data (restarted without persistence) gets the catalog's
  // seat maps again on reconnect; maps that exist are left as they are.
  // On a Redis still loading its data this is refused (`LOADING`), and done again when the load ends.
  const layOutAgain = (): void => void layOutSeats().catch(() => undefined);
  // From the first layout on (a reconnect during the awaits below lays out again too); a start that
  // fails on one of them leaves nothing behind. A namespace's stores share the root's client and go
  // before it does (their maps must not come back).
  const forget = whenServedAgain(client, layOutAgain);
  closed?.addEventListener('abort', forget, { once: true });
  let scheduler: RedisSchedulerStore;
  let intents: RedisIntentStore;
  let fluxpay: RedisFluxPayStore;
  try {
    // Due work a Redis kept from paysim's earlier scheduler layout runs under this one.
    scheduler = new RedisSchedulerStore(client, { keyPrefix });
    await storeCall(scheduler.adoptEarlierLayout());
    // An earlier version's index of PENDING intents, which this one no longer keeps.
    intents = new RedisIntentStore(client, { keyPrefix, ttlMs: config.store.intentTtlMs, maxIntents: config.store.maxIntents, scheduler });
    await storeCall(intents.dropEarlierIndex());
    fluxpay = new RedisFluxPayStore(client, { keyPrefix, ttlMs: config.fluxpay.ttlMs, maxRecords: config.fluxpay.maxRecords, maxCreditUsers: config.fluxpay.maxCreditUsers });
    // The usages, inbound events and payments of an earlier version's FluxPay layout, counted (and listed) under this one.
    await storeCall(fluxpay.adoptEarlierLayout());
  } catch (error) {
    forget();
    throw error;
  }
  const onFailure = (error: unknown): void => {
    if (isLoadingError(error)) client.emit(LOADING_SEEN);
    else if (onRefused !== undefined && (isRedisRefusingWrites(error) || isRedisRefusingUser(error))) onRefused(error as Error);
  };
  const idempotency = new RedisIdempotencyStore(client, {
    keyPrefix,
    ttlMs: config.idempotency.ttlMs,
    maxKeys: config.idempotency.maxKeys,
    inFlightHoldMs: inFlightHoldMs(longestHandlerWaitMs(config)),
    closed,
  });
  // Its replica's mark of life, set again as soon as Redis serves again.
  const forgetMark = whenServedAgain(client, () => idempotency.servedAgain());
  closed?.addEventListener('abort', forgetMark, { once: true });
  return guardStores({
    // Writes an intent and its decision's job in one script.
    intents,
    idempotency,
    bookings: new RedisBookingStore(client, { keyPrefix, ttlMs: config.bookings.ttlMs, maxBookings: config.bookings.maxBookings }),
    seats,
    ledger: new RedisLedgerStore(client, { keyPrefix }),
    deliveries: new RedisDeliveryLog(client, { keyPrefix, ttlMs: config.webhook.logTtlMs, maxDeliveries: config.webhook.logMax, scheduler }),
    disabledUrls: new RedisDisabledUrls(client, { keyPrefix, maxUrls: config.webhook.maxDisabledUrls }),
    scheduler,
    v2Payments: new RedisV2PaymentStore(client, { keyPrefix, ttlMs: config.v2.paymentTtlMs, maxPayments: config.v2.maxPayments, scheduler }),
    fluxpay,
    // Writes FluxPay's outbox: a subscription's change and its event are one script.
    billing: new RedisBillingStore(client, { keyPrefix, maxSubscriptions: config.fluxpay.maxBillingSubscriptions, ttlMs: config.fluxpay.ttlMs }, fluxpay.outbox),
    fluxpaySubscriptions: new RedisFluxPaySubscriptionStore(client, { keyPrefix, maxSubscriptions: config.fluxpay.maxSubscriptions }),
    waitingRooms: new RedisWaitingRoomStore(client, { keyPrefix, maxRooms: config.fluxpay.maxWaitingRooms, maxTickets: config.fluxpay.maxWaitingTickets, ttlMs: config.fluxpay.waitingTicketTtlMs }),
    rateLimits: new RedisRateLimitStore(client, { keyPrefix, maxKeys: config.fluxpay.rateLimitMaxKeys }),
    faultRules: new RedisFaultRuleStore(client, { keyPrefix, maxRules: config.faults.maxRules }),
    revokedSessions: new RedisRevokedSessions(client, { keyPrefix, max: config.console.maxRevokedSessions }),
    // Its keys under <prefix>console:rl:, apart from FluxPay's <prefix>rl: windows.
    consoleLogins: new RedisRateLimitStore(client, { keyPrefix: `${keyPrefix}console:`, maxKeys: CONSOLE_MAX_LOGIN_ADDRESSES }),
  }, onFailure);
}

/** Per client, what to do again on each reconnect and at the end of a load (seat maps laid out, marks of life set): one listener of each kind for all the namespaces' stores. */
const layouts = new WeakMap<Redis, Set<() => void>>();

/** Runs `layOut` (or any such step) on each reconnect of `client` and at the end of each load (`LOADED`); answers the function that stops it. */
function whenServedAgain(client: Redis, layOut: () => void): () => void {
  let all = layouts.get(client);
  if (all === undefined) {
    const each = new Set<() => void>();
    const run = (): void => {
      for (const f of each) f();
    };
    client.on('ready', run);
    client.on(LOADED, run);
    layouts.set(client, each);
    all = each;
  }
  const mine = all;
  mine.add(layOut);
  return () => void mine.delete(layOut);
}

/**
 * The longest a request waits inside its handler, while its Idempotency-Key is held: a FluxPay
 * confirm's `delay` scenario (a subscription change charges once per attempt, up to MAX_ATTEMPTS
 * when it loses races), a booking payment's mock delay, and a `/api/v2` create, which waits for
 * its decision (V2_COMPLETE_DELAY_MS, or the `delay` scenario's) and then its callback's first
 * attempt (at most WEBHOOK_TIMEOUT_MS). Delays are scaled by TIME_SCALE already. (Fault latencies
 * run before the key is taken; native intents are decided by the scheduler, not in the request.)
 */
export function longestHandlerWaitMs(config: Config): number {
  const { scenarios, bookings, v2, webhook } = config;
  return Math.max(scenarios.delayDelayMs * MAX_ATTEMPTS, bookings.mockMaxDelayMs, Math.max(v2.completeDelayMs, scenarios.delayDelayMs) + webhook.timeoutMs);
}
