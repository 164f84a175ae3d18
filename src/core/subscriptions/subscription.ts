import type { Temporal } from 'temporal-polyfill';
import { isUpgrade, periodEnd, periodStart, proratedCharge } from './period.ts';

/**
 * FluxPay subscriptions (source document 002, "구독 도메인"): `ACTIVE → PAST_DUE → EXPIRED`, and
 * `ACTIVE → CANCELED (at period end) → EXPIRED`. These are the rules as pure functions of a
 * subscription, its plan and the time; the service charges through the payment engine and stores
 * the result in one guarded step.
 *
 * - Renewal at the period end: a charge that succeeds starts the next period (with the plan a
 *   downgrade scheduled); one that is declined makes the subscription PAST_DUE, and it is charged
 *   again after each dunning offset (default after 1, 3 and 5 days, counted from the period end);
 *   when the last retry is declined it EXPIRES. A retry that succeeds renews it: the new period
 *   starts where the unpaid one did, so the anchor day never drifts.
 * - Cancel: an ACTIVE subscription is CANCELED and stays usable until its period ends, then
 *   EXPIRES without a charge; a PAST_DUE one expires at once (dunning stops).
 * - Change of plan: a plan that costs more per unit of time is an upgrade, applied at once for a
 *   prorated charge (the difference of the two rates over the time left in the period); any other
 *   change applies at the next renewal.
 * @see issue 12 "Subscriptions"
 */

export const SUBSCRIPTION_STATUSES = ['ACTIVE', 'PAST_DUE', 'CANCELED', 'EXPIRED'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export const INVOICE_KINDS = ['INITIAL', 'RENEWAL', 'RETRY', 'PRORATION'] as const;
export type InvoiceKind = (typeof INVOICE_KINDS)[number];

/** A plan as subscriptions use it: its price per period. */
export interface BillingPlan {
  planId: string;
  price: number;
  currency: string;
  /** The ISO 8601 text, as the policy gave it. */
  periodText: string;
  period: Temporal.Duration;
  /** TIME_SCALE (issue 15): periods last `period` × this; unset: 1. */
  timeScale?: number | undefined;
}

export interface Subscription {
  /** `sub_<ULID>` */
  subscriptionId: string;
  userId: string;
  planId: string;
  status: SubscriptionStatus;
  /** Periods count from here (epoch ms), `periodIndex` of them so far; a change of period length re-anchors. */
  anchor: number;
  periodIndex: number;
  /** The period the anchor counts in (the plan's when it was last anchored). */
  periodText: string;
  currentPeriodStart: number;
  currentPeriodEnd: number;
  /** A downgrade (or a change of the same cost) waiting for the next renewal. */
  pendingPlanId: string | null;
  /** Charges of the current renewal declined so far (0 unless PAST_DUE). */
  dunningAttempt: number;
  /** When PAST_DUE: the next charge attempt. */
  nextRetryAt: number | null;
  canceledAt: number | null;
  expiredAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** Bumped by every change; a store applies a change only to the version it was computed from. */
  version: number;
  /**
   * The user's credits used (deducted minus refunded, of all time) before `currentPeriodStart`,
   * taken when the period began, so the period's use is the running total less this however few
   * credit transactions are still held; absent in a record an earlier version wrote.
   */
  creditsUsedBefore?: number;
  /**
   * When PAST_DUE: the user's credits used before `currentPeriodEnd`, taken when its renewal was
   * first declined (at the period's end), for the period a paid retry starts there, days later,
   * when the credit transactions since then may have gone.
   */
  creditsUsedBeforeEnd?: number;
}

/** What the scheduler should do with a subscription at `now`. */
export type DueAction = 'renew' | 'retry' | 'expire';

export function dueAction(subscription: Subscription, now: number): DueAction | null {
  switch (subscription.status) {
    case 'ACTIVE':
      return now >= subscription.currentPeriodEnd ? 'renew' : null;
    case 'CANCELED':
      return now >= subscription.currentPeriodEnd ? 'expire' : null;
    case 'PAST_DUE':
      return subscription.nextRetryAt !== null && now >= subscription.nextRetryAt ? 'retry' : null;
    case 'EXPIRED':
      return null;
  }
}

/** When the subscription next needs the scheduler (period end or retry), or null when never. */
export function nextDueAt(subscription: Subscription): number | null {
  switch (subscription.status) {
    case 'ACTIVE':
    case 'CANCELED':
      return subscription.currentPeriodEnd;
    case 'PAST_DUE':
      return subscription.nextRetryAt;
    case 'EXPIRED':
      return null;
  }
}

/** A new ACTIVE subscription whose first period starts at `now` (its first charge succeeded). */
export function activated(fields: { subscriptionId: string; userId: string }, plan: BillingPlan, now: number): Subscription {
  return {
    ...fields,
    planId: plan.planId,
    status: 'ACTIVE',
    anchor: now,
    periodIndex: 0,
    periodText: plan.periodText,
    currentPeriodStart: now,
    currentPeriodEnd: periodEnd(now, plan.period, 0, plan.timeScale),
    pendingPlanId: null,
    dunningAttempt: 0,
    nextRetryAt: null,
    canceledAt: null,
    expiredAt: null,
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
}

/** The plan the next renewal charges: a scheduled change, else the current plan. */
export function renewalPlanId(subscription: Subscription): string {
  return subscription.pendingPlanId ?? subscription.planId;
}

/** The period the renewal of `subscription` on `plan` would pay for. */
export function nextPeriod(subscription: Subscription, plan: BillingPlan): { anchor: number; periodIndex: number; start: number; end: number } {
  if (plan.periodText === subscription.periodText) {
    const periodIndex = subscription.periodIndex + 1;
    return { anchor: subscription.anchor, periodIndex, start: periodStart(subscription.anchor, plan.period, periodIndex, plan.timeScale), end: periodEnd(subscription.anchor, plan.period, periodIndex, plan.timeScale) };
  }
  // Another period length: the next period is anchored where the current one ends.
  const anchor = subscription.currentPeriodEnd;
  return { anchor, periodIndex: 0, start: anchor, end: periodEnd(anchor, plan.period, 0, plan.timeScale) };
}

/** A renewal (or a dunning retry) paid: the next period on `plan`, dunning cleared. */
export function renewed(subscription: Subscription, plan: BillingPlan, now: number): Subscription {
  const next = nextPeriod(subscription, plan);
  return {
    ...subscription,
    planId: plan.planId,
    status: 'ACTIVE',
    anchor: next.anchor,
    periodIndex: next.periodIndex,
    periodText: plan.periodText,
    currentPeriodStart: next.start,
    currentPeriodEnd: next.end,
    pendingPlanId: null,
    dunningAttempt: 0,
    nextRetryAt: null,
    updatedAt: now,
    version: subscription.version + 1,
  };
}

/**
 * A renewal charge (attempt `dunningAttempt + 1`) declined: PAST_DUE with the next retry after the
 * next dunning offset from the period end, or EXPIRED when the offsets are used up.
 */
export function declined(subscription: Subscription, dunningOffsetsMs: readonly number[], now: number): Subscription {
  const attempt = subscription.dunningAttempt + 1;
  const offset = dunningOffsetsMs[attempt - 1];
  if (offset === undefined) return expired(subscription, now);
  return { ...subscription, status: 'PAST_DUE', dunningAttempt: attempt, nextRetryAt: subscription.currentPeriodEnd + offset, updatedAt: now, version: subscription.version + 1 };
}

export function expired(subscription: Subscription, now: number): Subscription {
  return { ...subscription, status: 'EXPIRED', nextRetryAt: null, expiredAt: now, updatedAt: now, version: subscription.version + 1 };
}

/** Cancel: ACTIVE → CANCELED until its period ends; PAST_DUE → EXPIRED now; otherwise undefined (not allowed). */
export function canceled(subscription: Subscription, now: number): Subscription | undefined {
  if (subscription.status === 'ACTIVE') return { ...subscription, status: 'CANCELED', canceledAt: now, updatedAt: now, version: subscription.version + 1 };
  if (subscription.status === 'PAST_DUE') return { ...expired(subscription, now), canceledAt: now };
  return undefined;
}

/** What changing to `plan` at `now` means: an upgrade now for `charge`, or a change at the next renewal. */
export type PlanChange = { kind: 'upgrade'; charge: number } | { kind: 'scheduled' } | { kind: 'same' };

export function planChange(subscription: Subscription, current: BillingPlan, plan: BillingPlan, now: number): PlanChange {
  if (plan.planId === subscription.planId) return subscription.pendingPlanId === null ? { kind: 'same' } : { kind: 'scheduled' };
  const oldLength = subscription.currentPeriodEnd - subscription.currentPeriodStart;
  const newLength = periodEnd(subscription.currentPeriodStart, plan.period, 0, plan.timeScale) - subscription.currentPeriodStart;
  if (!isUpgrade(current.price, oldLength, plan.price, newLength)) return { kind: 'scheduled' };
  return { kind: 'upgrade', charge: proratedCharge(current.price, oldLength, plan.price, newLength, subscription.currentPeriodEnd - now) };
}

/**
 * Applies a change of plan: an upgrade takes effect at once (the period stays; renewals follow the
 * new plan's period); a scheduled change waits in `pendingPlanId`; going back to the current plan
 * clears a scheduled change.
 */
export function withPlan(subscription: Subscription, plan: BillingPlan, change: PlanChange, now: number): Subscription {
  const base = { ...subscription, updatedAt: now, version: subscription.version + 1 };
  if (change.kind === 'upgrade') return { ...base, planId: plan.planId, pendingPlanId: null };
  return { ...base, pendingPlanId: plan.planId === subscription.planId ? null : plan.planId };
}
