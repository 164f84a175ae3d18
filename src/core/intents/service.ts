import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { DomainError, idempotencyKeyLost, notFound, NotStoredYetError, storeFull, validationFailed } from '../errors.ts';
import type { EventBus, PaymentEvent } from '../events.ts';
import type { IdempotencyNote } from '../idempotency.ts';
import { derivedId, type IdFactory } from '../ids.ts';
import type { InsertOutcome, IntentQuery, IntentStore, Job, Page } from '../ports.ts';
import { returnable, type RandomSource, type ReturnableRandom } from '../random.ts';
import type { Scheduler } from '../scheduler.ts';
import { decide, markApplied, type CardInput, type ForcedOutcome, type ScenarioConfig, type ScenarioRequest } from '../scenario.ts';
import type { Intent, IntentStatus } from './intent.ts';

/**
 * Payment intents: creation, the pending decision, cancel and refund. Intents handed out by the
 * service (and the snapshots in its events) are frozen. Every change is one guarded
 * store operation (PENDING → decided only if still PENDING; a refund never exceeds what is left),
 * so two concurrent calls, in one process or several, can never both succeed where one may.
 * The decision is due work: the outcome is stored on the intent at creation and applied by
 * whichever process runs the `intent.decide` job when the delay has passed.
 * @see issue 2 "Intent lifecycle", issue 7
 */

export const DECIDE_JOB = 'intent.decide';
/** The backstop of a cancel's event on a shared store (key: the intent's id): makes `payment.cancelled` again. */
export const CANCEL_EVENT_JOB = 'intent.cancel_event';
/** The backstop of a refund's event on a shared store (key: `refundJobKey`): makes that refund's `payment.refunded` again. */
export const REFUND_EVENT_JOB = 'intent.refund_event';

/**
 * The key of a refund's backstop job: the intent's id, what it had refunded in all after this
 * refund (which names the refund: the total only grows), this refund's amount and its time. A
 * store's `refundScheduled` writes it in the same form.
 */
export function refundJobKey(id: string, refundedAfter: number, amount: number, at: number): string {
  return `${id}/${refundedAfter}/${amount}/${at}`;
}

export interface CreateIntentInput {
  reservationId: string;
  amount: number;
  currency: string;
  /** A named scenario or the weights of a mix (scenario `mix`). */
  scenario?: ScenarioRequest | undefined;
  delayMs?: number | undefined;
  card?: CardInput | undefined;
  webhookUrl?: string | undefined;
  metadata?: Record<string, string> | undefined;
  /** A fault rule's `outcome` (issue 15). */
  forced?: ForcedOutcome | undefined;
  /** The request's Idempotency-Key, where the store notes the intent with its insert (a shared store), for a retry after a lost answer to resume. */
  idempotency?: IdempotencyNote | undefined;
}

export interface IntentServiceDeps {
  store: IntentStore;
  scheduler: Scheduler;
  bus: EventBus;
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  scenarios: ScenarioConfig;
}

export class IntentService {
  readonly #deps: IntentServiceDeps;
  /** The deps' source, whose draws a create the store refuses gives back (it made no intent). */
  readonly #random: ReturnableRandom;

  constructor(deps: IntentServiceDeps) {
    this.#deps = deps;
    this.#random = returnable(deps.random);
    deps.scheduler.register(DECIDE_JOB, (id) => this.#decide(id));
    deps.scheduler.register(CANCEL_EVENT_JOB, (id) => this.#cancelledAgain(id));
    deps.scheduler.register(REFUND_EVENT_JOB, (key) => this.#refundedAgain(key));
  }

  /** Creates a PENDING intent and schedules its decision. STORE_FULL when the store holds only PENDING intents. */
  async create(input: CreateIntentInput): Promise<Intent> {
    const { clock, scenarios, store, ids, scheduler } = this.#deps;
    const now = clock.now();
    const drawn: number[] = [];
    const decision = decide({ scenario: input.scenario, delayMs: input.delayMs, card: input.card, forced: input.forced }, scenarios, this.#random.noting(drawn), now);
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
      metadata: input.metadata === undefined ? null : Object.freeze({ ...input.metadata }),
      createdAt: now,
      updatedAt: now,
      decidedAt: null,
      planned: decision.outcome,
      ...(input.forced === undefined ? {} : { decidedByRule: true }),
    };
    // Frozen, the same object can be the caller's and the event's: nobody can change either.
    Object.freeze(intent);
    const job = scheduler.job(DECIDE_JOB, intent.id, now + decision.delayMs);
    let inserted: InsertOutcome;
    if (store.insertScheduled === undefined) {
      // A store that cannot write the intent and its job in one operation (memory): the decision
      // is scheduled first, as a job for an intent that was never stored does nothing (given up
      // after its retries), while a stored intent without its job would stay PENDING forever. Both
      // calls are made at once (neither waits in memory); a refused insert cancels the job. Two
      // awaits, not Promise.allSettled: a third of its cost per intent (0.18 against 0.61 µs).
      const scheduling = scheduler.add(job);
      const inserting = store.insert(intent);
      // Handled from the start: an insert that fails while the schedule is still on its way (a
      // store that does I/O) is not an unhandled rejection; its error is still thrown below.
      inserting.catch(() => undefined);
      // The scheduling error, when there is one, is the one reported.
      await scheduling;
      inserted = await inserting;
      if (!inserted.ok) await scheduler.cancel(job.kind, job.key);
    } else {
      // One atomic store operation (Redis): the intent with its job, or (full) neither.
      inserted = await store.insertScheduled(intent, job, input.idempotency);
      if (inserted.ok) scheduler.scheduled(job);
    }
    if (!inserted.ok) {
      // No intent made: its draws go back, so the next one gets what it would have (rev74c: a 503 shifted them).
      this.#random.giveBack(drawn);
      throw inserted.reason === 'key_lost' ? idempotencyKeyLost() : storeFull('intents');
    }
    markApplied(input.forced);
    this.#publishCreated(intent, now);
    return intent;
  }

  /** The intent, or undefined (never stored, or evicted since). */
  find(id: string): Promise<Intent | undefined> {
    return this.#deps.store.get(id);
  }

  async get(id: string): Promise<Intent> {
    const intent = await this.#deps.store.get(id);
    if (intent === undefined) throw notFound('Payment intent', id);
    return intent;
  }

  list(query: IntentQuery): Promise<Page<Intent>> {
    return this.#deps.store.list(query);
  }

  /** Stored intents by status, over all of them. */
  counts(): Promise<Record<IntentStatus, number>> {
    return this.#deps.store.counts();
  }

  /**
   * PENDING → CANCELLED, with `payment.cancelled`. With a store shared by several processes, the
   * cancel schedules a backstop job in the same step (due a lease later, cancelled once the event's
   * webhook is logged and queued), as a decision has its job: a process killed after cancelling,
   * or a store that fails then, leaves the webhook to that job, here or on another replica, which
   * makes the same event again (its id derived from the intent's and the cancel's time).
   * @see issue 14 "kill -9"
   */
  async cancel(id: string): Promise<Intent> {
    const { store, scheduler, clock } = this.#deps;
    const now = clock.now();
    const backstop = scheduler.shared ? store.cancelScheduled?.bind(store) : undefined;
    const job = scheduler.job(CANCEL_EVENT_JOB, id, now + scheduler.leaseMs);
    const result = backstop === undefined ? await store.transition(id, ['PENDING'], { status: 'CANCELLED', updatedAt: now }) : await backstop(id, now, job);
    if (!result.ok) {
      if (result.current === undefined) throw notFound('Payment intent', id);
      throw new DomainError('INVALID_STATE', `Payment intent ${id} is ${result.current.status}; only a PENDING intent can be cancelled.`);
    }
    if (backstop !== undefined) scheduler.scheduled(job);
    // Stored: nothing after this fails the request (a retry would be refused, 409). A decision's job
    // left by a store that failed here finds the intent CANCELLED and ends without a word.
    await scheduler.cancel(DECIDE_JOB, id).catch(() => false);
    const cancelled = Object.freeze(result.record);
    await this.#publishBacked(cancelEvent(cancelled), backstop === undefined ? undefined : job);
    return cancelled;
  }

  /** A refund's own name (`refund`'s `token`), for a request under an Idempotency-Key to note before it refunds. */
  newRefundToken(): string {
    return randomUUID();
  }

  /**
   * Refunds `amount` (all that is left without one), with `payment.refunded`; with a shared store
   * backed by a job as a cancel is (its key names the refund: `refundJobKey`).
   * `token`: the refund's name from `newRefundToken`, noted on the request's Idempotency-Key; its
   * retry, after the first answer was lost, passes it again and is answered the refund made (a shared
   * store keeps the names of an intent's last 16 refunds), not refunded a second time.
   */
  async refund(id: string, amount?: number, token?: string): Promise<Intent> {
    if (amount !== undefined && !(Number.isSafeInteger(amount) && amount > 0)) {
      throw validationFailed([{ in: 'body', field: '/amount', rule: 'minimum', message: 'must be a positive integer' }]);
    }
    const { store, scheduler, clock } = this.#deps;
    const now = clock.now();
    const backstop = scheduler.shared ? store.refundScheduled?.bind(store) : undefined;
    const job = scheduler.job(REFUND_EVENT_JOB, id, now + scheduler.leaseMs);
    const result = backstop === undefined ? await store.refund(id, amount, now, token) : await backstop(id, amount, now, job, token);
    switch (result.kind) {
      case 'not_found':
        throw notFound('Payment intent', id);
      case 'invalid_state':
        throw new DomainError('INVALID_STATE', `Payment intent ${id} is ${result.intent.status}; only an APPROVED or PARTIALLY_REFUNDED intent can be refunded.`);
      case 'exceeds':
        throw new DomainError('REFUND_EXCEEDS_AMOUNT', `A refund of ${amount ?? result.left} exceeds the ${result.left} left to refund on ${id}.`);
      case 'refunded': {
        const refunded = Object.freeze(result.intent);
        // The job as the store scheduled it: keyed by the refund (its `publishBacked` cancels it under
        // that key), at the refund's own time, so a refund found made (by its token) tells the same
        // event as its job would, not a second one.
        const backing = backstop === undefined ? undefined : { ...job, key: refundJobKey(id, refunded.refundedAmount, result.amount, result.at) };
        if (backing !== undefined) scheduler.scheduled(backing);
        await this.#publishBacked(refundEvent(refunded, result.amount, result.at), backing);
        return refunded;
      }
    }
  }

  /** Intents whose decision has not run yet. */
  pendingDecisions(): Promise<number> {
    return this.#deps.scheduler.pending(DECIDE_JOB);
  }

  /** The ids of up to `limit` intents whose decision has not run yet. */
  pendingDecisionIds(limit: number): Promise<string[]> {
    return this.#deps.scheduler.pendingKeys(DECIDE_JOB, limit);
  }

  /**
   * The due decision of one intent: applies its planned outcome if it is still PENDING, and
   * publishes its event. The job is completed only once that event's durable effects are done (a
   * shared store's webhook deliveries logged and queued: `publishDurable`), so a process that dies
   * (or a store that fails) in between leaves the job to run again, here or on another replica.
   * That run finds the intent decided and tells the same event again, with the same id (derived
   * from the intent's id and decision time): its webhooks are queued once per event and URL, so
   * nothing is sent as two.
   * @see issue 14 "kill -9"
   */
  async #decide(id: string): Promise<void> {
    const { store, clock, bus } = this.#deps;
    const now = clock.now();
    const result = await store.decide(id, now);
    // Not stored (yet): without `insertScheduled`, `create` schedules the decision before it
    // stores the intent, and with a store shared by several replicas another one can run the job
    // while the insert is still on its way (a short delay under load, or a Redis that is restarting). Throwing makes the
    // scheduler retry it with backoff (MAX_ATTEMPTS), instead of completing the job and leaving the
    // intent PENDING for good. An intent whose create failed after scheduling is never stored: its
    // job is given up after the last attempt.
    if (!result.ok && result.current === undefined) throw new NotStoredYetError(`intent ${id} is not stored (yet): its decision is retried`);
    // Not PENDING any more and never decided (cancelled meanwhile): the cancel won and published its own event.
    // Decided at this run's own time: this run's write, whose reply was lost and whose script the
    // client sent again after a reconnect (ioredis does): the first making, not one made again.
    const event = result.ok ? decisionEvent(result.record) : decisionEventAgain(result.current as Intent, result.current?.decidedAt !== now);
    if (event === undefined) return;
    const durable = bus.publishDurable(event);
    if (durable !== undefined) await durable;
  }

  /**
   * A cancel's or a refund's event. With a backstop job (`backing`, a shared store) the event's
   * durable effects are awaited and then the job is cancelled; when they fail the job stays, to
   * make the event again a lease later, and the request still answers what it did (the change is
   * stored: a client that retried a refund on a 503 would refund twice).
   */
  async #publishBacked(event: PaymentEvent, backing: Job | undefined): Promise<void> {
    const { bus, scheduler } = this.#deps;
    if (backing === undefined) {
      bus.publish(event);
      return;
    }
    try {
      await bus.publishDurable(event);
      await scheduler.cancel(backing.kind, backing.key);
    } catch (error) {
      bus.report(error, event);
    }
  }

  /** A cancel's backstop job: the cancel's event again (nothing when the intent is no longer stored). */
  async #cancelledAgain(id: string): Promise<void> {
    const intent = await this.#deps.store.get(id);
    if (intent?.status !== 'CANCELLED') return;
    await this.#deps.bus.publishDurable({ ...cancelEvent(intent), again: true });
  }

  /** A refund's backstop job: that refund's event again, the intent as the refund left it (nothing when it is no longer stored). */
  async #refundedAgain(key: string): Promise<void> {
    const [id = '', ...figures] = key.split('/');
    const [refundedAfter = Number.NaN, amount = Number.NaN, at = Number.NaN] = figures.map(Number);
    const intent = await this.#deps.store.get(id);
    // Not stored, or (never from refundJobKey) a key that names no refund of it: nothing to make.
    if (intent === undefined || !(intent.refundedAmount >= refundedAfter)) return;
    const status = refundedAfter === intent.amount ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
    await this.#deps.bus.publishDurable({ ...refundEvent(Object.freeze({ ...intent, status, refundedAmount: refundedAfter, updatedAt: at }), amount, at), again: true });
  }

  /** `payment.created`: `intent` is frozen, so the event's snapshot can never change, whoever else holds it. */
  #publishCreated(intent: Readonly<Intent>, now: number): void {
    const { bus, ids } = this.#deps;
    bus.publish({ id: ids('evt'), type: 'payment.created', occurredAt: now, intent });
  }
}

/** The event of a decision: its id derived from the intent's and the decision's time, so it is the same whenever it is made. */
function decisionEvent(intent: Intent): PaymentEvent {
  const decidedAt = intent.decidedAt ?? intent.updatedAt;
  return { id: derivedId('evt', decidedAt, intent.id), type: intent.status === 'APPROVED' ? 'payment.approved' : 'payment.failed', occurredAt: decidedAt, intent: Object.freeze(intent) };
}

/** The event of a cancel: its id derived from the intent's and the cancel's time (an intent cancelled is never decided), so a backstop job makes the same. */
function cancelEvent(intent: Readonly<Intent>): PaymentEvent {
  return { id: derivedId('evt', intent.updatedAt, intent.id), type: 'payment.cancelled', occurredAt: intent.updatedAt, intent };
}

/** The event of a refund: its id derived from the refund's time and key (the intent's id and its total after it), so a backstop job makes the same. */
function refundEvent(intent: Readonly<Intent>, amount: number, at: number): PaymentEvent {
  return { id: derivedId('evt', at, `${intent.id}/${intent.refundedAmount}`), type: 'payment.refunded', occurredAt: at, intent, refundAmount: amount };
}

/**
 * The event of a decision found made (by an earlier run of its job, `again`; or by this run,
 * whose reply was lost), made again: the same id and time, and the intent as that decision left
 * it (a refund since does not change what the event said). Undefined for an intent that was
 * never decided (cancelled).
 */
function decisionEventAgain(current: Intent, again: boolean): PaymentEvent | undefined {
  const { decidedAt, planned } = current;
  if (decidedAt === null) return undefined;
  const event = decisionEvent({ ...current, status: planned.status, failureCode: planned.failureCode, refundedAmount: 0, updatedAt: decidedAt });
  if (again) event.again = true;
  return event;
}
