import type { Clock } from '../clock.ts';
import { storeFull } from '../errors.ts';
import { fingerprint } from '../idempotency.ts';
import { FluxPayError, notFound } from './errors.ts';
import { stampOf, type FluxPayIds, type InboundEvent, type Saga, type UsageEventType } from './model.ts';
import type { FluxPayStore } from './ports.ts';
import type { UsageSagas } from './saga.ts';

/**
 * FluxPay's usage events (source document 002's `service.usage.requested | completed | failed`):
 * a request starts a usage saga (its order reserved, its credits deducted), a completion ends it,
 * a failure compensates it; each event is de-duplicated by its eventId, and one sent again
 * finishes what the first delivery started. The saga's steps and deadline run in ./saga.ts; every
 * change here is one store operation.
 * @see issue 11
 */

export interface UsageEvent {
  eventId: string;
  type: UsageEventType;
  userId: string;
  serviceId: string;
  usageId: string;
  orderId?: string | undefined;
  credits?: number | undefined;
}

export interface EventResult {
  eventId: string;
  type: UsageEventType;
  /** True when the eventId was seen before: nothing was done again. */
  duplicate: boolean;
  saga: Saga | undefined;
}

export interface UsageEventDeps {
  store: FluxPayStore;
  sagas: UsageSagas;
  clock: Clock;
  ids: FluxPayIds;
  /** FLUXPAY_USAGE_TIMEOUT_MS: a usage saga compensates unless completed within it. */
  usageTimeoutMs: number;
  /** The billing policy's price of a use (FluxPayService.priceOf). */
  priceOf: (serviceId: string, amount: number | undefined, field: string) => number;
  /** Told of each change the outbox relay must publish. */
  changed: () => void;
}

export class UsageEvents {
  readonly #deps: UsageEventDeps;

  constructor(deps: UsageEventDeps) {
    this.#deps = deps;
  }

  /** One event, de-duplicated by eventId. */
  handle(event: UsageEvent): Promise<EventResult> {
    switch (event.type) {
      case 'service.usage.requested':
        return this.#requested(event);
      case 'service.usage.completed':
      case 'service.usage.failed':
        return this.#resolved(event);
    }
  }

  async #requested(event: UsageEvent): Promise<EventResult> {
    const { store, clock, ids, usageTimeoutMs } = this.#deps;
    const orderId = event.orderId ?? null;
    const credits = event.credits ?? (orderId === null ? this.#deps.priceOf(event.serviceId, undefined, 'credits') : null);
    const now = clock.now();
    const saga: Saga = {
      sagaId: ids('saga'),
      eventId: event.eventId,
      userId: event.userId,
      serviceId: event.serviceId,
      usageId: event.usageId,
      orderId,
      credits,
      status: 'RUNNING',
      plan: [...(orderId === null ? [] : (['ORDER_RESERVED'] as const)), ...(credits === null ? [] : (['CREDITS_DEDUCTED'] as const))],
      steps: [],
      failureReason: null,
      deadlineAt: now + usageTimeoutMs,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    };
    // The deadline is armed before the saga is written, so no saga is ever RUNNING without one, even
    // when the process stops (or the store fails) right after the write; a deadline whose saga was
    // not written finds none and does nothing.
    await this.#deps.sagas.armTimeout(saga);
    const started = await store.startSaga(saga, inbound(event, now));
    // Tidiness only: a deadline left behind finds no saga and does nothing; the outcome is what counts.
    if (started.kind !== 'started') await this.#deps.sagas.disarmTimeout(saga.sagaId).catch(() => undefined);
    switch (started.kind) {
      case 'full':
        throw storeFull('fluxpay');
      case 'conflict':
        throw new FluxPayError('PAY_003', `Event ${event.eventId} was already received with another body (${started.event.type}).`);
      case 'usage_taken':
        throw new FluxPayError('PAY_003', `Usage ${event.usageId} of user ${event.userId} already has saga ${started.saga.sagaId}.`);
      case 'duplicate':
        // The first delivery may have stopped half way (its reply lost, say): carry on from the record.
        return { eventId: event.eventId, type: event.type, duplicate: true, saga: started.saga === undefined ? undefined : await this.#carryOn(started.saga) };
      case 'started':
        break;
    }
    return { eventId: event.eventId, type: event.type, duplicate: false, saga: await this.#carryOn(started.saga, true) };
  }

  async #resolved(event: UsageEvent): Promise<EventResult> {
    const { store, clock, ids } = this.#deps;
    const saga = await store.sagaOfUsage(event.userId, event.usageId);
    if (saga === undefined) {
      const seen = await store.inboundEvent(event.eventId);
      if (seen === undefined) throw notFound('The saga of usage', event.usageId, event.userId);
    }
    const now = clock.now();
    const resolution = event.type === 'service.usage.completed' ? ({ to: 'COMPLETED' } as const) : ({ to: 'COMPENSATING', reason: 'service.usage.failed' } as const);
    const outcome = await store.resolveSaga(saga?.sagaId ?? '', resolution, inbound(event, now), stampOf(ids, now));
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('The saga of usage', event.usageId, event.userId);
      case 'conflict':
        throw new FluxPayError('PAY_003', `Event ${event.eventId} was already received with another body (${outcome.event.type}).`);
      case 'duplicate':
        return { eventId: event.eventId, type: event.type, duplicate: true, saga: outcome.saga === undefined ? undefined : await this.#carryOn(outcome.saga) };
      case 'busy':
        throw new FluxPayError('PAY_004', `Saga ${outcome.saga.sagaId} is still running its steps; send the completion again shortly.`);
      case 'contradicted':
        // Ended otherwise before (by the timeout, a step that could not run, or the other end event:
        // the store operation decided which came first), so a client never reads a completion of a usage whose charge was undone.
        throw contradiction(event, outcome.saga);
      case 'final':
        return { eventId: event.eventId, type: event.type, duplicate: false, saga: await this.#carryOn(outcome.saga) };
      case 'resolved':
        break;
    }
    this.#deps.changed();
    if (outcome.saga.status === 'COMPLETED') this.#deps.sagas.completed(outcome.saga);
    return { eventId: event.eventId, type: event.type, duplicate: false, saga: await this.#carryOn(outcome.saga) };
  }

  /**
   * Takes a saga on from its record: a running one has its deadline armed (again: the same due
   * time; `armed`: it was, just now) and its next steps run; a compensating one its compensations; an ended one its deadline
   * disarmed. Every call is safe to repeat, so a request that failed half way and is sent again
   * finishes what the first one started.
   */
  async #carryOn(saga: Saga, armed = false): Promise<Saga> {
    const { sagas } = this.#deps;
    if (saga.status === 'COMPLETED' || saga.status === 'COMPENSATED') {
      await sagas.disarmTimeout(saga.sagaId);
      return saga;
    }
    if (saga.status === 'RUNNING' && !armed) await sagas.armTimeout(saga);
    return (await sagas.advance(saga.sagaId)) ?? saga;
  }
}

/**
 * PAY_004 (the order's state does not allow this), as for a completion that comes too early: the
 * event does not fit the state of the saga and of its order. Not PAY_003 (already processed), which
 * a client may take for a repeat of its own request that succeeded.
 */
function contradiction(event: UsageEvent, saga: Saga): FluxPayError {
  const usage = `Usage ${event.usageId} of user ${event.userId}`;
  if (saga.status === 'COMPLETED') return new FluxPayError('PAY_004', `${usage} cannot fail: its saga ${saga.sagaId} is COMPLETED, its charge kept.`);
  return new FluxPayError('PAY_004', `${usage} cannot be completed: its saga ${saga.sagaId} is ${saga.status} (${saga.failureReason ?? 'failed'}), its charge undone.`);
}

function inbound(event: UsageEvent, now: number): InboundEvent {
  return { eventId: event.eventId, type: event.type, userId: event.userId, usageId: event.usageId, fingerprint: fingerprint(event), sagaId: null, receivedAt: now };
}
