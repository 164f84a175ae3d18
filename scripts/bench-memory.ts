import { MemoryBookingStore } from '../src/adapters/memory/bookings.ts';
import { MemoryDeliveryLog } from '../src/adapters/memory/deliveries.ts';
import { MemoryIdempotencyStore } from '../src/adapters/memory/idempotency.ts';
import { MemoryIntentStore } from '../src/adapters/memory/intents.ts';
import type { BookingStore, DeliveryLogStore, IdempotencyStore, IntentStore, LedgerStore, SchedulerStore, V2PaymentStore } from '../src/core/ports.ts';
import { MemoryLedgerStore } from '../src/adapters/memory/ledger.ts';
import { MemorySchedulerStore } from '../src/adapters/memory/scheduler.ts';
import { MemoryV2PaymentStore } from '../src/adapters/memory/v2-payments.ts';
import { loadConfig, type Config } from '../src/config.ts';
import type { Booking } from '../src/core/bookings/booking.ts';
import type { Clock } from '../src/core/clock.ts';
import type { Delivery } from '../src/core/deliveries.ts';
import { EventBus } from '../src/core/events.ts';
import { fingerprint } from '../src/core/idempotency.ts';
import { createIdFactory } from '../src/core/ids.ts';
import type { Intent } from '../src/core/intents/intent.ts';
import { DECIDE_JOB, IntentService, type CreateIntentInput } from '../src/core/intents/service.ts';
import { paymentTransaction } from '../src/core/ledger.ts';
import { createRandom } from '../src/core/random.ts';
import { Scheduler } from '../src/core/scheduler.ts';
import { decide } from '../src/core/scenario.ts';
import { nativePayload } from '../src/dialects/native/webhook-payload.ts';
import { table } from './bench-support.ts';

/**
 * What each bounded store costs per record, measured on the memory adapters without HTTP (heap
 * used after a full GC, before and after filling), and the heap the whole process needs with
 * every store at its default bound. Run by scripts/bench.ts as
 * `node --expose-gc --max-old-space-size=8192 scripts/bench-memory.ts`.
 *
 *  (a) intents, decided: the steady state of a long-running simulator;
 *  (b) intents, all PENDING, through IntentService with its scheduler on the system clock (one
 *      timer in all): the worst case of the intent store (a load test of long `delay` intents);
 *  (c) idempotency keys, each with the stored response of an intent creation;
 *  (d) webhook deliveries, finished, each with its body and one attempt;
 *  (e) bookings, finished, each with its inbox event and ledger transaction;
 *  (f) payments of the /api/v2 API, auto-completed and all PENDING (their callbacks not
 *      acknowledged): the worst case of that store, whose PENDING payments are never evicted.
 *
 * With `--full` it fills the stores of a real app instead, in a process of its own (see fullProcess).
 *
 * Inputs go through JSON.parse like a request body does, so strings are as many and as large as
 * in the server (a literal would be one shared string for every record). BENCH_MEMORY_RECORDS
 * sets how many records each store is filled with (default 200,000; bytes per record barely
 * change with the count).
 */

const COUNT = Number(process.env.BENCH_MEMORY_RECORDS || 200_000);
if (!Number.isInteger(COUNT) || COUNT < 1) throw new Error(`BENCH_MEMORY_RECORDS must be a positive integer (got ${process.env.BENCH_MEMORY_RECORDS})`);
/** Longer than the run, so no decision fires while it is measured. */
const PENDING_FOR_MS = 600_000;
const defaults: Config = loadConfig({ WEBHOOK_SECRET: 'bench-memory-secret' });
const MIB = 2 ** 20;
/** The process's own heap with the app built and idle (measured with `node src/server.ts`: heapUsed after GC). */
const BASELINE_HEAP_MIB = 40;

const gc = globalThis.gc;
if (gc === undefined) {
  process.stderr.write('bench-memory: run with node --expose-gc\n');
  process.exit(1);
}

/** heapUsed once garbage is gone; twice, as one full GC can leave what finalizers just released. */
function settledHeap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

interface Row {
  label: string;
  perRecord: number;
  seconds: number;
}

async function measure(label: string, fill: () => Promise<unknown>): Promise<Row> {
  const before = settledHeap();
  const started = process.hrtime.bigint();
  const held = await fill();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = settledHeap();
  // Reading `held` after the measurement keeps it alive until then.
  if (held === undefined) throw new Error(`${label}: nothing was filled`);
  return { label, perRecord: (after - before) / COUNT, seconds };
}

/** A clock the fill loops move themselves, 1 ms per 10 records, about the HTTP rate; its timers never fire. */
function steppingClock(): Clock & { at(n: number): void } {
  const start = Date.parse('2026-01-01T00:00:00Z');
  let now = start;
  return { now: () => now, schedule: () => ({ cancel() {} }), at: (n) => void (now = start + Math.floor(n / 10)) };
}

function body(n: number, delayMs?: number): Record<string, unknown> {
  const webhook = n % 2 === 0 ? ',"webhook_url":"http://127.0.0.1:9000/webhooks"' : '';
  const delay = delayMs === undefined ? '' : `,"delay_ms":${delayMs}`;
  return JSON.parse(
    `{"reservation_id":"res_${n}","amount":${1000 + (n % 9000)},"currency":"KRW","scenario":"approve"${delay},` + `"metadata":{"order_id":"ord_${n}","user":"u${n % 1000}"}${webhook}}`,
  ) as Record<string, unknown>;
}

function input(b: Record<string, unknown>): CreateIntentInput {
  return {
    reservationId: b.reservation_id as string,
    amount: b.amount as number,
    currency: b.currency as string,
    scenario: b.scenario as CreateIntentInput['scenario'],
    delayMs: b.delay_ms as number | undefined,
    webhookUrl: b.webhook_url as string | undefined,
    metadata: b.metadata as Record<string, string>,
  };
}

const bigStore = (count: number) => new MemoryIntentStore({ ttlMs: defaults.store.intentTtlMs, maxIntents: count });

async function decidedIntents(count = COUNT, store: MemoryIntentStore = bigStore(count), from = 0): Promise<MemoryIntentStore> {
  // As the scenario engine plans it: one shared outcome object for every approval.
  const decision = decide({ scenario: 'approve' }, defaults.scenarios, createRandom(1), 0).outcome;
  const clock = steppingClock();
  const ids = createIdFactory(clock);
  for (let n = from; n < from + count; n++) {
    clock.at(n);
    const b = input(body(n));
    const now = clock.now();
    const intent: Intent = {
      id: ids('pay'),
      reservationId: b.reservationId,
      amount: b.amount,
      currency: b.currency,
      scenario: 'approve',
      status: 'APPROVED',
      failureCode: null,
      refundedAmount: 0,
      delayMs: 200,
      webhookUrl: b.webhookUrl ?? null,
      metadata: Object.freeze(b.metadata ?? {}),
      createdAt: now,
      updatedAt: now,
      decidedAt: now,
      planned: decision,
    };
    await store.insert(intent);
  }
  return store;
}

async function pendingIntents(count = COUNT): Promise<{ store: IntentStore; jobs: SchedulerStore }> {
  // The system clock: the scheduler's one real timer is armed for the earliest decision.
  const clock: Clock = { now: () => Date.now(), schedule: (ms, fn) => { const t = setTimeout(fn, ms); t.unref(); return { cancel: () => clearTimeout(t) }; } };
  const store = bigStore(count);
  const jobs = new MemorySchedulerStore();
  const scheduler = new Scheduler({ clock, store: jobs, onError: (error) => { throw error; } });
  await scheduler.start();
  const service = new IntentService({ store, scheduler, bus: new EventBus(), clock, random: createRandom(1), ids: createIdFactory(clock), scenarios: defaults.scenarios });
  return fillPending(service, store, jobs, count);
}

/** `count` PENDING intents through the service (so with their decision jobs), checked. */
async function fillPending(service: IntentService, store: IntentStore, jobs: SchedulerStore, count: number): Promise<{ store: IntentStore; jobs: SchedulerStore }> {
  for (let n = 0; n < count; n++) await service.create(input(body(n, PENDING_FOR_MS)));
  const [stored, due] = [(await store.stats()).size, await jobs.count(DECIDE_JOB)];
  if (stored !== count || due !== count) throw new Error(`expected ${count} pending intents and jobs, got ${stored} and ${due}`);
  return { store, jobs };
}

async function idempotencyKeys(count = COUNT, store: IdempotencyStore = new MemoryIdempotencyStore({ ttlMs: defaults.idempotency.ttlMs, maxKeys: count })): Promise<IdempotencyStore> {
  const now = Date.now();
  for (let n = 0; n < count; n++) {
    const request = body(n);
    const key = `order-${n}-pay-${(n * 7919) % 100000}`;
    const begun = await store.begin('POST /v1/sim/intent', key, fingerprint(request), now);
    if (begun.kind !== 'started') throw new Error(`expected key ${key} to start, it was ${begun.kind}`);
    const response = JSON.stringify({ payment_intent_id: `pay_01JD${String(n).padStart(22, '0')}`, status: 'PENDING', next: 'webhook' });
    await store.complete('POST /v1/sim/intent', key, begun.claim, { statusCode: 200, body: JSON.parse(JSON.stringify(response)) as string });
  }
  return store;
}

async function deliveries(count = COUNT, log: DeliveryLogStore = new MemoryDeliveryLog({ ttlMs: defaults.webhook.logTtlMs, maxDeliveries: count })): Promise<DeliveryLogStore> {
  const clock = steppingClock();
  const ids = createIdFactory(clock);
  for (let n = 0; n < count; n++) {
    clock.at(n);
    const now = clock.now();
    const intentId = ids('pay');
    const eventId = ids('evt');
    const b = input(body(n));
    const intent = { id: intentId, reservationId: b.reservationId, amount: b.amount, currency: b.currency, status: 'APPROVED', failureCode: null, refundedAmount: 0, metadata: b.metadata ?? null } as unknown as Intent;
    const delivery: Delivery = {
      id: ids('whd'),
      eventId,
      type: 'payment.approved',
      url: JSON.parse('"http://127.0.0.1:9000/webhooks"') as string,
      subject: { kind: 'intent', id: intentId },
      test: false,
      body: nativePayload(eventId, 'payment.approved', now, intent),
      extraHeaders: Object.freeze({}),
      schemes: defaults.webhook.schemes,
      status: 'delivered',
      attempts: [{ at: now, statusCode: 200, durationMs: 1.23, error: null }],
      seriesStart: 0,
      nextAttemptAt: null,
      failureReason: null,
      createdAt: now,
      updatedAt: now,
    };
    await log.insert(delivery);
  }
  return log;
}

async function bookings(
  count = COUNT,
  store: BookingStore = new MemoryBookingStore({ ttlMs: defaults.bookings.ttlMs, maxBookings: count }),
  ledger: LedgerStore = new MemoryLedgerStore(),
): Promise<{ store: BookingStore; ledger: LedgerStore }> {
  const clock = steppingClock();
  const ids = createIdFactory(clock);
  for (let n = 0; n < count; n++) {
    clock.at(n);
    const now = clock.now();
    const booking: Booking = {
      id: ids('bk'),
      userId: JSON.parse(`"user_${n % 5000}"`) as string,
      performanceId: 'perf_001',
      quantity: 2,
      seatIds: JSON.parse('["C7","C8"]') as string[],
      totalAmount: 60000,
      currency: 'KRW',
      status: 'pending',
      paymentMethod: 'CREDIT_CARD',
      webhookUrl: null,
      createdAt: now,
      expiresAt: now + 600_000,
      paymentIntent: { status: 'PENDING', pgMockData: null },
      paymentInFlight: null,
      settledAt: null,
    };
    await store.insert(booking);
    await store.beginPayment(booking.id, booking.userId, 'execute', now);
    const eventId = ids('evt');
    await store.recordPayment(booking.id, { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: now } }, {
      eventId,
      type: 'PAYMENT_SUCCEEDED',
      bookingId: booking.id,
      details: { failureCode: null, paymentMethodToken: 'tok_visa', paymentMethod: 'CREDIT_CARD', amount: 60000, currency: 'KRW' },
      createdAt: now,
      processedAt: null,
    });
    await ledger.post(paymentTransaction({ reference: booking.id, amount: 60000, currency: 'KRW' }, ids, now));
    await store.transition(booking.id, ['pending'], 'confirmed', now);
    await store.markEventProcessed(eventId, now);
  }
  return { store, ledger };
}

async function v2Payments(count = COUNT, store: V2PaymentStore = new MemoryV2PaymentStore({ ttlMs: defaults.v2.paymentTtlMs, maxPayments: count })): Promise<V2PaymentStore> {
  const clock = steppingClock();
  const planned = Object.freeze({ status: 'PAYMENT_COMPLETED' as const, failureCode: null });
  for (let n = 0; n < count; n++) {
    clock.at(n);
    const now = clock.now();
    const b = JSON.parse(`{"version":"v2","tx_id":"tx_${n}","order_id":${n},"user_id":${n % 5000},"amount":${1000 + (n % 9000)},"callback_url":"http://ops:8000/api/orders/payment/webhook/v2/tx_${n}"}`) as Record<string, unknown>;
    const txId = b.tx_id as string;
    await store.begin({
      id: `pay_${txId}`,
      txId,
      orderId: b.order_id as number,
      userId: b.user_id as number,
      amount: b.amount as number,
      callbackUrl: b.callback_url as string,
      status: 'PENDING',
      failureCode: null,
      scenario: 'approve',
      createdAt: now,
      decidedAt: null,
      confirmedAt: null,
      completedBy: null,
      planned,
    });
    await store.decide(`pay_${txId}`, now);
  }
  return store;
}

/**
 * `--full`: the claim itself, in a fresh process (so nothing measured before inflates its RSS):
 * the service as `buildApp` makes it, every store filled to its default bound through the app's
 * own stores and services, then the heap and the resident size of the whole process.
 */
async function fullProcess(): Promise<void> {
  const { buildApp } = await import('../src/app.ts');
  const app = await buildApp({ config: defaults, logger: false });
  await app.ready();
  const { stores, intents } = app.core;
  const { store, idempotency, webhook, bookings: bookingSettings } = defaults;
  process.stderr.write('bench-memory: filling every store of a built app to its default bound\n');
  await fillPending(intents, stores.intents, stores.scheduler, store.maxIntents);
  await idempotencyKeys(idempotency.maxKeys, stores.idempotency);
  await deliveries(webhook.logMax, stores.deliveries);
  await bookings(bookingSettings.maxBookings, stores.bookings, stores.ledger);
  await v2Payments(defaults.v2.maxPayments, stores.v2Payments);
  const heap = settledHeap();
  const { rss } = process.memoryUsage();
  console.log('');
  console.log(`the service (buildApp) with every store at its default bound, in a fresh process: ${store.maxIntents.toLocaleString('en-US')} PENDING intents, ${idempotency.maxKeys.toLocaleString('en-US')} idempotency keys, ${webhook.logMax.toLocaleString('en-US')} deliveries, ${bookingSettings.maxBookings.toLocaleString('en-US')} bookings, ${defaults.v2.maxPayments.toLocaleString('en-US')} PENDING v2 payments`);
  console.log(`  heapUsed ${(heap / MIB).toFixed(0)} MiB, RSS ${(rss / MIB).toFixed(0)} MiB (target: RSS under 1,536 MiB) ${rss < 1536 * MIB ? 'met' : 'MISSED'}`);
  await app.close();
}

if (process.argv.includes('--full')) {
  await fullProcess();
  process.exit(0);
}

const rows: Row[] = [];
let fullStore: MemoryIntentStore | undefined;
rows.push(
  await measure('(a) intents, decided', async () => {
    fullStore = await decidedIntents();
    return fullStore;
  }),
);
// Inserts into a store at its bound, each evicting the oldest decided intent, against the fill rate.
const evicting = Math.ceil(COUNT / 4);
const evictStarted = process.hrtime.bigint();
await decidedIntents(evicting, fullStore, COUNT);
const evictRate = evicting / (Number(process.hrtime.bigint() - evictStarted) / 1e9);
if ((await (fullStore as MemoryIntentStore).stats()).size !== COUNT) throw new Error('the store did not stay at its bound');
fullStore = undefined;
rows.push(await measure('(b) intents, all PENDING, scheduler on the system clock', () => pendingIntents()));
rows.push(await measure('(c) idempotency keys, with an intent-creation response', () => idempotencyKeys()));
rows.push(await measure('(d) webhook deliveries, finished, one attempt', () => deliveries()));
rows.push(await measure('(e) bookings, confirmed, with inbox event and ledger transaction', () => bookings()));
rows.push(await measure('(f) v2 payments, all PENDING (callbacks not acknowledged)', () => v2Payments()));
const [decided, pending, keys, logged, booked, paid] = rows as [Row, Row, Row, Row, Row, Row];

const estimate = await idempotencyKeys();
const estimatedPerKey = (await estimate.stats()).bytes / COUNT;

console.log('');
console.log(`paysim memory: ${COUNT.toLocaleString('en-US')} records per store, memory adapters, no HTTP (heapUsed after a full GC; Node ${process.version})`);
console.log(table(['store', 'bytes/record', 'fill s'], rows.map((r) => [r.label, r.perRecord.toFixed(0), r.seconds.toFixed(2)]), (column) => column > 0));
console.log(`idempotency store's own byte estimate: ${estimatedPerKey.toFixed(0)} bytes/key (measured ${keys.perRecord.toFixed(0)})`);
console.log(`inserts into the intent store at its bound (each evicts the oldest decided intent): ${Math.round(evictRate).toLocaleString('en-US')}/s, against ${Math.round(COUNT / decided.seconds).toLocaleString('en-US')}/s while filling it`);

const { store, idempotency, webhook, bookings: bookingSettings } = defaults;
const parts: Array<[string, number, number]> = [
  ['intents (all PENDING, the worst case)', store.maxIntents, pending.perRecord],
  ['idempotency keys', idempotency.maxKeys, keys.perRecord],
  ['webhook delivery log', webhook.logMax, logged.perRecord],
  ['bookings with their events and ledger entries', bookingSettings.maxBookings, booked.perRecord],
  ['v2 payments (all PENDING, the worst case)', defaults.v2.maxPayments, paid.perRecord],
];
let total = BASELINE_HEAP_MIB * MIB;
console.log('');
console.log('heap at the default bounds:');
for (const [name, bound, perRecord] of parts) {
  total += bound * perRecord;
  console.log(`  ${name}: ${bound.toLocaleString('en-US')} × ${perRecord.toFixed(0)} B = ${((bound * perRecord) / MIB).toFixed(0)} MiB`);
}
console.log(`  the process itself, idle: ${BASELINE_HEAP_MIB} MiB`);
console.log(`  total: ${(total / MIB).toFixed(0)} MiB (target: under 1,536 MiB) ${total < 1536 * MIB ? 'met' : 'MISSED'}`);
console.log(`  (decided intents cost ${decided.perRecord.toFixed(0)} B each, so a store full of decided intents needs ${((store.maxIntents * decided.perRecord) / MIB).toFixed(0)} MiB)`);

process.exit(0);
