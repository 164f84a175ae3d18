import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { expect, inject } from 'vitest';
import { isBookingEvent, isPaymentEvent, type BookingEvent, type PaymentEvent } from '../../src/core/events.ts';
import { createRandom } from '../../src/core/random.ts';
import { loggerOptions } from '../../src/logger.ts';
import type { FaultWait } from '../../src/plugins/app/fault-hooks.ts';
import { ManualClock } from './manual-clock.ts';

export interface TestApp {
  app: FastifyInstance;
  clock: ManualClock;
  config: Config;
  /** Every event published on the bus, in order. */
  events: PaymentEvent[];
}

/**
 * Apps for one test file, each built by `buildTestApp` with `defaults` under its own env, and
 * closed by `closeAll` (the file's afterEach).
 */
export function testApps(defaults: Record<string, string> = {}) {
  const apps: TestApp[] = [];
  return {
    async app(env: Record<string, string> = {}, options: Parameters<typeof buildTestApp>[1] = {}): Promise<TestApp> {
      const t = await buildTestApp({ ...defaults, ...env }, options);
      apps.push(t);
      return t;
    },
    async closeAll(): Promise<void> {
      for (const t of apps.splice(0)) await t.app.close();
    },
  };
}

/**
 * The whole service on a manual clock and a seeded random source, configured from `env` on top
 * of a fixed secret (so signatures are checkable) and a zero shutdown budget. Pass
 * `clockStart: Date.now()` when a receiver checks signature timestamps against the real time.
 * Load shedding on event-loop delay is off (OVERLOAD_MAX_EVENT_LOOP_DELAY_MS=0) unless `env` sets
 * it: on a machine busy with other work a test's own process can stall for a second, and a test
 * about something else must not get 503 OVERLOADED for it. The shedding tests set their own limits.
 * With PAYSIM_TEST_STORE=redis (`make test-redis`) every app is on the Redis back end (see
 * `storeEnv`), unless `env` chooses a STORE itself. With `logs`, the app logs as the process
 * does (its pino options, LOG_LEVEL) into that array, a parsed record per line; else not at all.
 */
export async function buildTestApp(
  env: Record<string, string> = {},
  options: { clockStart?: number; faultWait?: FaultWait; logs?: Array<Record<string, unknown>>; namespaceSyncMs?: number; redisChecksMs?: number } = {},
): Promise<TestApp> {
  // A file that chooses its STORE (the replica tests, on a redis-server of their own) gets none of
  // storeEnv's settings: before, under PAYSIM_TEST_STORE=redis its apps took SCHEDULER_POLL_MS=0,
  // and a replica never polled the schedule another one had written to.
  const config = loadConfig({ WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==', SHUTDOWN_TIMEOUT_MS: '0', RANDOM_SEED: '42', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...(env.STORE === undefined ? storeEnv() : {}), ...env });
  // Over Redis a scheduler run takes round trips: `advance` waits for each run to end. Whether the
  // app is on Redis is its configuration's (a Redis test file in the memory run chooses STORE=redis
  // itself): before, only PAYSIM_TEST_STORE=redis, and such a file's clock could end an `advance`
  // while a run it fired was still claiming, the job that run then armed never fired.
  const clock = new ManualClock(options.clockStart, { awaitWork: config.store.backend === 'redis' });
  const { logs } = options;
  const logger = logs === undefined ? false : pino(loggerOptions(config), { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const app = await buildApp({ config, clock, random: createRandom(config.randomSeed), logger, faultWait: options.faultWait, namespaceSyncMs: options.namespaceSyncMs, redisChecksMs: options.redisChecksMs });
  const events: PaymentEvent[] = [];
  app.core.bus.subscribe((event) => {
    if (isPaymentEvent(event)) events.push(event);
  });
  try {
    await app.ready();
  } catch (error) {
    // A start that fails (a FAULTS_FILE rule no route can match) leaves nothing running.
    await app.close().catch(() => undefined);
    throw error;
  }
  return { app, clock, config, events };
}

/** Whether this run puts the test apps on Redis (PAYSIM_TEST_STORE=redis), for tests of a memory-only detail to skip. */
export const onRedis = process.env.PAYSIM_TEST_STORE === 'redis';

let apps = 0;

/**
 * The back end of the test apps: nothing (memory, the default) or, with PAYSIM_TEST_STORE=redis,
 * STORE=redis on the run's redis-server (test/helpers/redis-global-setup.ts) under a key prefix
 * no other app of the run shares (the worker's pid and a count), so apps never see each other's
 * state, as with memory.
 */
function storeEnv(): Record<string, string> {
  if (!onRedis) return {};
  const url = inject('paysimRedisUrl');
  if (url === '') throw new Error('PAYSIM_TEST_STORE=redis, but no redis-server was started: run vitest with its config (vitest.config.ts globalSetup)');
  apps += 1;
  // No poll of the shared schedule: an app alone on its prefix knows all its work (its own timer),
  // and on the manual clock a poll every 250 ms is millions of runs for a test that advances a year.
  return { STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: `test:${process.pid}:${apps}:`, SCHEDULER_POLL_MS: '0' };
}

/**
 * The booking status changes published on the app's bus from now on, in order: what booking
 * webhooks are made from (`booking.created` is left out; `booking.created` has a test of its own).
 */
export function recordBookingEvents(t: TestApp): BookingEvent[] {
  const events: BookingEvent[] = [];
  t.app.core.bus.subscribe((event) => {
    if (isBookingEvent(event) && event.type !== 'booking.created') events.push(event);
  });
  return events;
}

/** Lets `inject` run (token checks use the thread pool) until the handler has scheduled its timer on the manual clock. */
export async function untilScheduled(t: TestApp, before: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (t.clock.pendingTimers <= before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  expect(t.clock.pendingTimers).toBeGreaterThan(before);
}

/** How many intents the app's store holds. */
export async function storedIntents(t: TestApp): Promise<number> {
  return (await t.app.stores.intents.stats()).size;
}

export const ULID = '[0-9A-HJKMNP-TV-Z]{26}';
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
