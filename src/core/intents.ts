import type { Clock, Timer } from './clock.ts';
import { DomainError, notFound, validationFailed } from './errors.ts';
import type { EventBus, PaymentEventType } from './events.ts';
import type { IdFactory } from './ids.ts';
import type { IntentPage, IntentQuery, IntentStore } from './intent-store.ts';
import type { RandomSource } from './random.ts';
import { decide, type CardInput, type DecisionSource, type Outcome, type Scenario, type ScenarioConfig } from './scenario.ts';

/**
 * Payment intents: creation, the pending decision, cancel and refund.
 * Lifecycle: PENDING → APPROVED | FAILED; PENDING → CANCELLED; APPROVED → PARTIALLY_REFUNDED → REFUNDED.
 * @see issue 2 "Intent lifecycle"
 */

export const INTENT_STATUSES = ['PENDING', 'APPROVED', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED'] as const;
export type IntentStatus = (typeof INTENT_STATUSES)[number];

export interface Intent {
  id: string;
  reservationId: string;
  amount: number;
  currency: string;
  scenario: DecisionSource;
  status: IntentStatus;
  failureCode: string | null;
  refundedAmount: number;
  delayMs: number;
  webhookUrl: string | null;
  metadata: Record<string, string> | null;
  createdAt: number;
  updatedAt: number;
  decidedAt: number | null;
}

export interface CreateIntentInput {
  reservationId: string;
  amount: number;
  currency: string;
  scenario?: Scenario | undefined;
  delayMs?: number | undefined;
  card?: CardInput | undefined;
  webhookUrl?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface IntentServiceDeps {
  store: IntentStore;
  bus: EventBus;
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  scenarios: ScenarioConfig;
}

interface PendingDecision {
  timer: Timer;
  outcome: Outcome;
}

export class IntentService {
  readonly #deps: IntentServiceDeps;
  readonly #pending = new Map<string, PendingDecision>();
  #idleWaiters: Array<() => void> = [];

  constructor(deps: IntentServiceDeps) {
    this.#deps = deps;
  }

  /** Intents whose decision has not fired yet. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  create(input: CreateIntentInput): Intent {
    const { clock, random, scenarios, store, ids } = this.#deps;
    const now = clock.now();
    const decision = decide({ scenario: input.scenario, delayMs: input.delayMs, card: input.card }, scenarios, random, now);
    const intent: Intent = {
      id: ids('pay'),
      reservationId: input.reservationId,
      amount: input.amount,
      currency: input.currency,
      scenario: decision.source,
      status: 'PENDING',
      failureCode: null,
      refundedAmount: 0,
      delayMs: decision.delayMs,
      webhookUrl: input.webhookUrl ?? null,
      metadata: input.metadata ?? null,
      createdAt: now,
      updatedAt: now,
      decidedAt: null,
    };
    store.insert(intent);
    const timer = clock.schedule(decision.delayMs, () => this.#finalize(intent.id));
    this.#pending.set(intent.id, { timer, outcome: decision.outcome });
    this.#publish('payment.created', intent);
    return intent;
  }

  get(id: string): Intent {
    const intent = this.#deps.store.get(id);
    if (intent === undefined) throw notFound('Payment intent', id);
    return intent;
  }

  list(query: IntentQuery): IntentPage {
    return this.#deps.store.list(query);
  }

  cancel(id: string): Intent {
    const intent = this.get(id);
    if (intent.status !== 'PENDING') {
      throw new DomainError('INVALID_STATE', `Payment intent ${id} is ${intent.status}; only a PENDING intent can be cancelled.`);
    }
    this.#settlePending(id)?.timer.cancel();
    this.#transition(intent, 'CANCELLED');
    this.#publish('payment.cancelled', intent);
    return intent;
  }

  refund(id: string, amount?: number): Intent {
    const intent = this.get(id);
    if (intent.status !== 'APPROVED' && intent.status !== 'PARTIALLY_REFUNDED') {
      throw new DomainError('INVALID_STATE', `Payment intent ${id} is ${intent.status}; only an APPROVED or PARTIALLY_REFUNDED intent can be refunded.`);
    }
    if (amount !== undefined && !(Number.isSafeInteger(amount) && amount > 0)) {
      throw validationFailed([{ field: '/amount', rule: 'minimum', message: 'must be a positive integer' }]);
    }
    const left = intent.amount - intent.refundedAmount;
    const refundAmount = amount ?? left;
    if (refundAmount > left) {
      throw new DomainError('REFUND_EXCEEDS_AMOUNT', `A refund of ${refundAmount} exceeds the ${left} left to refund on ${id}.`);
    }
    intent.refundedAmount += refundAmount;
    this.#transition(intent, intent.refundedAmount === intent.amount ? 'REFUNDED' : 'PARTIALLY_REFUNDED');
    this.#publish('payment.refunded', intent, refundAmount);
    return intent;
  }

  /** Forgets the pending decision of an intent the store evicted. */
  forget(id: string): void {
    this.#settlePending(id)?.timer.cancel();
  }

  /**
   * Resolves once every pending decision has fired, or after `timeoutMs` on the injected clock;
   * returns how many were still pending.
   */
  drain(timeoutMs: number): Promise<number> {
    if (this.#pending.size === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(this.#pending.size);
      };
      const timer = this.#deps.clock.schedule(timeoutMs, done);
      this.#idleWaiters.push(done);
    });
  }

  #finalize(id: string): void {
    const pending = this.#settlePending(id);
    const intent = this.#deps.store.get(id);
    if (pending === undefined || intent === undefined || intent.status !== 'PENDING') return;
    intent.failureCode = pending.outcome.failureCode;
    intent.decidedAt = this.#deps.clock.now();
    this.#transition(intent, pending.outcome.status);
    this.#publish(pending.outcome.status === 'APPROVED' ? 'payment.approved' : 'payment.failed', intent);
  }

  #settlePending(id: string): PendingDecision | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    if (this.#pending.size === 0) for (const waiter of [...this.#idleWaiters]) waiter();
    return pending;
  }

  #transition(intent: Intent, status: IntentStatus): void {
    intent.status = status;
    intent.updatedAt = this.#deps.clock.now();
    this.#deps.store.save(intent);
  }

  #publish(type: PaymentEventType, intent: Intent, refundAmount?: number): void {
    const { bus, clock, ids } = this.#deps;
    const snapshot = { ...intent, metadata: intent.metadata === null ? null : { ...intent.metadata } };
    bus.publish({ id: ids('evt'), type, occurredAt: clock.now(), intent: snapshot, ...(refundAmount === undefined ? {} : { refundAmount }) });
  }
}
