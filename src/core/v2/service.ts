import type { Clock } from '../clock.ts';
import { storeFull } from '../errors.ts';
import type { EventBus, V2PaymentEvent, V2PaymentEventType } from '../events.ts';
import { derivedId, type IdFactory } from '../ids.ts';
import type { V2PaymentPage, V2PaymentQuery, V2PaymentStore } from '../ports.ts';
import { returnable, type RandomSource, type ReturnableRandom } from '../random.ts';
import type { Scheduler } from '../scheduler.ts';
import type { Mix } from '../faults/mix.ts';
import { decide, markApplied, type ForcedOutcome, type Scenario, type ScenarioRequest } from '../scenario.ts';
import { v2PaymentId, type V2Payment, type V2PaymentRequest, type V2Status } from './payment.ts';

/**
 * Payments of the Payment Server v3 API (source document 001): created PENDING under their
 * `tx_id`, auto-completed after V2_COMPLETE_DELAY_MS as the scenario engine decides (`approve`,
 * `fail`, `delay`, `random`: the native API's scenarios), completed when their callback is
 * acknowledged or when confirmed by hand.
 *
 * The document promises that a repeated `tx_id` returns the existing payment (the original
 * processed it again): `create` is one store step that creates or finds, so a repeat never makes
 * a second payment, a second decision, or a second callback. Every change is one guarded store
 * operation, so concurrent calls (in one process or several) never both succeed where one may.
 * The decision is due work (`v2.decide`), run at once when the delay is 0.
 * @see issue 10 "Outcome", "Idempotency", ../../../../shared/seeds/001_8ef7263c4f45841a.txt
 */

export const V2_DECIDE_JOB = 'v2.decide';

export interface V2Settings {
  /** The scenario of a request without `X-Sim-Scenario` (V2_DEFAULT_SCENARIO). */
  defaultScenario: Scenario;
  /** V2_COMPLETE_DELAY_MS: before an `approve`, `fail` or `random` payment is decided. */
  completeDelayMs: number;
  /** DEFAULT_DELAY_DELAY_MS: before a `delay` payment is decided (then it completes). */
  delayDelayMs: number;
  randomApproveRate: number;
  /** The MIX setting: the weights of scenario `mix` when the request sends no `X-Sim-Mix`. */
  mix?: Mix | undefined;
}

export interface V2ServiceDeps {
  store: V2PaymentStore;
  scheduler: Scheduler;
  bus: EventBus;
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  settings: V2Settings;
}

/** `decisionDueAt`, of a payment created: when its decision is due (now for one decided within the create), on the service's clock. */
export type V2CreateOutcome = { kind: 'created'; payment: V2Payment; decisionDueAt: number } | { kind: 'existing' | 'conflict'; payment: V2Payment };

export type V2ConfirmOutcome = { kind: 'confirmed'; payment: V2Payment } | { kind: 'not_found' } | { kind: 'not_pending'; payment: V2Payment };

/** Planned outcomes: one frozen object each, shared by every payment that has it. */
const COMPLETES = Object.freeze({ status: 'PAYMENT_COMPLETED' as const, failureCode: null });
const FAILS_BY_CODE = new Map<string, V2Payment['planned']>();

function fails(failureCode: string): V2Payment['planned'] {
  let planned = FAILS_BY_CODE.get(failureCode);
  if (planned === undefined) {
    planned = Object.freeze({ status: 'PAYMENT_FAILED' as const, failureCode });
    FAILS_BY_CODE.set(failureCode, planned);
  }
  return planned;
}

export class V2PaymentService {
  readonly #deps: V2ServiceDeps;
  /** The deps' source, whose draws a tx_id sent again gives back (it makes no payment). */
  readonly #random: ReturnableRandom;

  constructor(deps: V2ServiceDeps) {
    this.#deps = deps;
    this.#random = returnable(deps.random);
    deps.scheduler.register(V2_DECIDE_JOB, async (id) => {
      await this.#decide(id);
    });
  }

  /**
   * The payment of `request.txId`: a new one (decided at once when its delay is 0, else when the
   * `v2.decide` job runs), the existing one for the same request, or a conflict for another
   * request with the same tx_id. STORE_FULL when the store holds only PENDING payments.
   */
  async create(request: V2PaymentRequest, scenario?: ScenarioRequest, forced?: ForcedOutcome): Promise<V2CreateOutcome> {
    const { clock, store, scheduler, settings } = this.#deps;
    const now = clock.now();
    const scenarios = { approveDelayMs: settings.completeDelayMs, failDelayMs: settings.completeDelayMs, delayDelayMs: settings.delayDelayMs, randomApproveRate: settings.randomApproveRate, mix: settings.mix };
    // Decided before the store knows whether the tx_id is new (a new payment is stored with its
    // decision's job in one step); the draws of one that is not are given back below.
    const drawn: number[] = [];
    const decision = decide({ scenario: scenario ?? settings.defaultScenario, forced }, scenarios, this.#random.noting(drawn), now);
    const payment: V2Payment = {
      id: v2PaymentId(request.txId),
      txId: request.txId,
      orderId: request.orderId,
      userId: request.userId,
      amount: request.amount,
      callbackUrl: request.callbackUrl,
      status: 'PENDING',
      failureCode: null,
      scenario: decision.source,
      createdAt: now,
      decidedAt: null,
      confirmedAt: null,
      completedBy: null,
      planned: decision.outcome.status === 'APPROVED' ? COMPLETES : fails(decision.outcome.failureCode),
      ...(forced === undefined ? {} : { decidedByRule: true }),
    };
    // Stored first, then decided or scheduled: scheduling first would move the due time of an
    // existing payment's decision when a repeated tx_id arrives (a job is keyed by the payment).
    // A store that can (Redis) writes a new payment with its decision's job in one step (with no
    // delay and several processes, the backstop job of the decision made now, a lease later), so
    // a process killed between the two calls cannot leave a payment that nothing will decide.
    const backstop = decision.delayMs === 0 && scheduler.shared;
    const job = scheduler.job(V2_DECIDE_JOB, payment.id, now + (backstop ? scheduler.leaseMs : decision.delayMs));
    const beginScheduled = decision.delayMs > 0 || backstop ? store.beginScheduled?.bind(store) : undefined;
    const begun = beginScheduled === undefined ? await store.begin(payment) : await beginScheduled(payment, job);
    switch (begun.kind) {
      case 'full':
        this.#random.giveBack(drawn);
        throw storeFull('v2_payments');
      case 'existing':
      case 'conflict':
        // The same tx_id again made no payment: its draws go back, so the next payment gets what it would
        // have had (before 2026-12-07 a client's retry shifted every later seeded random outcome: a user test).
        this.#random.giveBack(drawn);
        return begun;
      case 'created':
        break;
    }
    markApplied(forced);
    if (beginScheduled !== undefined) scheduler.scheduled(job);
    this.#publish('v2.payment_created', begun.payment, now);
    if (decision.delayMs === 0) return { kind: 'created', payment: (await this.#decideNow(payment.id, now, beginScheduled !== undefined)) ?? begun.payment, decisionDueAt: now };
    if (beginScheduled === undefined) await scheduler.schedule(job.kind, job.key, job.dueAt);
    return { kind: 'created', payment: begun.payment, decisionDueAt: job.dueAt };
  }

  get(id: string): Promise<V2Payment | undefined> {
    return this.#deps.store.get(id);
  }

  list(query: V2PaymentQuery): Promise<V2PaymentPage> {
    return this.#deps.store.list(query);
  }

  counts(): Promise<Record<V2Status, number>> {
    return this.#deps.store.counts();
  }

  /** Confirms a PENDING payment by hand (no callback is sent for it; an undecided one is never decided). */
  async confirm(id: string): Promise<V2ConfirmOutcome> {
    const { store, clock, scheduler } = this.#deps;
    const result = await store.complete(id, 'manual', clock.now());
    if (!result.ok) return result.current === undefined ? { kind: 'not_found' } : { kind: 'not_pending', payment: result.current };
    if (result.record.decidedAt === null) await scheduler.cancel(V2_DECIDE_JOB, id);
    this.#publish('v2.payment_completed', result.record);
    return { kind: 'confirmed', payment: result.record };
  }

  /** The receiver acknowledged the `payment.completed` callback (on any attempt or replay): PENDING → PAYMENT_COMPLETED. */
  async acknowledge(id: string): Promise<V2Payment | undefined> {
    const { store, clock } = this.#deps;
    const result = await store.complete(id, 'callback', clock.now());
    if (!result.ok) return undefined;
    this.#publish('v2.payment_completed', result.record);
    return result.record;
  }

  /** Payments whose decision has not run yet. */
  pendingDecisions(): Promise<number> {
    return this.#deps.scheduler.pending(V2_DECIDE_JOB);
  }

  /** The ids of up to `limit` payments whose decision has not run yet. */
  pendingDecisionIds(limit: number): Promise<string[]> {
    return this.#deps.scheduler.pendingKeys(V2_DECIDE_JOB, limit);
  }

  sweep(now: number): Promise<number> {
    return this.#deps.store.sweep(now);
  }

  /**
   * The decision of a payment without a delay, made within its create. With a store shared by
   * several processes a backstop job stands behind it (due a lease later, cancelled once the
   * callback is queued): a process that dies after deciding and before queueing the callback, or
   * a store that fails then, leaves it to that job, here or on another replica, which makes the
   * same event again. Memory needs none (its callbacks die with its process).
   */
  async #decideNow(id: string, now: number, backstopScheduled: boolean): Promise<V2Payment | undefined> {
    const { scheduler } = this.#deps;
    if (!scheduler.shared) return this.#decide(id);
    if (!backstopScheduled) await scheduler.schedule(V2_DECIDE_JOB, id, now + scheduler.leaseMs);
    const decided = await this.#decide(id);
    await scheduler.cancel(V2_DECIDE_JOB, id);
    return decided;
  }

  /**
   * Auto-completion: applies the planned outcome if the payment is still PENDING and undecided,
   * and publishes `v2.payment_decided` (its callback). As with intents, the `v2.decide` job is
   * completed only once the callback is logged and queued (`publishDurable`, with a shared
   * store), and a run of a job whose process died before that finds the payment decided and
   * makes the same event again: the same id (derived from the payment id and the decision time),
   * the payment as the decision left it; the callback is queued once per event.
   * @see issue 14 "kill -9"
   */
  async #decide(id: string): Promise<V2Payment | undefined> {
    const now = this.#deps.clock.now();
    const result = await this.#deps.store.decide(id, now);
    // Not ok: decided by an earlier run (made again), or confirmed by hand before any decision (nothing to do).
    const decided = result.ok ? result.record : result.current?.decidedAt != null ? asDecided(result.current) : undefined;
    if (decided === undefined) return undefined;
    const decidedAt = decided.decidedAt as number;
    const event: V2PaymentEvent = { id: derivedId('evt', decidedAt, decided.id), type: 'v2.payment_decided', occurredAt: decidedAt, payment: Object.freeze(decided) };
    // Made again, unless decided at this run's own time: its own write, whose reply was lost and
    // whose script the client sent again after a reconnect (as with intents).
    if (!result.ok && decidedAt !== now) event.again = true;
    const durable = this.#deps.bus.publishDurable(event);
    if (durable !== undefined) await durable;
    return event.again === true ? undefined : decided;
  }

  /** Events carry frozen snapshots: nobody can change what an event said. */
  #publish(type: V2PaymentEventType, payment: V2Payment, now = this.#deps.clock.now()): void {
    const { bus, ids } = this.#deps;
    bus.publish({ id: ids('evt'), type, occurredAt: now, payment: Object.freeze(payment) });
  }
}

/** A decided payment as its decision left it (a confirm or an acknowledged callback since changes nothing the event said). */
function asDecided(payment: V2Payment): V2Payment {
  const failed = payment.planned.status === 'PAYMENT_FAILED';
  return { ...payment, status: failed ? 'PAYMENT_FAILED' : 'PENDING', failureCode: failed ? payment.planned.failureCode : null, confirmedAt: null, completedBy: null };
}
