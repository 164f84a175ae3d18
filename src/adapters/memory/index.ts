import { CONSOLE_MAX_LOGIN_ADDRESSES, type Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';
import { MemoryBookingStore } from './bookings.ts';
import { MemoryDeliveryLog } from './deliveries.ts';
import { MemoryDisabledUrls } from './disabled-urls.ts';
import { MemoryFaultRuleStore } from './fault-rules.ts';
import { MemoryFluxPayStore } from './fluxpay.ts';
import { MemoryBillingStore } from './fluxpay-billing.ts';
import { MemoryFluxPaySubscriptionStore } from './fluxpay-subscriptions.ts';
import { MemoryIdempotencyStore } from './idempotency.ts';
import { MemoryIntentStore } from './intents.ts';
import { MemoryLedgerStore } from './ledger.ts';
import { MemorySchedulerStore } from './scheduler.ts';
import { MemorySeatStore } from './seats.ts';
import { MemoryRateLimitStore } from './rate-limits.ts';
import { MemoryRevokedSessions } from './revoked-sessions.ts';
import { MemoryV2PaymentStore } from './v2-payments.ts';
import { MemoryWaitingRoomStore } from './waiting-rooms.ts';

/** Every port in this process's memory (the default back end), bounded by the configuration. */
export function createMemoryStores(config: Config): Stores {
  const fluxpay = new MemoryFluxPayStore({ ttlMs: config.fluxpay.ttlMs, maxRecords: config.fluxpay.maxRecords, maxCreditUsers: config.fluxpay.maxCreditUsers });
  return {
    intents: new MemoryIntentStore({ ttlMs: config.store.intentTtlMs, maxIntents: config.store.maxIntents }),
    idempotency: new MemoryIdempotencyStore({ ttlMs: config.idempotency.ttlMs, maxKeys: config.idempotency.maxKeys }),
    bookings: new MemoryBookingStore({ ttlMs: config.bookings.ttlMs, maxBookings: config.bookings.maxBookings }),
    seats: new MemorySeatStore(config.bookings.performances),
    ledger: new MemoryLedgerStore(),
    deliveries: new MemoryDeliveryLog({ ttlMs: config.webhook.logTtlMs, maxDeliveries: config.webhook.logMax }),
    disabledUrls: new MemoryDisabledUrls({ maxUrls: config.webhook.maxDisabledUrls }),
    scheduler: new MemorySchedulerStore(),
    v2Payments: new MemoryV2PaymentStore({ ttlMs: config.v2.paymentTtlMs, maxPayments: config.v2.maxPayments }),
    fluxpay,
    // Shares FluxPay's outbox: a subscription's change and its event are one write.
    billing: new MemoryBillingStore({ maxSubscriptions: config.fluxpay.maxBillingSubscriptions, ttlMs: config.fluxpay.ttlMs }, fluxpay),
    fluxpaySubscriptions: new MemoryFluxPaySubscriptionStore({ maxSubscriptions: config.fluxpay.maxSubscriptions }),
    waitingRooms: new MemoryWaitingRoomStore({ maxRooms: config.fluxpay.maxWaitingRooms, maxTickets: config.fluxpay.maxWaitingTickets, ttlMs: config.fluxpay.waitingTicketTtlMs }),
    rateLimits: new MemoryRateLimitStore({ maxKeys: config.fluxpay.rateLimitMaxKeys }),
    faultRules: new MemoryFaultRuleStore({ maxRules: config.faults.maxRules }),
    revokedSessions: new MemoryRevokedSessions({ max: config.console.maxRevokedSessions }),
    consoleLogins: new MemoryRateLimitStore({ maxKeys: CONSOLE_MAX_LOGIN_ADDRESSES }),
  };
}
