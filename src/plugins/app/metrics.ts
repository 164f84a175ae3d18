import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import { BOOKING_STATUSES } from '../../core/bookings/booking.ts';
import { V2_STATUSES } from '../../core/v2/payment.ts';
import type { IntentStatus } from '../../core/intents/intent.ts';
import { CARD_FAILURE_CODES, SCENARIOS } from '../../core/scenario.ts';
import { isMadeAgain, type DomainEvent } from '../../core/events.ts';
import { FULL_STORES } from '../../core/errors.ts';
import { errorFields } from '../../adapters/redis/unavailable.ts';
import type { StoreStats, Stores } from '../../core/ports.ts';
import { DEFAULT_NAMESPACE } from '../../core/faults/service.ts';
import { ATTEMPT_OUTCOMES, attemptOutcome } from '../../webhooks/attempt.ts';
import { isSuccess } from '../../webhooks/retry-policy.ts';
import { routeOf } from '../../http/route-template.ts';
import { CLIENT_CLOSED_REQUEST, lostByRule } from './request-context.ts';

/**
 * Prometheus metrics: default process metrics, HTTP metrics by route pattern, and the domain
 * counters, all fed from the event bus (so they count the same facts webhooks see). Gauges of
 * state (queue depth, seats held, the ledger's imbalance) are registered by the plugins that own
 * that state, on the same registry; the fill of the bounded stores is read from their ports'
 * `stats()` when /metrics is scraped.
 * Webhook counters never mix units: `webhook_attempts_total` counts HTTP attempts,
 * `webhook_deliveries_total` final outcomes (one per delivery, or per replay), and
 * `webhook_retries_total` the retries scheduled, so each one's sum() means one thing.
 * A hand-written hook rather than fastify-metrics: the metric names are fixed by the issues and
 * the hook is a few lines, where the plugin would need renaming and disabling most of its defaults.
 */

export interface Metrics {
  registry: Registry;
  idempotencyReplays: Counter;
  idempotencyConflicts: Counter;
  storeFull: Counter<'store'>;
  /**
   * For a metric's `collect`: `use(await read())`, except that a read that fails (Redis away)
   * leaves the metric as it was, so the scrape still answers with every other metric. The first
   * failure after a success is logged; the rest of that outage is not (scrapes come every few seconds).
   */
  fromStore<T>(read: () => Promise<T>, use: (value: T) => void): Promise<void>;
}

/**
 * `read` shared by the metrics of one scrape (prom-client collects them all at once): a call made
 * while a read is in flight gets that read, so metrics fed by the same store call read it once.
 */
export function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () =>
    (inFlight ??= read().finally(() => {
      inFlight = undefined;
    }));
}

/** `Metrics.fromStore` over one log: one line per run of failures, whichever store and metric. */
export function storeReader(onFirstFailure: (error: unknown) => void): Metrics['fromStore'] {
  let failing = false;
  return async (read, use) => {
    let value;
    try {
      value = await read();
    } catch (error) {
      if (!failing) onFirstFailure(error);
      failing = true;
      return;
    }
    failing = false;
    use(value);
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/**
 * Up to 600 s: a fault rule's latency adds seconds to minutes, and a /api/v2 create or a FluxPay
 * confirm may wait up to 600 s; a histogram that ended at 5 s put them all in +Inf, and
 * histogram_quantile() then answers 5 s for any quantile above them.
 */
/**
 * Request durations. 0.75, 1.5 and 2 s (2026-12-05, an SRE's check in a real Prometheus): the
 * bookings API's payment waits MOCK_MIN_DELAY_MS…MOCK_MAX_DELAY_MS (0.5–1.5 s), and with nothing
 * between 1 and 2.5 s histogram_quantile put its p99 at 2.47 s while none took over 1.5 s.
 */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Processing lag is EVENT_PROCESSING_DELAY_MS (50 ms by default) plus timer slack. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ATTEMPT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/**
 * Attempt durations: ATTEMPT_BUCKETS with the webhook timeout and 1.1 times it (in whole
 * milliseconds, at least one more). An attempt cut by the timeout takes just over it: with nothing
 * between 1 and 2.5 s, histogram_quantile put the p99 of attempts cut at the default 1 s at 2.48 s
 * (ut69b, 2026-12-06, in a real Prometheus), and a timeout over 10 s put them all in +Inf.
 */
export function attemptBuckets(timeoutMs: number): number[] {
  // In whole milliseconds, at least one above the timeout (1.1 times 1 to 4 ms rounds to the timeout).
  const above = Math.max(Math.round(timeoutMs * 1.1), timeoutMs + 1);
  return [...new Set([...ATTEMPT_BUCKETS, timeoutMs / 1000, above / 1000])].sort((a, b) => a - b);
}
/** Event to delivered: the approve delay is not in it, queueing and retries are (backoffs of seconds to minutes; 1.5, 2 and 4 s for the first retries' steps). */
const DELIVERY_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 4, 5, 10, 30, 60, 120, 300, 600, 1800];
/** The statuses an intent leaves PENDING for (`payment_intents_finalized_total`). */
const FINALIZED_STATUSES: readonly IntentStatus[] = ['APPROVED', 'FAILED', 'CANCELLED'];
/** The bounded stores whose fill is exported, by the `store` label (intents, bookings and v2_payments as in store_full_total). */
const BOUNDED_STORES = ['intents', 'idempotency_keys', 'webhook_deliveries', 'bookings', 'v2_payments', 'fluxpay', 'fluxpay_payments', 'fluxpay_credit_users', 'fluxpay_billing_subscriptions'] as const;
/** Failure reasons that mean the delivery was never attempted because there was no room or time. */
const DROPPED_REASONS: ReadonlySet<string> = new Set(['queue_full', 'shutting_down', 'log_full']);
/** `queue_unavailable: …`: the shared (Redis) delivery queue could not take it. */
const UNQUEUED = 'queue_unavailable';

function dropped(reason: string | null): boolean {
  return reason !== null && (DROPPED_REASONS.has(reason) || reason.startsWith(UNQUEUED));
}

export default fp(
  async (app) => {
    const registry = new Registry();
    // The process's own metrics once, in the root app: /metrics adds the namespaces' registries to it.
    if (app.namespace === DEFAULT_NAMESPACE) collectDefaultMetrics({ register: registry });
    // prom-client's default GC metric observes through a PerformanceObserver it never disconnects:
    // it keeps its registry, and through the gauges' collect() the whole app, alive after close.
    // Emptying the registry at close cuts that chain (an app is built per test, per fuzz sequence).
    app.addHook('onClose', async () => {
      registry.clear();
    });
    // prom-client names these gauges `*_total`, which promtool rejects (that suffix is for
    // counters); the same counts stay available per type as nodejs_active_{handles,requests,resources}.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
    const registers = [registry];

    // STORE=redis: the times this process saw Redis lose its data (adapters/redis/data-loss.ts).
    const dataLosses = app.redisDataLosses;
    if (dataLosses !== undefined) {
      new Counter({
        name: 'redis_data_losses_total',
        help: 'Times this process saw Redis lose paysim’s data (FLUSHALL or FLUSHDB, a restart without persistence, eviction): what was made before is gone.',
        registers,
        collect() {
          this.reset();
          this.inc(dataLosses());
        },
      });
    }

    // STORE=redis: how long Redis takes to answer this process now (its liveness PING, every half second).
    const pings = app.redisPings;
    if (pings !== undefined) {
      const roundTrips = new Histogram({
        name: 'redis_ping_seconds',
        help: 'Round trip of this process’s liveness PING to Redis, every half second while it serves (once the previous one is answered): how long a store call waits for Redis now, behind this process’s own commands and event loop too.',
        // Fine between 50 and 500 ms, where a slow Redis is read (a user test: a steady 51 ms read as 99).
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 1, 2, 5, 10],
        registers,
      });
      pings((seconds) => roundTrips.observe(seconds));
    }

    // Counted per request (or per intent): tallied in plain numbers, added to the counters when they are read.
    const requestTally = new Tally<'method' | 'route' | 'status_code'>();
    const createdTally = new Tally<'scenario'>();
    const finalizedTally = new Tally<'status'>();
    new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'],
      registers,
      collect() {
        requestTally.addTo(this);
      },
    });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to sending its response, by route pattern.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const created = new Counter({
      name: 'payment_intents_created_total',
      help: 'Payment intents created, by the scenario that decides them (card when the card data does).',
      labelNames: ['scenario'],
      registers,
      collect() {
        createdTally.addTo(this);
      },
    });
    const finalized = new Counter({
      name: 'payment_intents_finalized_total',
      help: 'Payment intents that left PENDING, by the status they reached.',
      labelNames: ['status'],
      registers,
      collect() {
        finalizedTally.addTo(this);
      },
    });
    // Every series of a known label value is there from the start, at 0: a series born at its first
    // increment loses that increment to rate() and increase() (they need two samples).
    for (const scenario of [...SCENARIOS, 'card']) created.inc({ scenario }, 0);
    for (const status of FINALIZED_STATUSES) finalized.inc({ status }, 0);
    const idempotencyReplays = new Counter({ name: 'idempotency_replays_total', help: 'Requests answered with a stored response because their Idempotency-Key (or /api/v2 tx_id) was seen before.', registers });
    const idempotencyConflicts = new Counter({ name: 'idempotency_conflicts_total', help: 'Requests refused because their Idempotency-Key was in use or used with another body (or their /api/v2 tx_id with another body).', registers });
    const storeFull = new Counter({ name: 'store_full_total', help: 'Requests refused with 503 STORE_FULL, and runs of due work refused (they wait for room), because a store was full of unfinished work, by store.', labelNames: ['store'], registers });
    for (const store of FULL_STORES) storeFull.inc({ store }, 0);
    const storeUnavailable = new Counter({
      name: 'store_unavailable_total',
      help: 'Requests refused with 503 STORE_UNAVAILABLE (in each dialect\'s shape, or the console\'s page): STORE=redis and Redis unreachable, not answering, loading its data set, full (maxmemory), refusing writes (MISCONF), read-only (a replica) or refusing the Redis user a key or command (NOPERM).',
      registers,
    });

    const bookings = new Counter({ name: 'bookings_total', help: 'Bookings that reached each status: pending when created, then confirmed, failed, expired or cancelled.', labelNames: ['status'], registers });
    for (const status of BOOKING_STATUSES) bookings.inc({ status }, 0);
    const payments = new Counter({
      name: 'payments_executed_total',
      help: 'Booking payments decided (POST /payments/execute and /api/v1/payments/process), by result and failure code ("none" on success).',
      labelNames: ['result', 'failure_code'],
      registers,
    });
    payments.inc({ result: 'success', failure_code: 'none' }, 0);
    for (const failureCode of CARD_FAILURE_CODES) payments.inc({ result: 'failure', failure_code: failureCode }, 0);
    const v2Payments = new Counter({
      name: 'v2_payments_total',
      help: 'Payments of the /api/v2 API that reached each status: PENDING when created, then PAYMENT_COMPLETED (callback acknowledged or confirmed by hand) or PAYMENT_FAILED (declined).',
      labelNames: ['status'],
      registers,
    });
    for (const status of V2_STATUSES) v2Payments.inc({ status }, 0);
    const lag = new Histogram({ name: 'booking_event_processing_lag_seconds', help: 'Time from a payment result entering the events inbox to the processor applying it.', buckets: LAG_BUCKETS, registers });

    const refunds = new Counter({ name: 'refunds_total', help: 'Refunds of payment intents (each partial refund counts), by currency.', labelNames: ['currency'], registers });
    const refunded = new Counter({ name: 'refunded_amount_total', help: 'Amount refunded on payment intents, in minor units of the currency (KRW has none), by currency.', labelNames: ['currency'], registers });
    refunds.inc({ currency: 'KRW' }, 0);
    refunded.inc({ currency: 'KRW' }, 0);

    const deliveries = new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook deliveries that ended, once each (a replay ends again): delivered (2xx), failed (retries spent, 410 Gone, URL disabled or invalid), dropped (never attempted: queue or log full, or shutting down).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['delivered', 'failed', 'dropped']) deliveries.inc({ result }, 0);
    const attempts = new Counter({
      name: 'webhook_attempts_total',
      help: 'Webhook HTTP attempts, by outcome: success (2xx), http_error (another status), timeout, network_error.',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ATTEMPT_OUTCOMES) attempts.inc({ outcome }, 0);
    const retries = new Counter({ name: 'webhook_retries_total', help: 'Webhook retries scheduled after a failed attempt.', registers });
    const deliveryLatency = new Histogram({
      name: 'webhook_delivery_latency_seconds',
      help: 'Time from an event (its delivery was created in the same step) to the 2xx of its delivery, across every attempt and retry. Replays are not observed.',
      buckets: DELIVERY_LATENCY_BUCKETS,
      registers,
    });
    const attemptDuration = new Histogram({
      name: 'webhook_attempt_duration_seconds',
      help: 'Duration of one webhook attempt, from sending the request to reading the response.',
      labelNames: ['outcome'],
      buckets: attemptBuckets(app.core.config.webhook.timeoutMs),
      registers,
    });
    for (const outcome of ['success', 'failure']) attemptDuration.zero({ outcome });

    app.core.bus.subscribe((event: DomainEvent) => {
      // An event made again was counted when first made (or by a process that died with its counts).
      if (isMadeAgain(event)) return;
      switch (event.type) {
        case 'payment.created':
          createdTally.inc(event.intent.scenario, 'scenario', event.intent.scenario);
          break;
        case 'payment.approved':
        case 'payment.failed':
        case 'payment.cancelled':
          finalizedTally.inc(event.intent.status, 'status', event.intent.status);
          break;
        case 'booking.created':
        case 'booking.confirmed':
        case 'booking.failed':
        case 'booking.expired':
        case 'booking.cancelled':
          bookings.inc({ status: event.booking.status });
          break;
        case 'booking.payment_decided':
          payments.inc({ result: event.isSuccess ? 'success' : 'failure', failure_code: event.failureCode ?? 'none' });
          break;
        case 'v2.payment_created':
        case 'v2.payment_completed':
          v2Payments.inc({ status: event.payment.status });
          break;
        case 'v2.payment_decided':
          // An approved payment stays PENDING until its callback is acknowledged: counted then.
          if (event.payment.status === 'PAYMENT_FAILED') v2Payments.inc({ status: 'PAYMENT_FAILED' });
          break;
        case 'booking.event_processed':
          lag.observe(((event.event.processedAt ?? event.event.createdAt) - event.event.createdAt) / 1000);
          break;
        case 'payment.refunded':
          refunds.inc({ currency: event.intent.currency });
          refunded.inc({ currency: event.intent.currency }, event.refundAmount ?? 0);
          break;
        case 'webhook.attempted':
          if (event.attempt !== undefined) {
            attempts.inc({ outcome: attemptOutcome(event.attempt) });
            attemptDuration.observe({ outcome: isSuccess(event.attempt) ? 'success' : 'failure' }, event.attempt.durationMs / 1000);
          }
          break;
        case 'webhook.retry_scheduled':
          retries.inc();
          break;
        case 'webhook.delivered':
          deliveries.inc({ result: 'delivered' });
          // The first attempt series only: a replay's latency from the original event says nothing.
          if (event.delivery.seriesStart === 0) deliveryLatency.observe(Math.max(0, event.occurredAt - event.delivery.createdAt) / 1000);
          break;
        case 'webhook.failed':
          deliveries.inc({ result: dropped(event.delivery.failureReason) ? 'dropped' : 'failed' });
          break;
        default:
          break;
      }
    });

    // A client that went away before its answer (a load generator's timeout, or its end): no
    // response is sent, so onResponse never runs, though the request may have done its work (an
    // intent made). Counted as nginx's 499 (client closed request); no duration to observe.
    const abandoned = new WeakSet<object>();
    /** Counts one request under `status`; its labels, for the duration. */
    const countRequest = (request: FastifyRequest, status: number) => {
      // The route pattern, never the raw path: raw paths carry ids and would explode cardinality.
      const labels = { method: request.method, route: routeOf(request) ?? 'unmatched', status_code: status };
      requestTally.incLabels(`${labels.method} ${labels.status_code} ${labels.route}`, labels);
      return labels;
    };
    /** Requests onResponse counted: their close counts them no second time (an injected request's comes after it). */
    const answered = new WeakSet<object>();
    app.addHook('onResponse', (request, reply, done) => {
      if (!abandoned.has(request)) {
        answered.add(request);
        duration.observe(countRequest(request, reply.statusCode), reply.elapsedTime / 1000);
      }
      done();
    });
    app.addHook('onRequest', (request, reply, done) => {
      // Closed before an answer was written: the client went away, or the connection was cut (a
      // fault rule's response_lost or timeout, a 408 that Node writes straight to the socket, the
      // close at shutdown). Fastify's onRequestAbort misses a request whose body had arrived.
      // `writableFinished`: the answer's last bytes were handed to the socket (onResponse counts it;
      // light-my-request's inject closes before, after onResponse: `answered`).
      // `headersSent`: the answer had begun (its status line written) and was never ended: a stream
      // (the console's live feed, closed with its tab) or a body cut short. Counted by the status
      // it answered; no duration (a stream's lifetime is not a response time).
      // A fault rule's response_lost resets the connection as the answer is sent (onSend), and the
      // answer is then ended on the reset socket: sent to no one, so a 499 too (before 2026-12-04 it
      // was not counted at all).
      reply.raw.once('close', () => {
        const lost = lostByRule(request);
        // Finished: onResponse counts it (it has or it will). Ended and never finished (the socket died
        // with the answer still queued: rev74d), onResponse never runs: counted here, under its status.
        if (answered.has(request) || (reply.raw.writableFinished && !lost)) return;
        abandoned.add(request);
        countRequest(request, reply.raw.headersSent && !lost ? reply.raw.statusCode : CLIENT_CLOSED_REQUEST);
      });
      done();
    });

    const fromStore = storeReader((error) => app.log.error(errorFields(error), 'metrics: a store could not be read; its metrics keep their last values until it can'));
    registerStoreFill(app.stores, registers, fromStore);

    app.errorShapes.onProblem((problem) => {
      if (problem.code === 'STORE_FULL') storeFull.inc({ store: problem.store ?? 'unknown' });
      else if (problem.code === 'STORE_UNAVAILABLE') storeUnavailable.inc();
    });

    app.decorate('metrics', { registry, idempotencyReplays, idempotencyConflicts, storeFull, fromStore });
  },
  { name: 'paysim-metrics', dependencies: ['paysim-core', 'paysim-error-shapes'] },
);

/**
 * Increments of a labelled counter, tallied per label set in plain numbers and added to the
 * counter when it is read (its `collect`, which prom-client calls on every scrape and `get()`).
 * prom-client validates and hashes the labels of every `inc`; at thousands of requests per
 * second that was a measurable share of each one. The counter shows the same values whenever it
 * is read, its label sets in the order they were first counted.
 */
class Tally<L extends string> {
  readonly #byKey = new Map<string, { labels: LabelValues<L>; count: number }>();

  /** One more for the label set `key` stands for; `labels` is kept the first time only. */
  incLabels(key: string, labels: LabelValues<L>): void {
    const entry = this.#byKey.get(key);
    if (entry === undefined) this.#byKey.set(key, { labels, count: 1 });
    else entry.count++;
  }

  /** One more for a counter with one label, `name`, set to `value` (also the key). */
  inc(key: string, name: L, value: string): void {
    const entry = this.#byKey.get(key);
    if (entry === undefined) this.#byKey.set(key, { labels: { [name]: value } as LabelValues<L>, count: 1 });
    else entry.count++;
  }

  addTo(counter: Counter<L>): void {
    for (const entry of this.#byKey.values()) {
      if (entry.count === 0) continue;
      counter.inc(entry.labels, entry.count);
      entry.count = 0;
    }
  }
}

/**
 * `store_records{store}` and `store_capacity{store}`: how full each bounded store is, read from
 * its port's `stats()` when /metrics is scraped (async: another back end may answer over the
 * network). Both gauges are read in the same scrape, so one `stats()` call per store serves them.
 * A store whose stats fail keeps its last values (`fromStore`).
 */
function registerStoreFill(
  stores: Pick<Stores, 'intents' | 'idempotency' | 'deliveries' | 'bookings' | 'v2Payments' | 'fluxpay' | 'billing'>,
  registers: Registry[],
  fromStore: Metrics['fromStore'],
): void {
  const ports: Record<(typeof BOUNDED_STORES)[number], { stats(): Promise<StoreStats> }> = {
    intents: stores.intents,
    idempotency_keys: stores.idempotency,
    webhook_deliveries: stores.deliveries,
    bookings: stores.bookings,
    v2_payments: stores.v2Payments,
    fluxpay: stores.fluxpay,
    fluxpay_payments: { stats: () => stores.fluxpay.paymentStats() },
    fluxpay_credit_users: { stats: () => stores.fluxpay.creditUserStats() },
    fluxpay_billing_subscriptions: stores.billing,
  };
  const read = oncePerScrape(() =>
    Promise.all(
      BOUNDED_STORES.map(async (store) => {
        let stats: StoreStats | undefined;
        await fromStore(
          () => ports[store].stats(),
          (value) => (stats = value),
        );
        return stats;
      }),
    ),
  );
  const gauge = (name: string, help: string, field: keyof StoreStats): Gauge<'store'> =>
    new Gauge({
      name,
      help,
      labelNames: ['store'],
      registers,
      async collect() {
        const stats = await read();
        BOUNDED_STORES.forEach((store, i) => {
          const value = stats[i]?.[field];
          if (value !== undefined) this.set({ store }, value);
        });
      },
    });
  gauge('store_records', 'Records held by each bounded store: intents, idempotency_keys, webhook_deliveries (the delivery log), bookings, v2_payments, fluxpay (orders), fluxpay_payments, fluxpay_credit_users (users with a credit balance), fluxpay_billing_subscriptions.', 'size');
  gauge('store_capacity', 'The bound of each store (STORE_MAX_INTENTS, IDEMPOTENCY_MAX_KEYS, WEBHOOK_LOG_MAX, BOOKINGS_MAX, V2_PAYMENTS_MAX, FLUXPAY_MAX_RECORDS for orders and payments each, FLUXPAY_MAX_CREDIT_USERS, FLUXPAY_MAX_BILLING_SUBSCRIPTIONS): store_records / store_capacity is its fill.', 'max');
  // /metrics adds up the namespaces' series: records over capacity of the sums hides one namespace that is full.
  new Gauge({
    name: 'store_fill_ratio',
    help: 'store_records / store_capacity of each bounded store (idempotency_keys can pass 1 while more requests run than its bound); with namespaces (X-Sim-Namespace), the fullest one’s.',
    labelNames: ['store'],
    registers,
    aggregator: 'max',
    async collect() {
      const stats = await read();
      BOUNDED_STORES.forEach((store, i) => {
        const one = stats[i];
        if (one !== undefined && one.max > 0) this.set({ store }, one.size / one.max);
      });
    },
  });
}

