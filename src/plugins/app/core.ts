import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import { systemClock, type Clock, type Timer } from '../../core/clock.ts';
import { isStoreUnavailable, NotStoredYetError, StoreFullError, StoreUnavailableError, unavailableReason } from '../../core/errors.ts';
import { EventBus } from '../../core/events.ts';
import { createIdFactory, type IdFactory } from '../../core/ids.ts';
import { IntentService } from '../../core/intents/service.ts';
import type { Stores } from '../../core/ports.ts';
import { createRandom, type RandomSource } from '../../core/random.ts';
import { Scheduler } from '../../core/scheduler.ts';
import { LateSettles } from '../../http/late-settles.ts';
import { errorFields, unavailableLog } from '../../adapters/redis/unavailable.ts';
import { CountingThrottle } from '../../log-throttle.ts';
import type { Drainer } from './lifecycle.ts';

/**
 * The service's core, built once per app from the configuration and the stores: clock, random
 * source, ids, the event bus, the scheduler of due work and the intent service. Tests pass their
 * own clock and random source. Also the periodic TTL sweep of the stores, on the injected clock.
 */

export interface Core {
  config: Config;
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  bus: EventBus;
  stores: Stores;
  scheduler: Scheduler;
  intents: IntentService;
  /** Idempotency-Key settles the store could not take (Redis away), tried again until it can (closed with the app). */
  lateSettles: LateSettles;
  /** Adds a store to the periodic TTL sweep (every SWEEP_INTERVAL_MS on the injected clock). */
  onSweep(sweeper: (now: number) => Promise<unknown>): void;
}

export interface CoreOptions {
  config: Config;
  clock?: Clock | undefined;
  random?: RandomSource | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    core: Core;
  }
}

/** How often the stores drop expired entries when nothing else touches them. */
const SWEEP_INTERVAL_MS = 60_000;
/** How long the close waits for the scheduler's run in progress (its jobs not completed by then are claimed again once their lease lapses). */
export const QUIESCE_WAIT_MS = 1_000;

/** How many ids a shutdown log line lists (of unfinished deliveries, of undecided intents). */
export const MAX_IDS_LOGGED = 100;

/** Decisions due on the scheduler: how many, and the ids of some (a service's `pendingDecisions`). */
export interface PendingDecisions {
  pendingDecisions(): Promise<number>;
  pendingDecisionIds(limit: number): Promise<string[]>;
}

/**
 * A drainer for decisions due on the scheduler: it waits for none left within its budget, or,
 * handing off (others alive on a shared store), reads once for its end line and waits for none.
 * What is left on a shared scheduler (Redis: the count is every replica's) is due work that
 * whichever replica runs (or the next start) makes, told at info; in memory, a warning. Either
 * line lists the ids of up to MAX_IDS_LOGGED of them (`<idsField>`, and `<idsField>_truncated`
 * when there are more; none when the store cannot say): before 2026-12-05 only their count.
 */
export function drainDecisions(app: FastifyInstance, source: PendingDecisions, lines: { field: string; idsField: string; done: string; left: string }): Drainer {
  return async (budgetMs) => {
    const { handingOff } = app.lifecycle;
    const left = await app.lifecycle.waitWhileOpen(handingOff ? 0 : budgetMs, () => source.pendingDecisions(), (n) => n === 0);
    // Closed during the drain (its namespace reset on another replica): nothing of it left to tell.
    if (app.lifecycle.closing) return;
    const ids = left === 0 ? undefined : await source.pendingDecisionIds(MAX_IDS_LOGGED).catch(() => undefined);
    if (app.lifecycle.closing) return;
    const fields = { [lines.field]: left, ...(ids === undefined ? {} : { [lines.idsField]: ids }), ...(ids !== undefined && left > ids.length ? { [`${lines.idsField}_truncated`]: true } : {}) };
    if (left === 0) app.log.info(`shutdown: ${lines.done}`);
    else if (handingOff) app.log.info(fields, `shutdown: ${lines.left} are left on the shared scheduler, for the other replicas`);
    else if (app.core.scheduler.shared) app.log.info(fields, `shutdown: ${lines.left} when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)`);
    else app.log.warn(fields, `shutdown: ${lines.left} when the drain budget ran out`);
  };
}
/** At most one line this often about due work that could not be claimed, or done, and events whose subscribers failed, as the store is unavailable. */
const RUN_ERROR_LOG_INTERVAL_MS = 10_000;

export default fp<CoreOptions>(
  async (app, options) => {
    const { config } = options;
    const { stores } = app;
    const clock = options.clock ?? systemClock;
    const random = options.random ?? createRandom(config.randomSeed);
    const ids = createIdFactory(clock);
    // While the store is away every poll fails, while it refuses writes (Redis full) every due
    // job, up to SCHEDULER_CONCURRENCY at a time, and the durable part (webhooks logged and queued) of every event
    // published meanwhile: one line per RUN_ERROR_LOG_INTERVAL_MS of each, with the count since.
    // A run that could not claim for want of the store, and one that failed otherwise (a bug, told with
    // its stack), each its own line: an outage's line held back no bug's (before 2026-12-08 one throttle).
    const runErrors = new CountingThrottle(RUN_ERROR_LOG_INTERVAL_MS, () => clock.now());
    // The claims held back after the last line are told once the outage is over (or at the close),
    // as the webhook dispatcher's and the FluxPay relay's are: without it they went into the first
    // line of the next outage's `failed` (a test: 18 for that outage's first failed claim).
    const unavailableRuns = unavailableLog(
      app.log,
      (failed) => `due work could not be claimed from the store ${failed} more ${failed === 1 ? 'time' : 'times'} since the last line: the store is unavailable; trying again`,
      () => clock.now(),
    );
    const unavailableJobs = new CountingThrottle(RUN_ERROR_LOG_INTERVAL_MS, () => clock.now());
    const unavailableEvents = new CountingThrottle(RUN_ERROR_LOG_INTERVAL_MS, () => clock.now());
    const fullJobs = new CountingThrottle(RUN_ERROR_LOG_INTERVAL_MS, () => clock.now());
    const bus = new EventBus((error, event) => {
      const fields = { event_id: event.id, event_type: event.type };
      if (!isStoreUnavailable(error)) return app.log.error({ err: error, ...fields }, 'event subscriber failed');
      const failed = unavailableEvents.take();
      // Redis' words, no stack, as every line of an outage (`unavailableReason`).
      if (failed !== undefined) app.log.error({ ...fields, failed, redis_error: unavailableReason(error) }, 'event subscriber failed: the store is unavailable');
    });
    const scheduler = new Scheduler({
      clock,
      store: stores.scheduler,
      onError: (error, job, final) => {
        if (!final && isStoreUnavailable(error)) {
          const failed = unavailableJobs.take();
          if (failed !== undefined) app.log.warn({ job_kind: job.kind, job_key: job.key, failed, redis_error: unavailableReason(error) }, 'due work could not be done: the store is unavailable; it will be retried');
          return;
        }
        // A full store: the job waits for room (retried, never given up), said once every RUN_ERROR_LOG_INTERVAL_MS with the count.
        if (!final && error instanceof StoreFullError) {
          // Counted as a refused request is: PaysimStoreFull fires while the job waits (a review).
          app.metrics.storeFull.inc({ store: error.store });
          const failed = fullJobs.take();
          if (failed !== undefined) app.log.warn({ err: error, job_kind: job.kind, job_key: job.key, store: error.store, failed }, 'due work waits for room: the store is full of unfinished work; it will be retried');
          return;
        }
        // The expected end of a race between replicas: said at debug until the last attempt. Its
        // record never stored by then, the replica that scheduled it stopped before its write (a
        // kill between the two: h78a, 1 in 6 kills under a bookings load), or it went with its
        // booking: a warning, not an error with a stack for what the takeover settles.
        if (error instanceof NotStoredYetError) {
          if (!final) return app.log.debug({ err: error, job_kind: job.kind, job_key: job.key }, 'due work found its record not stored yet; it will be retried');
          return app.log.warn({ job_kind: job.kind, job_key: job.key }, 'due work given up: its record was never stored (the replica that scheduled it stopped before writing it, or the record was evicted); nothing was done');
        }
        app.log.error({ err: error, job_kind: job.kind, job_key: job.key }, final ? 'due work failed for the last time; giving up' : 'due work failed; it will be retried');
      },
      onRunError: (error) => {
        if (unavailableRuns(error, 'due work could not be claimed from the store; trying again')) return;
        const failed = runErrors.take();
        if (failed !== undefined) app.log.warn({ err: error, failed }, 'due work could not be claimed from the store; trying again');
      },
      pollMs: config.scheduler.pollMs,
      leaseMs: config.scheduler.leaseMs,
      concurrency: config.scheduler.concurrency,
    });
    const intents = new IntentService({ store: stores.intents, scheduler, bus, clock, random, ids, scenarios: config.scenarios });

    const sweepers: Array<(now: number) => Promise<unknown>> = [(now) => stores.intents.sweep(now), (now) => stores.idempotency.sweep(now)];
    let sweeper: Timer | undefined;
    /** Whether the last sweep failed for want of the store: the rest of that outage is not logged again. */
    let sweepUnavailable = false;
    const sweep = (): void => {
      const now = clock.now();
      void Promise.allSettled(sweepers.map((sweepOne) => sweepOne(now)))
        .then((results) => {
          const errors = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
          // Another error than the store's absence (a bug) is logged every time, and first.
          const other = errors.find((error) => !(error instanceof StoreUnavailableError));
          const unavailable = errors.length > 0 && other === undefined;
          if (errors.length > 0 && !(unavailable && sweepUnavailable)) app.log.error({ ...errorFields(other ?? errors[0]), failed: errors.length, of: sweepers.length }, 'store sweep failed');
          sweepUnavailable = unavailable;
        })
        .finally(() => {
          if (sweeper !== undefined) sweeper = clock.schedule(SWEEP_INTERVAL_MS, sweep);
        });
    };

    const lateSettles = new LateSettles(clock, app.log);
    app.decorate('core', { config, clock, random, ids, bus, stores, scheduler, intents, lateSettles, onSweep: (fn) => void sweepers.push(fn) });

    app.addHook('onReady', async () => {
      sweeper = clock.schedule(SWEEP_INTERVAL_MS, sweep);
      await scheduler.start();
    });

    app.lifecycle.onDrain(drainDecisions(app, intents, { field: 'pending_intents', idsField: 'intent_ids', done: 'every pending intent was decided', left: 'intents still pending' }));
    // Before any onClose hook (the webhook dispatcher's among them): nothing claimed from now on
    // meets a closed dispatcher; what comes due is the other replicas' (or the next start's).
    app.addHook('preClose', () => scheduler.quiesce(QUIESCE_WAIT_MS));
    app.addHook('onClose', async () => {
      lateSettles.close();
      sweeper?.cancel();
      sweeper = undefined;
      scheduler.stop();
      unavailableRuns.flush();
    });
  },
  { name: 'paysim-core', dependencies: ['paysim-lifecycle', 'paysim-stores'] },
);
