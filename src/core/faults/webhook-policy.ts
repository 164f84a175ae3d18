import type { Clock, Timer } from '../clock.ts';
import type { RandomSource } from '../random.ts';
import type { WebhookAction } from './model.ts';

/**
 * What webhook rules do to one delivery, decided once when the delivery is created
 * (FaultRuleService.planWebhook) and then applied by the dispatcher with the helpers below:
 * - `delay`: the first attempt waits `ms` more (sampled from the rule's distribution);
 * - `duplicate`: the same event, with the same id, is sent twice (a second delivery whose plan has
 *   no duplicate, so it is sent exactly twice);
 * - `reorder`: the delivery is held with the other deliveries to its target for `windowMs` from
 *   the first of them, then all are released in a shuffled order (ReorderHold);
 * - `drop_attempts`: the first `n` attempts fail as if the network lost them, so the retry policy
 *   runs as it would against a flaky receiver.
 * Each is one slot: at most one rule fills it, the first in rule order that applies.
 * @see issue 15 "Webhook faults"
 */

export type WebhookSlot = WebhookAction['type'];

export interface WebhookFaultPlan {
  /** The rules that shape the delivery, in rule order. */
  ruleIds: readonly string[];
  duplicate: { ruleId: string } | null;
  reorder: { ruleId: string; windowMs: number } | null;
  delay: { ruleId: string; ms: number } | null;
  dropAttempts: { ruleId: string; n: number } | null;
}

export const NO_WEBHOOK_FAULTS: WebhookFaultPlan = Object.freeze({ ruleIds: Object.freeze([]) as readonly string[], duplicate: null, reorder: null, delay: null, dropAttempts: null });

/** Whether attempt `attempt` (1 for the first) is to be lost under a `drop_attempts` plan (a delivery's `dropAttempts`): the first `n` are. */
export function dropsAttempt(drop: WebhookFaultPlan['dropAttempts'] | undefined, attempt: number): boolean {
  return drop != null && attempt <= drop.n;
}

/** When the first attempt of a delivery created at `now` is due (the delay added), and how many times the event goes out. */
export function firstSend(plan: WebhookFaultPlan, now: number): { at: number; copies: 1 | 2 } {
  return { at: now + (plan.delay?.ms ?? 0), copies: plan.duplicate === null ? 1 : 2 };
}

/** The plan of the duplicate of a delivery: the same faults, but not duplicated again. */
export function duplicatePlan(plan: WebhookFaultPlan): WebhookFaultPlan {
  return { ...plan, duplicate: null };
}

export interface ReorderHoldOptions<T> {
  clock: Clock;
  random: RandomSource;
  /** Receives each target's held items when its window ends, shuffled. */
  release: (target: string, items: T[]) => void;
  /** Items held across every target; beyond it `hold` refuses (the caller sends at once: nothing is dropped). */
  maxHeld: number;
}

interface Window<T> {
  items: T[];
  timer: Timer;
}

/**
 * Holds deliveries per target (a URL) for a window that opens with the first one, then releases
 * them all in a shuffled order. A shuffle of two or more items never releases them in the order
 * they came: that order is swapped for the next one, so a test that expects reordered webhooks
 * always sees them out of order (a shuffle alone keeps the order once in n! windows).
 * Runs on the injected clock and random source; `close` releases everything still held.
 */
export class ReorderHold<T> {
  readonly #windows = new Map<string, Window<T>>();
  readonly #options: ReorderHoldOptions<T>;
  #held = 0;
  /** Closed (a drain): nothing more is held, each item goes at once. */
  #closed = false;

  constructor(options: ReorderHoldOptions<T>) {
    this.#options = options;
  }

  /** Closed by `close`: nothing more is held. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Items held now, across every target. */
  get held(): number {
    return this.#held;
  }

  /** Holds `item` in `target`'s window (opening one of `windowMs` if none is open). False when full or closed: send it now. */
  hold(target: string, item: T, windowMs: number): boolean {
    if (this.#closed || this.#held >= this.#options.maxHeld) return false;
    const open = this.#windows.get(target);
    if (open !== undefined) open.items.push(item);
    else {
      const timer = this.#options.clock.schedule(windowMs, () => this.#release(target));
      this.#windows.set(target, { items: [item], timer });
    }
    this.#held++;
    return true;
  }

  /**
   * Releases every window now, and holds nothing from then on (on shutdown: held deliveries are
   * sent, not lost; before 2026-12-06 one held after the close waited its whole window, which a
   * drain on Redis left to the next start: a review).
   */
  close(): void {
    this.#closed = true;
    for (const [target, window] of [...this.#windows]) {
      window.timer.cancel();
      this.#release(target);
    }
  }

  #release(target: string): void {
    const window = this.#windows.get(target);
    if (window === undefined) return;
    this.#windows.delete(target);
    this.#held -= window.items.length;
    this.#options.release(target, shuffled(window.items, this.#options.random));
  }
}

/**
 * A Fisher–Yates shuffle that never returns two or more items in their given order. It draws
 * n − 1 numbers, whatever the outcome, so a seeded stream stays aligned.
 * @see https://en.wikipedia.org/wiki/Fisher%E2%80%93Yates_shuffle
 */
export function shuffled<T>(items: readonly T[], random: RandomSource): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  if (out.length > 1 && out.every((item, i) => item === items[i])) [out[0], out[1]] = [out[1] as T, out[0] as T];
  return out;
}
