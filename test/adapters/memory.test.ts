import { MemoryBookingStore } from '../../src/adapters/memory/bookings.ts';
import { MemoryDeliveryLog } from '../../src/adapters/memory/deliveries.ts';
import { MemoryDeliveryQueue } from '../../src/adapters/memory/delivery-queue.ts';
import type { Delivery } from '../../src/core/deliveries.ts';
import { MemoryDisabledUrls } from '../../src/adapters/memory/disabled-urls.ts';
import { MemoryFluxPayStore } from '../../src/adapters/memory/fluxpay.ts';
import { MemoryFluxPaySubscriptionStore } from '../../src/adapters/memory/fluxpay-subscriptions.ts';
import { MemoryIdempotencyStore } from '../../src/adapters/memory/idempotency.ts';
import { MemoryIntentStore } from '../../src/adapters/memory/intents.ts';
import { MemoryLedgerStore } from '../../src/adapters/memory/ledger.ts';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { MemorySeatStore } from '../../src/adapters/memory/seats.ts';
import { MemoryRateLimitStore } from '../../src/adapters/memory/rate-limits.ts';
import { MemoryV2PaymentStore } from '../../src/adapters/memory/v2-payments.ts';
import { MemoryWaitingRoomStore } from '../../src/adapters/memory/waiting-rooms.ts';
import { MemoryBillingStore } from '../../src/adapters/memory/fluxpay-billing.ts';
import { billingStoreContract } from './contracts/billing.contract.ts';
import { bookingStoreContract } from './contracts/bookings.contract.ts';
import { deliveryLogContract } from './contracts/deliveries.contract.ts';
import { deliveryQueueContract } from './contracts/delivery-queue.contract.ts';
import { disabledUrlStoreContract } from './contracts/disabled-urls.contract.ts';
import { fluxPayStoreContract } from './contracts/fluxpay.contract.ts';
import { fluxPaySubscriptionStoreContract } from './contracts/fluxpay-subscriptions.contract.ts';
import { idempotencyStoreContract } from './contracts/idempotency.contract.ts';
import { intentStoreContract } from './contracts/intents.contract.ts';
import { ledgerStoreContract } from './contracts/ledger.contract.ts';
import { schedulerStoreContract } from './contracts/scheduler.contract.ts';
import { seatStoreContract } from './contracts/seats.contract.ts';
import { rateLimitStoreContract } from './contracts/rate-limits.contract.ts';
import { v2PaymentStoreContract } from './contracts/v2-payments.contract.ts';
import { waitingRoomStoreContract } from './contracts/waiting-rooms.contract.ts';

/** The shared port contracts against the in-memory back end; another back end adds its own file calling the same functions. */

intentStoreContract('memory', ({ ttlMs, maxIntents }) => new MemoryIntentStore({ ttlMs, maxIntents }));
idempotencyStoreContract('memory', ({ ttlMs, maxKeys }) => new MemoryIdempotencyStore({ ttlMs, maxKeys }));
bookingStoreContract('memory', ({ ttlMs, maxBookings }) => new MemoryBookingStore({ ttlMs, maxBookings }));
seatStoreContract('memory', (performances) => new MemorySeatStore(performances));
ledgerStoreContract('memory', () => new MemoryLedgerStore());
deliveryLogContract('memory', ({ ttlMs, maxDeliveries }) => new MemoryDeliveryLog({ ttlMs, maxDeliveries }));
deliveryQueueContract('memory', async ({ maxDeliveries }) => {
  const log = new MemoryDeliveryLog({ ttlMs: 86_400_000, maxDeliveries });
  const queue = new MemoryDeliveryQueue(log);
  const handed: Delivery[] = [];
  queue.start((delivery) => handed.push(delivery));
  return { queue, log, handed };
});
disabledUrlStoreContract('memory', ({ maxUrls }) => new MemoryDisabledUrls({ maxUrls }));
schedulerStoreContract('memory', () => new MemorySchedulerStore());
v2PaymentStoreContract('memory', ({ ttlMs, maxPayments }) => new MemoryV2PaymentStore({ ttlMs, maxPayments }));
fluxPayStoreContract('memory', ({ ttlMs, maxRecords }) => new MemoryFluxPayStore({ ttlMs, maxRecords }));
fluxPaySubscriptionStoreContract('memory', ({ maxSubscriptions }) => new MemoryFluxPaySubscriptionStore({ maxSubscriptions }));
billingStoreContract('memory', ({ maxSubscriptions, ttlMs }) => {
  const fluxpay = new MemoryFluxPayStore({ ttlMs, maxRecords: 100_000 });
  return { billing: new MemoryBillingStore({ maxSubscriptions, ttlMs }, fluxpay), fluxpay };
});
waitingRoomStoreContract('memory', ({ maxRooms, maxTickets, ttlMs }) => new MemoryWaitingRoomStore({ maxRooms, maxTickets, ttlMs }));
rateLimitStoreContract('memory', ({ maxKeys }) => new MemoryRateLimitStore({ maxKeys }));
