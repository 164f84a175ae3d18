import type { Clock } from '../core/clock.ts';
import type { Delivery } from '../core/deliveries.ts';
import { dropsAttempt, ReorderHold, type WebhookFaultPlan } from '../core/faults/webhook-policy.ts';
import type { RandomSource } from '../core/random.ts';
import type { AttemptOutcome } from './attempt.ts';

/** Deliveries held for reordering at most; beyond it a delivery is sent at once (never dropped). */
const MAX_REORDER_HELD = 10_000;

export interface WebhookFaults {
  plan(url: string): Promise<WebhookFaultPlan>;
  /** Shuffles reordered deliveries (the rules' seeded stream). */
  random: RandomSource;
}

export interface FaultPlansDeps {
  clock: Clock;
  /** The webhook fault rules; none: nothing is held for reordering. */
  faults: WebhookFaults | undefined;
  /** The delivery queue is shared by several processes (Redis). */
  shared: boolean;
  /** With a shared queue, the plans kept at most (`keep`). */
  maxPlans: number;
  /** Sends a delivery the reorder hold lets go (its window ended, or the hold closed). */
  release: (delivery: Delivery) => void;
}

/**
 * What a dispatcher keeps of webhook fault rules (issue 15) once a new delivery's plan is decided:
 * the plans of its deliveries held for reordering, and the hold itself. A `delay` waits as due work
 * (the dispatcher's), a `duplicate` is a second delivery, and a `drop_attempts` plan is logged with
 * its delivery (`dropped`), so that every replica's attempts follow it.
 */
export class FaultPlans {
  readonly #deps: FaultPlansDeps;
  /** The fault plans of this process's unfinished deliveries held for reordering (`keep`; none without such a rule). */
  readonly #plans = new Map<string, WebhookFaultPlan>();
  readonly #reorder: ReorderHold<Delivery> | undefined;

  constructor(deps: FaultPlansDeps) {
    this.#deps = deps;
    if (deps.faults !== undefined) {
      this.#reorder = new ReorderHold<Delivery>({
        clock: deps.clock,
        random: deps.faults.random,
        maxHeld: MAX_REORDER_HELD,
        release: (_target, deliveries) => {
          for (const delivery of deliveries) deps.release(delivery);
        },
      });
    }
  }

  /**
   * Keeps the fault plan of a delivery held here for reordering (a `drop_attempts` plan is logged
   * with its delivery instead). With a shared queue a delivery another replica finishes leaves its
   * plan here (before 2026-12-04 for good), so at most `maxFaultPlans` are kept (WEBHOOK_QUEUE_MAX
   * by default), the oldest forgotten first. Memory forgets each as its delivery ends.
   */
  keep(id: string, plan: WebhookFaultPlan): void {
    if (plan.reorder === null) return;
    if (this.#deps.shared && this.#plans.size >= this.#deps.maxPlans) this.#plans.delete(this.#plans.keys().next().value as string);
    this.#plans.set(id, plan);
  }

  /** The delivery's plan holds its first attempt for reordering. */
  reorders(id: string): boolean {
    return this.#plans.get(id)?.reorder != null;
  }

  /** The window of the delivery's reorder hold (ms); undefined when its plan holds none, or when the hold is closed (a drain: it goes now). */
  reorderWindowMs(id: string): number | undefined {
    if (this.#reorder?.closed === true) return undefined;
    return this.#plans.get(id)?.reorder?.windowMs;
  }

  /** Holds the delivery for reordering when its plan says so (true), to be released later; false: it goes now. */
  hold(delivery: Delivery): boolean {
    const reorder = this.#plans.get(delivery.id)?.reorder;
    return reorder != null && this.#reorder !== undefined && this.#reorder.hold(delivery.url, delivery, reorder.windowMs);
  }

  forget(id: string): void {
    this.#plans.delete(id);
  }

  /** Releases every delivery held for reordering now (the drain is for sending what was accepted). */
  close(): void {
    this.#reorder?.close();
  }
}

/** A plan that holds a new delivery back in this process (`delay`, `reorder`) before its first attempt. */
export function heldBy(plan: WebhookFaultPlan): boolean {
  return plan.delay !== null || plan.reorder !== null;
}

/** The outcome of an attempt a `drop_attempts` plan loses; undefined when the attempt is to go out. */
export function dropped(delivery: Delivery): AttemptOutcome | undefined {
  const drop = delivery.dropAttempts;
  if (drop === undefined || delivery.seriesStart !== 0 || !dropsAttempt(drop, delivery.attempts.length + 1)) return undefined;
  // `drop_attempts`: lost as if by the network, so the retry policy runs as against a flaky receiver
  // (in the first series only: a replay's attempts go out).
  return { statusCode: null, error: `network_error: dropped by fault rule ${drop.ruleId}`, retryAfterMs: null, durationMs: 0 };
}
