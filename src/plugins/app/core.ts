import { setTimeout as delay } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import { systemClock, type Clock } from '../../core/clock.ts';
import { EventBus } from '../../core/events.ts';
import { IdempotencyStore } from '../../core/idempotency.ts';
import { createIdFactory, type IdFactory } from '../../core/ids.ts';
import { MemoryIntentStore } from '../../core/intent-store.ts';
import { IntentService } from '../../core/intents.ts';
import { createRandom, type RandomSource } from '../../core/random.ts';

/**
 * The service's core objects, built once per app from the configuration and decorated on the
 * instance. Tests pass their own clock and random source.
 */

export interface Core {
  config: Config;
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  bus: EventBus;
  intents: IntentService;
  intentStore: MemoryIntentStore;
  idempotency: IdempotencyStore;
  /** Adds a store to the periodic TTL sweep (every SWEEP_INTERVAL_MS on the injected clock). */
  onSweep(sweeper: (now: number) => void): void;
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

export default fp<CoreOptions>(
  async (app, options) => {
    const { config } = options;
    const clock = options.clock ?? systemClock;
    const random = options.random ?? createRandom(config.randomSeed);
    const ids = createIdFactory(clock);
    const bus = new EventBus((error, event) => app.log.error({ err: error, event_id: event.id, event_type: event.type }, 'event subscriber failed'));
    const intentStore = new MemoryIntentStore({
      ttlMs: config.store.intentTtlMs,
      maxIntents: config.store.maxIntents,
      // Called only after construction, when `intents` exists.
      onEvict: (intent) => intents.forget(intent.id),
    });
    const intents = new IntentService({ store: intentStore, bus, clock, random, ids, scenarios: config.scenarios });
    const idempotency = new IdempotencyStore({ clock, ttlMs: config.idempotency.ttlMs, maxKeys: config.idempotency.maxKeys });

    const sweepers: Array<(now: number) => void> = [(now) => intentStore.sweep(now), (now) => idempotency.sweep(now)];
    let sweeper = clock.schedule(SWEEP_INTERVAL_MS, sweep);
    function sweep(): void {
      const now = clock.now();
      for (const sweepOne of sweepers) sweepOne(now);
      sweeper = clock.schedule(SWEEP_INTERVAL_MS, sweep);
    }

    app.decorate('core', { config, clock, random, ids, bus, intents, intentStore, idempotency, onSweep: (fn) => void sweepers.push(fn) });

    app.lifecycle.onDrain(async (budgetMs) => {
      // The budget is real time even when tests inject a clock that never moves on its own.
      const left = await Promise.race([intents.drain(budgetMs), delay(budgetMs, undefined, { ref: false }).then(() => intents.pendingCount)]);
      if (left > 0) app.log.warn({ pending_intents: left }, 'shutdown: intents still pending when the drain budget ran out');
      else app.log.info('shutdown: every pending intent was decided');
    });
    app.addHook('onClose', async () => sweeper.cancel());
  },
  { name: 'paysim-core', dependencies: ['paysim-lifecycle'] },
);
