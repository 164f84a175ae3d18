import { DomainError } from '../../src/core/errors.ts';
import { EventBus, isPaymentEvent, type DomainEvent, type PaymentEvent } from '../../src/core/events.ts';
import { createIdFactory, type IdFactory } from '../../src/core/ids.ts';
import { MemoryIntentStore, type MemoryStoreOptions } from '../../src/core/intent-store.ts';
import { IntentService, type Intent, type IntentStatus } from '../../src/core/intents.ts';
import { createRandom, type RandomSource } from '../../src/core/random.ts';
import type { ScenarioConfig } from '../../src/core/scenario.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/** Shared fixtures for the unit tests (not a test file itself). */

export const SCENARIOS: ScenarioConfig = { approveDelayMs: 200, failDelayMs: 100, delayDelayMs: 3000, randomApproveRate: 0.8 };

/** The DomainError `fn` throws; any other error is rethrown, and no error at all fails the test. */
export function errorOf(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a DomainError');
}

/** The code of the DomainError `fn` throws. */
export function codeOf(fn: () => unknown): string {
  return errorOf(fn).code;
}

export const ULID = '[0-9A-HJKMNP-TV-Z]{26}';
export const PAY_ID = new RegExp(`^pay_${ULID}$`);
export const EVT_ID = new RegExp(`^evt_${ULID}$`);

/** A random source that always returns the given values, in order, then fails the test. */
export function scriptedRandom(...values: number[]): RandomSource & { calls: number } {
  const source = {
    calls: 0,
    next(): number {
      const value = values[source.calls++];
      if (value === undefined) throw new Error('scriptedRandom: no more values');
      return value;
    },
  };
  return source;
}

export interface Harness {
  clock: ManualClock;
  bus: EventBus;
  store: MemoryIntentStore;
  service: IntentService;
  events: PaymentEvent[];
  busErrors: Array<{ error: unknown; event: DomainEvent }>;
}

export function makeService(
  options: { scenarios?: Partial<ScenarioConfig>; store?: Partial<MemoryStoreOptions>; random?: RandomSource; seed?: number } = {},
): Harness {
  const clock = new ManualClock();
  const busErrors: Harness['busErrors'] = [];
  const bus = new EventBus((error, event) => busErrors.push({ error, event }));
  const events: PaymentEvent[] = [];
  bus.subscribe((event) => {
    if (isPaymentEvent(event)) events.push(event);
  });
  const store = new MemoryIntentStore({ ttlMs: 86_400_000, maxIntents: 1_000_000, ...options.store });
  const service = new IntentService({
    store,
    bus,
    clock,
    random: options.random ?? createRandom(options.seed ?? 1),
    ids: createIdFactory(clock),
    scenarios: { ...SCENARIOS, ...options.scenarios },
  });
  return { clock, bus, store, service, events, busErrors };
}

/** A bare intent for store tests; the id comes from `ids` so it sorts in creation order. */
export function makeIntent(ids: IdFactory, now: number, overrides: Partial<Intent> = {}): Intent {
  return {
    id: ids('pay'),
    reservationId: 'res_1',
    amount: 1000,
    currency: 'EUR',
    scenario: 'approve',
    status: 'APPROVED' satisfies IntentStatus,
    failureCode: null,
    refundedAmount: 0,
    delayMs: 200,
    webhookUrl: null,
    metadata: null,
    createdAt: now,
    updatedAt: now,
    decidedAt: now,
    ...overrides,
  };
}
