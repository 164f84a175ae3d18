import type { Clock } from '../core/clock.ts';
import { backToPending, type Delivery, type DeliveryChange } from '../core/deliveries.ts';
import type { DeliveryLogStore, Job, RequeueOutcome } from '../core/ports.ts';
import type { Scheduler } from '../core/scheduler.ts';
import type { FaultPlans } from './fault-plans.ts';

/**
 * With a shared queue, the backstop of a delivery held for reordering: due its window and a
 * scheduler lease after the hold began, cancelled at its release. It runs only if the replica that
 * held it died (or stalled) meanwhile, and queues the delivery for any replica to send. A kind of
 * its own, so that cancelling it never cancels a retry.
 */
export const REORDER_BACKSTOP_JOB = 'webhook.reorder-backstop';

export interface SharedReorderDeps {
  clock: Clock;
  log: DeliveryLogStore;
  scheduler: Scheduler;
  /** The dispatcher's fault plans, whose reorder hold keeps the held deliveries. */
  faultPlans: FaultPlans;
  onError: (error: unknown, context: string) => void;
  /** Told of each delivery a backstop queued. */
  onBackstopQueued?: ((id: string) => void) | undefined;
  /** The dispatcher has closed: a backstop that comes due then is handed back. */
  closed: () => boolean;
  /** The dispatcher's requeue: marked pending and queued in one step, only while as read. */
  requeue: (read: Delivery, change: DeliveryChange) => Promise<RequeueOutcome>;
  /** The dispatcher's mark of a delivery with its job, in one store call where the log can. */
  markWithJob: (id: string, change: DeliveryChange, job: Job) => Promise<Delivery | undefined>;
  /** The dispatcher's hand-back of a job a closing dispatcher found, for another replica. */
  handBack: (kind: string, id: string) => Promise<void>;
}

/**
 * A reorder hold whose deliveries outlive the replica that holds them (a shared queue, Redis). A
 * held delivery is marked retrying until its window ends, with a backstop job due a scheduler lease
 * after that; the replica holding it releases it (queued, the backstop cancelled), or, when that
 * replica died or stalled, the backstop queues it for any replica. Before 2026-12-06 a held
 * delivery lived in the accepting replica's memory alone, logged pending: a replica killed during
 * the window left it pending for good, queued nowhere, and a replay refused it (a user test).
 */
export class SharedReorder {
  readonly #deps: SharedReorderDeps;
  /** The releases under way (`releaseAll` waits for them). */
  readonly #releasing = new Set<Promise<void>>();

  constructor(deps: SharedReorderDeps) {
    this.#deps = deps;
    deps.scheduler.register(REORDER_BACKSTOP_JOB, (id) => this.#backstop(id));
  }

  /**
   * Marks a new delivery retrying until its window ends, with its backstop job, in one store call;
   * then holds it here. A hold that is full sends it now.
   */
  async hold(delivery: Delivery, windowMs: number): Promise<undefined> {
    const { clock, scheduler, onError, faultPlans } = this.#deps;
    const now = clock.now();
    const change = { status: 'retrying' as const, nextAttemptAt: now + windowMs, failureReason: null, updatedAt: now };
    let held: Delivery | undefined = delivery;
    try {
      held = await this.#deps.markWithJob(delivery.id, change, scheduler.job(REORDER_BACKSTOP_JOB, delivery.id, now + windowMs + scheduler.leaseMs));
    } catch (error) {
      // The store failed (a review: the delivery was left pending for good): held all the same, as
      // logged before the mark (pending, in this process only), and released as any; had the mark
      // taken effect, the release finds it changed and its backstop sends it.
      onError(error, `marking webhook delivery ${delivery.id} held for reordering (held in this process only, sent at its window's end)`);
    }
    if (held === undefined) return undefined;
    // Full: released now.
    if (!faultPlans.hold(held)) await this.release(held);
    return undefined;
  }

  /** Lets every held delivery go now and waits until each is queued (or left to its backstop): a drain alone then sends them from the stream. */
  async releaseAll(): Promise<void> {
    this.#deps.faultPlans.close();
    await Promise.all([...this.#releasing]);
  }

  /** A held delivery let go (its window ended, or the hold closed), counted among the releases under way. */
  release(held: Delivery): Promise<void> {
    const releasing = this.#release(held).finally(() => this.#releasing.delete(releasing));
    this.#releasing.add(releasing);
    return releasing;
  }

  /**
   * Marked pending and queued in one step, only while it is still as marked (its backstop, run by
   * another replica that thought this one dead, may have queued it already), then its backstop
   * cancelled. Where the store fails, the backstop sends it.
   */
  async #release(held: Delivery): Promise<void> {
    const { clock, scheduler, onError, requeue } = this.#deps;
    let outcome: RequeueOutcome;
    try {
      const change = backToPending(clock.now());
      outcome = await requeue(held, change);
      // Held as logged before its mark, which failed here but took effect in the store (its reply
      // lost): marked, never attempted, so queued from that (a review: left to its backstop, a lease later).
      if (outcome.kind === 'moved' && held.status === 'pending' && outcome.delivery.status === 'retrying' && outcome.delivery.attempts.length === 0) {
        outcome = await requeue(outcome.delivery, change);
      }
    } catch (error) {
      onError(error, `releasing webhook delivery ${held.id} held for reordering (its backstop job queues it later)`);
      return;
    }
    // Queued here: its backstop has nothing left to do. Changed meanwhile (a backstop queued it, or
    // a mark that failed for this process took effect): the backstop stays, for the latter.
    if (outcome.kind !== 'queued') return;
    await scheduler.cancel(REORDER_BACKSTOP_JOB, held.id).catch((error: unknown) => {
      onError(error, `cancelling the reorder backstop of webhook delivery ${held.id}, queued (the backstop, when due, finds it sent and does nothing)`);
    });
  }

  /**
   * A backstop come due: the replica that held the delivery died or stalled (a live one cancels it
   * at the release). Queued for any replica to send, still unshuffled, only while it is as that
   * replica marked it: retrying, never attempted.
   */
  async #backstop(id: string): Promise<void> {
    const { log, clock } = this.#deps;
    const found = await log.get(id);
    if (found?.status !== 'retrying' || found.attempts.length > 0) return;
    // As a retry job found by a closing dispatcher: handed back for another replica.
    if (this.#deps.closed()) return this.#deps.handBack(REORDER_BACKSTOP_JOB, id);
    const outcome = await this.#deps.requeue(found, backToPending(clock.now()));
    if (outcome.kind === 'queued') this.#deps.onBackstopQueued?.(id);
  }
}
