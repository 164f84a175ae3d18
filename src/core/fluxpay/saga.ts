import type { Clock } from '../clock.ts';
import { FailureCounts } from '../failure-counts.ts';
import type { Scheduler } from '../scheduler.ts';
import { compensationsLeft, sagaDid, stampOf, type FluxPayIds, type Saga, type SagaStepName } from './model.ts';
import type { FluxPayStore } from './ports.ts';

/**
 * The usage saga's orchestrator (document 002: "Saga 패턴 (Orchestration)"). A saga runs its
 * forward steps (ORDER_RESERVED: the paid order is held for the usage; CREDITS_DEDUCTED), then
 * waits for the client's `service.usage.completed` (order COMPLETED, payment CONFIRMED) or
 * `service.usage.failed`, or for its deadline (FLUXPAY_USAGE_TIMEOUT_MS, due work on the injected
 * clock). A failure, a timeout or a forward step that cannot run starts the compensations, in
 * reverse order: CREDITS_RESTORED, PAYMENT_CANCELLED (refund), ORDER_CANCELLED.
 *
 * Each step is one store operation that records itself with its effect and its events, and is
 * idempotent (a step recorded before is not run again), so the orchestrator may run a saga again
 * from its record at any time. When a store operation fails (the store is down, say), the saga is
 * advanced again later with a growing delay, without limit: a compensation is retried until it
 * succeeds, and a saga is never left half compensated.
 * @see issue 11 "The usage saga", ../../../../shared/seeds/002_38de3c186cddda84.txt
 */

export const SAGA_TIMEOUT_JOB = 'fluxpay.saga.timeout';
export const SAGA_ADVANCE_JOB = 'fluxpay.saga.advance';
const RETRY_BASE_MS = 50;
const RETRY_MAX_MS = 10_000;

export interface SagaDeps {
  store: FluxPayStore;
  scheduler: Scheduler;
  clock: Clock;
  ids: FluxPayIds;
  /** Something was written (the outbox relay runs). */
  onChange: () => void;
  /** A store operation of a saga failed; it will be retried. */
  onRetry: (error: unknown, sagaId: string) => void;
  /** A saga reached COMPLETED or COMPENSATED (told once per saga). */
  onFinished?: (saga: Saga) => void;
}

export class UsageSagas {
  readonly #deps: SagaDeps;
  /** Failed advances per saga, for the retry delay, until one succeeds here (or, advanced elsewhere, well after the last failure here). */
  readonly #failures: FailureCounts<number>;

  constructor(deps: SagaDeps) {
    this.#deps = deps;
    this.#failures = new FailureCounts(2 * (RETRY_MAX_MS + deps.scheduler.leaseMs));
    deps.scheduler.register(SAGA_TIMEOUT_JOB, (sagaId) => this.timeout(sagaId));
    deps.scheduler.register(SAGA_ADVANCE_JOB, async (sagaId) => {
      await this.#advance(sagaId, true);
    });
  }

  /** Arms the deadline of a new saga. */
  armTimeout(saga: Saga): Promise<void> {
    return this.#deps.scheduler.schedule(SAGA_TIMEOUT_JOB, saga.sagaId, saga.deadlineAt);
  }

  disarmTimeout(sagaId: string): Promise<boolean> {
    return this.#deps.scheduler.cancel(SAGA_TIMEOUT_JOB, sagaId);
  }

  /**
   * The deadline passed: a RUNNING saga compensates. A failure is retried as an advance; when that
   * retry cannot be scheduled either (the store away), it throws, so the scheduler runs this job
   * again (or, failing that too, another process once its claim lapses).
   */
  async timeout(sagaId: string): Promise<void> {
    const { store, clock, ids } = this.#deps;
    try {
      const result = await store.resolveSaga(sagaId, { to: 'COMPENSATING', reason: 'timeout' }, null, stampOf(ids, clock.now()));
      if (result.kind === 'not_found') return;
      // Resolved now, or before (by an attempt whose reply was lost): either way, run what is left.
    } catch (error) {
      // The saga's timeout must still happen: retry it, not just an advance.
      this.#deps.onRetry(error, sagaId);
      await this.#deps.scheduler.schedule(SAGA_TIMEOUT_JOB, sagaId, clock.now() + this.#delay(sagaId));
      return;
    }
    await this.#advance(sagaId, true);
  }

  /**
   * Runs the saga's next steps from its record until it waits (RUNNING with every forward step
   * done) or ends. Never throws: a failed store operation schedules another advance.
   */
  advance(sagaId: string): Promise<Saga | undefined> {
    return this.#advance(sagaId, false);
  }

  /**
   * `advance`; in a job (`inJob`), a retry that cannot be scheduled throws instead of being only
   * reported, so the job is not completed with its saga left half compensated and nothing to go on.
   */
  async #advance(sagaId: string, inJob: boolean): Promise<Saga | undefined> {
    const { store, clock, ids, scheduler, onChange, onRetry } = this.#deps;
    let saga: Saga | undefined;
    try {
      saga = await store.getSaga(sagaId);
      for (;;) {
        if (saga === undefined) {
          this.#failures.delete(sagaId);
          return undefined;
        }
        const step = nextStep(saga);
        if (step === undefined) break;
        const outcome = await store.runSagaStep(sagaId, step, stampOf(ids, clock.now()), ids('cu'));
        onChange();
        if (outcome.kind === 'not_found') {
          this.#failures.delete(sagaId);
          return undefined;
        }
        if (outcome.kind === 'refused') break;
        // Counted once: by the call whose step ended it.
        if (outcome.kind === 'done' && outcome.saga.status === 'COMPENSATED') this.#deps.onFinished?.(outcome.saga);
        saga = outcome.saga;
      }
    } catch (error) {
      onRetry(error, sagaId);
      try {
        await scheduler.schedule(SAGA_ADVANCE_JOB, sagaId, clock.now() + this.#delay(sagaId));
      } catch (unscheduled) {
        onRetry(unscheduled, sagaId);
        if (inJob) throw unscheduled;
      }
      return saga;
    }
    this.#failures.delete(sagaId);
    if (saga.status === 'COMPENSATED' || saga.status === 'COMPLETED') await this.disarmTimeout(sagaId).catch((error: unknown) => onRetry(error, sagaId));
    return saga;
  }

  /** A saga was completed (by the client's `service.usage.completed`, in the store step that resolved it). */
  completed(saga: Saga): void {
    this.#deps.onFinished?.(saga);
  }

  #delay(sagaId: string): number {
    const now = this.#deps.clock.now();
    const failures = (this.#failures.get(sagaId, now) ?? 0) + 1;
    this.#failures.set(sagaId, failures, now);
    return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(failures - 1, 20));
  }
}

/** The step a saga runs next, from its record; undefined when it waits or has ended. */
export function nextStep(saga: Saga): SagaStepName | undefined {
  if (saga.status === 'RUNNING') return saga.plan.find((step) => !sagaDid(saga, step));
  if (saga.status === 'COMPENSATING') return compensationsLeft(saga)[0];
  return undefined;
}
