import { setTimeout as delay } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { Agent } from 'undici';
import type { RedisDeliveryLog } from '../../adapters/redis/deliveries.ts';
import { RedisDeliveryQueue } from '../../adapters/redis/delivery-queue.ts';
import { RedisRateCap } from '../../adapters/redis/rate-cap.ts';
import { unavailableLog } from '../../adapters/redis/unavailable.ts';
import { systemClock } from '../../core/clock.ts';
import type { DomainEvent } from '../../core/events.ts';
import { DEFAULT_NAMESPACE } from '../../core/faults/service.ts';
import { createStreams } from '../../core/random.ts';
import { finishedAgain, REORDER_BACKSTOP_JOB, RETRY_JOB, WebhookDispatcher, type WebhookRequest } from '../../webhooks/dispatcher.ts';
import type { Scheduler } from '../../core/scheduler.ts';
import { legacySigner } from '../../webhooks/signers/legacy.ts';
import { SignerRegistry } from '../../webhooks/signers/registry.ts';
import { standardSigner } from '../../webhooks/signers/standard.ts';
import { stripeSigner } from '../../webhooks/signers/stripe.ts';
import type { DeliveryLogStore } from '../../core/ports.ts';
import { bucketCapacity } from '../../webhooks/token-bucket.ts';
import { WarningLimiter } from '../../webhooks/warning-limiter.ts';
import { MAX_IDS_LOGGED } from './core.ts';
import { WARNING_INTERVAL_MS } from './event-logs.ts';
import { originAndPath } from '../../http/logged-url.ts';

/**
 * Webhook delivery: one dispatcher, one undici Agent and the registry of signers per app, with
 * the gauges of its queue, its share of the shutdown drain, and its log swept with the stores.
 * Dialects subscribe to the bus and hand the dispatcher their deliveries. With `redis` given
 * (STORE=redis), deliveries wait in the shared delivery stream and the rate cap is the shared
 * bucket, so every replica delivers and the cap holds for all of them together.
 */

export interface WebhooksOptions {
  /** The shared Redis client and key prefix (STORE=redis); without it, delivery stays in this process. */
  redis?: { client: Redis; keyPrefix: string } | undefined;
}

export interface Webhooks {
  dispatcher: WebhookDispatcher;
  log: DeliveryLogStore;
  signers: SignerRegistry;
  /** Delivers the webhook a dialect makes of a bus event (undefined: none for this event). */
  deliverEvents(webhookOf: (event: DomainEvent) => WebhookRequest | undefined): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: Webhooks;
  }
}

/** How often a drain alone on a shared queue looks whether the stream and the retries still hold work. */
const BACKLOG_POLL_MS = 100;

/** The reorder backstops that queued deliveries are logged together, at the end of a second from the first. */
export const BACKSTOP_LOG_INTERVAL_MS = 1000;

/**
 * `work`'s answer, or undefined once `until` (epoch ms) has come: a Redis that does not answer
 * must not hold the drain past its wait (nor the process's exit: the timer is not ref'd).
 */
function by<T>(until: number, work: Promise<T>): Promise<T | undefined> {
  return Promise.race([work, delay(Math.max(0, until - Date.now()), undefined, { ref: false })]);
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * With Redis: the stream's deliveries nobody has begun but for those this replica holds (the end
 * line counts those itself, and hands them back at the close), the retries on the shared
 * scheduler, and the attempts other replicas have begun (a dead one's until a claim takes them
 * over); each undefined where the store could not say.
 */
async function sharedBacklog(queue: RedisDeliveryQueue, scheduler: Scheduler): Promise<{ waiting: number | undefined; retries: number | undefined; elsewhere: number | undefined }> {
  // Issued together on the one client (pipelined: Redis runs them back to back), so that a
  // delivery moving on meanwhile is counted at one of its places: a retry's job queues it in the
  // stream and is completed in two round trips, which cannot both fall between these reads. The
  // retries count the backstops of deliveries held for reordering (a review: they were left out).
  const [retries, waiting, elsewhere] = await Promise.all([scheduler.pending(RETRY_JOB, REORDER_BACKSTOP_JOB).catch(() => undefined), queue.waiting().catch(() => undefined), queue.inFlightElsewhere().catch(() => undefined)]);
  return { waiting: waiting === undefined ? undefined : Math.max(0, waiting - queue.heldUnbegun), retries, elsewhere };
}

/** Re-enables at WEBHOOK_MAX_DISABLED_URLS told one by one per WARNING_INTERVAL_MS; the rest as a count. */
export const REENABLED_WARNINGS_PER_INTERVAL = 10;

export default fp<WebhooksOptions>(
  async (app, options) => {
    const { config, clock, ids, bus, stores, scheduler } = app.core;
    const settings = config.webhook;
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: settings.originConcurrency, connect: { timeout: settings.timeoutMs } });
    const secrets = [config.webhookSecret, ...(settings.previousSecret === undefined ? [] : [settings.previousSecret])];
    const signers = new SignerRegistry();
    signers.register(standardSigner(secrets));
    signers.register(legacySigner(secrets));
    signers.register(stripeSigner(secrets));

    // Redis unavailable (its stream's reader, an attempt's or an acknowledgement's store call, a
    // hand-back): what failed is retried, handed back or taken over once Redis is back, so one
    // warning per 10 s with the count, as the scheduler's; anything else is an error each, with its stack.
    const unavailable = unavailableLog(
      app.log,
      (failed) => `webhooks: ${plural(failed, 'more store call', 'more store calls')} of the webhook dispatcher failed since the last line: the store is unavailable; each is tried again, or its delivery taken over, once it is back`,
      () => clock.now(),
    );
    const onError = (error: unknown, context: string): void => {
      if (!unavailable(error, `webhooks: ${context} failed: the store is unavailable`)) app.log.error({ err: error }, `webhooks: ${context} failed`);
    };
    const { redis } = options;
    const queue =
      redis === undefined
        ? undefined
        : // STORE=redis: the delivery log is the Redis one (behind the store guard), whose script `accept` runs.
          await RedisDeliveryQueue.create(redis.client, stores.deliveries as RedisDeliveryLog, {
            keyPrefix: redis.keyPrefix,
            claimIdleMs: settings.claimIdleMs,
            // Enough to keep every worker busy, few enough that nothing waits here near the claim idle time.
            readAhead: 2 * settings.concurrency,
            onError,
            // A replica died (or stalled) holding deliveries: the operator sees who carried on with them.
            onTakenOver: ({ toSend, recorded }) =>
              app.log.info(
                { deliveries: toSend, already_recorded: recorded },
                `webhooks: took over ${plural(toSend + recorded, 'webhook delivery', 'webhook deliveries')} another replica held unfinished for WEBHOOK_CLAIM_IDLE_MS (it stopped or stalled): ${toSend} to send, ${recorded} already recorded`,
              ),
            onFinishedElsewhere: (delivery) => bus.publish(finishedAgain(delivery)),
          });
    const rateCap =
      redis === undefined || settings.maxRps === 0
        ? undefined
        : // On Redis' clock, one for every replica; on an injected clock (tests), that clock's time.
          new RedisRateCap(redis.client, { keyPrefix: redis.keyPrefix, clock, ratePerSecond: settings.maxRps, capacity: bucketCapacity(settings.maxRps), onError, serverTime: clock === systemClock });

    // The reorder backstops that queued deliveries whose release never came, told once a second at
    // most with their count: a dead replica's hold comes due all at once, as a takeover does. Whose
    // hold it was is not known: another replica's, or this one's whose release Redis refused.
    const tellBackstops = (count: number): void =>
      app.log.info(
        { deliveries: count },
        `webhooks: queued ${plural(count, 'webhook delivery', 'webhook deliveries')} held for reordering whose release never came (the replica holding them stopped or stalled, or could not reach Redis at the window's end): sent unshuffled`,
      );
    // Closed at the app's close: a backstop that ends after it is told at once (its interval would end after the process).
    const backstops = new WarningLimiter(clock, { limit: 0, intervalMs: BACKSTOP_LOG_INTERVAL_MS }, (_key, count) => tellBackstops(count));
    // Deliveries whose attempt here was not the one to count: taken over by another replica while this
    // one stalled (SIGSTOP, a long pause, cut off from Redis for WEBHOOK_CLAIM_IDLE_MS), or made while
    // another's was recorded; told once a second at most with their count, by what happened here.
    const tellSuperseded = (why: string, count: number): void =>
      app.log.info(
        { deliveries: count, outcome: why },
        `webhooks: ${plural(count, 'webhook delivery', 'webhook deliveries')} taken from the stream by this replica ended elsewhere: ${why}`,
      );
    const superseded = new WarningLimiter(clock, { limit: 0, intervalMs: BACKSTOP_LOG_INTERVAL_MS }, tellSuperseded);
    // URLs a 410 pushed out of WEBHOOK_MAX_DISABLED_URLS (those disabled first): deliveries to them
    // are attempted again. At the bound each new 410 re-enables one (an /api/v2 callback URL names
    // its transaction), so the first REENABLED_WARNINGS_PER_INTERVAL of a minute are told, then their
    // count (before 2026-12-07 none was: deliveries to a disabled URL went out again unexplained).
    const tellReenabled = (url: string, byDelivery: string): void =>
      app.log.warn(
        { url: originAndPath(url), max_disabled_urls: settings.maxDisabledUrls, delivery_id: byDelivery },
        `webhook URL re-enabled: WEBHOOK_MAX_DISABLED_URLS (${settings.maxDisabledUrls}) URLs were disabled and another answered 410, so the one disabled first is attempted again`,
      );
    const reenabled = new WarningLimiter(clock, { limit: REENABLED_WARNINGS_PER_INTERVAL, intervalMs: WARNING_INTERVAL_MS }, (_key, count, since) =>
      app.log.warn(
        { urls: count, since: new Date(since).toISOString(), max_disabled_urls: settings.maxDisabledUrls },
        `webhook URLs re-enabled at WEBHOOK_MAX_DISABLED_URLS: ${count} more since ${new Date(since).toISOString()}`,
      ),
    );
    const dispatcher = new WebhookDispatcher({
      clock,
      ids,
      bus,
      log: stores.deliveries,
      disabled: stores.disabledUrls,
      scheduler,
      agent,
      signers,
      settings,
      onError,
      faults: app.faults?.webhooks,
      queue,
      rateCap,
      // Backoff jitter from a stream of its own: with RANDOM_SEED the retry times repeat too, and
      // the draws never shift the payments' seeded outcomes.
      jitter: createStreams(config.randomSeed)('webhooks:jitter'),
      onBackstopQueued: () => {
        if (backstops.allow('reorder-backstop')) tellBackstops(1);
      },
      onSuperseded: (_id, why) => {
        if (superseded.allow(why)) tellSuperseded(why, 1);
      },
      onUrlsReenabled: (urls, byDelivery) => {
        for (const url of urls) if (reenabled.allow('bound')) tellReenabled(url, byDelivery);
      },
    });

    const { registry } = app.metrics;
    new Gauge({
      name: 'webhook_queue_depth',
      help: 'Webhook deliveries waiting for a worker or a rate-cap token (not counting those waiting to retry).',
      registers: [registry],
      collect() {
        this.set(dispatcher.queueDepth);
      },
    });
    const { fromStore } = app.metrics;
    new Gauge({
      name: 'webhook_queue_waiting',
      help: 'Webhook deliveries waiting to start, the figure WEBHOOK_QUEUE_MAX bounds: in memory this process’s; with Redis the shared delivery stream’s (queued and not read by any replica, or read and not started), the same on every replica (take the max, not the sum).',
      registers: [registry],
      async collect() {
        if (queue === undefined) this.set(dispatcher.waitingToStart);
        else await fromStore(() => queue.waiting(), (waiting) => this.set(waiting));
      },
    });
    // Retries wait on the scheduler, not in the queue: a receiver answering errors showed on no
    // gauge (webhook_queue_* at 0 with 100 deliveries retrying; a user test with Prometheus).
    new Gauge({
      name: 'webhook_retries_waiting',
      help: 'Webhook deliveries waiting on the schedule for their next attempt: a retry after a failed attempt, or an attempt a fault rule’s delay holds back (not yet due or not yet claimed); in memory this process’s, with Redis the shared schedule’s, the same on every replica (take the max, not the sum).',
      registers: [registry],
      async collect() {
        await fromStore(() => scheduler.pending(RETRY_JOB), (waiting) => this.set(waiting));
      },
    });
    new Gauge({
      name: 'webhook_in_flight',
      help: 'Webhook attempts in flight.',
      registers: [registry],
      collect() {
        this.set(dispatcher.inFlight);
      },
    });

    // With a shared queue, a subscriber's delivery is the event's durable effect: due work that
    // published the event awaits it (`publishDurable`) before its job is completed, so a replica
    // that dies first leaves the job, and the webhook, to another. In memory nothing is awaited.
    const shared = queue !== undefined;
    const deliverEvents = (webhookOf: (event: DomainEvent) => WebhookRequest | undefined): void => {
      bus.subscribe((event) => {
        const webhook = webhookOf(event);
        if (webhook === undefined) return undefined;
        const accepted = dispatcher.deliver(webhook);
        if (shared) return accepted;
        accepted.catch((error: unknown) => app.log.error({ err: error, event_id: event.id, event_type: event.type }, 'a webhook could not be accepted'));
        return undefined;
      });
    };
    app.decorate('webhooks', { dispatcher, log: stores.deliveries, signers, deliverEvents });

    // Shared: the producers' phase leaves the delivery phase time for the attempts begun by then,
    // and from the drain's start no attempt begins that could not end before its deadline.
    app.lifecycle.reserveForDelivery(dispatcher.drainReserveMs);
    // Handing off, it reads no more at once: what it has not begun goes back to the others now.
    if (queue !== undefined) app.lifecycle.onDrain(async (_budgetMs, deadline) => dispatcher.drainEndsAt(app.lifecycle.handingOff ? Date.now() + dispatcher.drainReserveMs : deadline), 'start');
    // Alone on a shared queue (no other replica alive to hand off to), once the producers have
    // made their webhooks (the `shared` phase, after theirs), the drain waits too for the shared
    // stream's deliveries and the retries on the shared scheduler, which this replica reads and
    // sends meanwhile while attempts may still begin, as memory sends its own (before 2026-12-05 it
    // stopped once it held nothing, and the rest waited for the next start: a user test saw 150
    // left by a replica stopped alone; a review, the webhooks of decisions made in the drain).
    if (queue !== undefined) {
      app.lifecycle.onDrain(async (budgetMs) => {
        if (app.lifecycle.handingOff) return;
        const until = Math.min(Date.now() + budgetMs, dispatcher.drainBeginBy);
        // What it holds for reordering goes to the stream now, for this loop to send (before
        // 2026-12-06 released in the delivery phase, once this replica read the stream no more: a
        // review saw them left to the next start). Bounded by the wait's end, as the store's reads.
        await by(until, dispatcher.releaseHeld());
        const { scheduler, clock } = app.core;
        while (Date.now() < until && !app.lifecycle.closing) {
          // Each read bounded by the wait's end (`by`). Looked at before the reads as well as after: a run of this replica's scheduler, or an
          // attempt it held, may end while they are under way, its retry then queued or scheduled
          // after the store was read (a review saw a failed attempt's retry missed so, with Redis a
          // millisecond away).
          const runningBefore = scheduler.running;
          const heldBefore = queue.held;
          const backlog = await by(until, sharedBacklog(queue, scheduler));
          // The store away: nothing to learn by waiting (what it holds is the delivery phase's).
          if (backlog?.waiting === undefined || backlog.retries === undefined) return;
          // A retry this replica's scheduler has claimed and not yet queued is due at its lease's
          // end by the store's account, far past the wait, but is being sent now: waited for
          // (before 2026-12-06 the drain ended in that window, the retry unsent, in a CI run).
          if (backlog.waiting + heldBefore + queue.held === 0 && !runningBefore && !scheduler.running) {
            if (backlog.retries === 0) return;
            // Only retries left, the next due after attempts may begin: nothing to wait for (a review: the stop took the whole budget).
            const next = await by(until, scheduler.nextDueAt().catch(() => undefined));
            if (next === undefined || Date.now() + (next - clock.now()) >= until) return;
          }
          await delay(Math.min(BACKLOG_POLL_MS, Math.max(0, until - Date.now())));
        }
      }, 'shared');
    }
    app.lifecycle.onDrain(async (budgetMs) => {
      const until = Date.now() + budgetMs;
      const left = await dispatcher.drain(budgetMs);
      // Shared: the releases of what it held for reordering (begun by the drain) are over before the
      // backlog is counted, each then in the stream or still on the schedule, not in both (a review).
      if (queue !== undefined) await by(until, dispatcher.releaseHeld());
      // Closed during the drain (its namespace reset on another replica, which deletes what it
      // held): its end lines would count deliveries nobody sends (a review saw "every webhook delivery finished").
      if (app.lifecycle.closing) return;
      const unrecorded = dispatcher.unrecordedInDrain(MAX_IDS_LOGGED);
      if (unrecorded.count > 0) {
        app.log.warn(
          { unrecorded_deliveries: unrecorded.count, delivery_ids: unrecorded.ids, ...(unrecorded.count > MAX_IDS_LOGGED ? { delivery_ids_truncated: true } : {}) },
          'shutdown: webhook deliveries whose attempt in the drain failed on the store, their results not recorded: the other replicas (or the next start) take them over and send them, again with the same event ids where the attempt had reached the receiver',
        );
      }
      // Shared: what this replica held is not all there is. The stream's entries nobody has begun and
      // the retries due later on the shared scheduler are the others' (or the next start's) to send:
      // counted, so the end line never says every delivery finished while some wait (a user test
      // saw it with 150 left).
      const shared = queue === undefined ? undefined : await sharedBacklog(queue, app.core.scheduler);
      if (app.lifecycle.closing) return;
      const waiting = shared === undefined ? {} : { waiting_in_stream: shared.waiting ?? null, scheduled_retries: shared.retries ?? null, in_flight_elsewhere: shared.elsewhere ?? null };
      if (left.length === 0) {
        if (unrecorded.count > 0) return;
        if (shared === undefined || (shared.waiting === 0 && shared.retries === 0 && shared.elsewhere === 0)) {
          // With namespaces, each app tells its own (their lines carry `namespace`): this line is the default one's (a user test read it as the whole process's).
          if (app.namespace === DEFAULT_NAMESPACE && app.namespaces.started > 0) app.log.info({ namespace: DEFAULT_NAMESPACE }, 'shutdown: every webhook delivery of the default namespace finished (each other namespace says its own)');
          else app.log.info('shutdown: every webhook delivery finished');
        }
        else if (shared.waiting === undefined || shared.retries === undefined || shared.elsewhere === undefined) app.log.info(waiting, 'shutdown: every webhook delivery this replica held finished; those waiting in the shared delivery stream, on the shared scheduler or in flight on other replicas could not be counted (the store is unavailable)');
        else {
          // In flight elsewhere: a live replica's attempts, or a dead one's, which a claim takes over after WEBHOOK_CLAIM_IDLE_MS (a review saw 5 left so while the line said every delivery finished).
          const elsewhere = shared.elsewhere === 0 ? '' : ` and ${plural(shared.elsewhere, 'delivery', 'deliveries')} begun by other replicas (a dead one's are taken over after WEBHOOK_CLAIM_IDLE_MS)`;
          app.log.info(waiting, `shutdown: every webhook delivery this replica held finished; ${plural(shared.waiting, 'delivery', 'deliveries')} waiting in the shared delivery stream, ${plural(shared.retries, 'retry', 'retries')} on the shared scheduler${elsewhere} are left to the other replicas (or the next start)`);
        }
        return;
      }
      const counts: Record<string, number> = {};
      for (const delivery of left) counts[delivery.status] = (counts[delivery.status] ?? 0) + 1;
      const ids = { delivery_ids: left.slice(0, MAX_IDS_LOGGED).map((d) => d.id), ...(left.length > MAX_IDS_LOGGED ? { delivery_ids_truncated: true } : {}) };
      const fields = { unfinished_deliveries: left.length, by_status: counts, ...ids, ...waiting };
      // Shared: what it held goes back to the queue (or is taken over once idle), its retries stay on the shared scheduler.
      if (queue !== undefined) app.log.info(fields, 'shutdown: webhook deliveries this replica held are left to the other replicas (or the next start)');
      else app.log.warn(fields, 'shutdown: webhook deliveries still unfinished when the drain budget ran out, lost with this process (STORE=memory)');
    }, 'delivery');

    app.core.onSweep((now) => stores.deliveries.sweep(now));
    app.addHook('onClose', async () => {
      dispatcher.close();
      backstops.close();
      superseded.close();
      reenabled.close();
      // The drain has had its budget: abort what is still in flight rather than wait for it.
      await agent.destroy();
      await queue?.stop();
      // Last: the close's own store calls (the hand-backs of what it held, awaited by the queue's
      // stop) may fail for want of Redis too; told before, they were counted after this line and left
      // to the throttle's unref'd timer, which the exit never ran (rev79a).
      unavailable.flush();
    });
  },
  { name: 'paysim-webhooks', dependencies: ['paysim-core', 'paysim-metrics', 'paysim-lifecycle', 'paysim-faults'] },
);
