import type { Clock } from '../clock.ts';
import { storeFull } from '../errors.ts';
import { FluxPayError, invalid, notFound } from '../fluxpay/errors.ts';
import type { FluxPayIds, Order, Payment } from '../fluxpay/model.ts';
import type { OutboxRelay } from '../fluxpay/outbox.ts';
import type { BillingPolicy, PlanPolicy } from '../fluxpay/policy.ts';
import type { CardInput, FluxPayService } from '../fluxpay/service.ts';
import type { Page } from '../ports.ts';
import type { OutcomeRequest } from '../scenario.ts';
import type { Scheduler } from '../scheduler.ts';
import { parsePeriod } from './period.ts';
import type { Invoice, StoredCard, SubscriptionEventType, SubscriptionRecord, SubscriptionStore } from './ports.ts';
import { activated, canceled, declined, dueAction, expired, nextDueAt, nextPeriod, planChange, renewalPlanId, renewed, withPlan, type BillingPlan, type InvoiceKind, type Subscription } from './subscription.ts';

/**
 * FluxPay's billing subscriptions over the store port (issue 12): each charge is an order and a
 * card payment of the FluxPay engine (same scenario rules, ledger and outbox), each change one
 * guarded store write with its invoice and its event, and the due work (renewals, dunning
 * retries, expiries) one scheduler job per subscription on the injected clock.
 *
 * The order of a charge and its change: the charge first (its order PAID), then the change
 * (guarded by the version it was computed from), then the order COMPLETED. A change that is
 * refused after its charge was collected (a concurrent change won, or the store is full) has its
 * order cancelled, which refunds the payment through the ledger: nobody pays for a change that did
 * not happen. A process stopped (or a store failing) between those calls is covered by a guard
 * job scheduled before each charge, due once the longest confirm and a lease have passed and
 * cancelled once the charge is settled: it
 * completes an order its subscription recorded and refunds one it did not (a renewal run again
 * after that charges anew), and schedules the subscription's due work. A new subscription's due
 * work is scheduled before it is written (a job of a subscription never written does nothing).
 * @see issue 12 "Subscriptions", ./subscription.ts for the rules
 */

export const SUBSCRIPTION_JOB = 'fluxpay.subscription';
/** A charge's guard, keyed by its order id: settles an order its change did not (see `#settleCharge`). */
export const CHARGE_JOB = 'fluxpay.subscription.charge';
/** The orders of subscription charges are of this service (document 002: orders carry their domain in metadata). */
export const SUBSCRIPTION_SERVICE_ID = 'subscriptions';
/** `metadata.kind` of a subscription's order. */
export const SUBSCRIPTION_ORDER_KIND = 'SUBSCRIPTION';
/** A change that loses a race is computed again from the new version this many times (each may charge, and wait a `delay` scenario's delay). */
export const MAX_ATTEMPTS = 5;

export interface SubscriptionDeps {
  store: SubscriptionStore;
  fluxpay: FluxPayService;
  relay: OutboxRelay;
  scheduler: Scheduler;
  clock: Clock;
  ids: FluxPayIds;
  /** `dunningDelaysMs` are already scaled by TIME_SCALE; plan periods are scaled by `timeScale` (unset: 1). */
  settings: { policy: BillingPolicy; dunningDelaysMs: readonly number[]; timeScale?: number | undefined };
}

export interface Entitlements {
  subscriptionId: string;
  userId: string;
  planId: string;
  status: Subscription['status'];
  /** ACTIVE, CANCELED until its period ends, and PAST_DUE while dunning retries run: the plan's features are usable. */
  entitled: boolean;
  periodStart: number;
  periodEnd: number;
  features: readonly string[];
  /** Credits the plan includes each period and the user's credits used (deducted minus refunded) since the period began. */
  credits: { included: number; used: number; remaining: number };
}

type Charge = { approved: true; order: Order; payment: Payment; invoice: Invoice } | { approved: false; invoice: Invoice };

export class SubscriptionService {
  readonly #deps: SubscriptionDeps;
  readonly #plans: ReadonlyMap<string, { policy: PlanPolicy; plan: BillingPlan }>;

  constructor(deps: SubscriptionDeps) {
    this.#deps = deps;
    this.#plans = new Map(
      [...deps.settings.policy.plans.values()].map((p) => [p.planId, { policy: p, plan: { planId: p.planId, price: p.price, currency: p.currency, periodText: p.period, period: parsePeriod(p.period), timeScale: deps.settings.timeScale } }]),
    );
    deps.scheduler.register(SUBSCRIPTION_JOB, (subscriptionId) => this.runDue(subscriptionId));
    deps.scheduler.register(CHARGE_JOB, (orderId) => this.#settleCharge(orderId));
  }

  plans(): PlanPolicy[] {
    return [...this.#plans.values()].map((p) => p.policy);
  }

  /** A new subscription id (a keyed subscribe notes it on its Idempotency-Key before the write). */
  newSubscriptionId(): string {
    return this.#deps.ids('sub');
  }

  /** The subscription, if it is stored. */
  find(subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    return this.#deps.store.get(subscriptionId);
  }

  /** Subscribes: the first period is charged now; declined → PAY_002 and nothing is created. `subscriptionId`: one from `newSubscriptionId`, else a new one. */
  async subscribe(input: { userId: string; planId: string; card: CardInput }, request: OutcomeRequest = {}, subscriptionId: string = this.newSubscriptionId()): Promise<SubscriptionRecord> {
    const { store, fluxpay, clock, ids } = this.#deps;
    const { plan, policy } = this.#plan(input.planId);
    const stored: StoredCard = fluxpay.checkCard(input.card);
    const start = activated({ subscriptionId, userId: input.userId }, plan, clock.now());
    await this.#scheduleNext(start);
    // Tidiness only, where nothing was written: a job of a subscription never written does nothing.
    const dropJob = () => this.#deps.scheduler.cancel(SUBSCRIPTION_JOB, subscriptionId).catch(() => false);
    const charge = await this.#charge(start, 'INITIAL', plan, policy.name, stored, start.currentPeriodStart, start.currentPeriodEnd, request).catch(async (error: unknown) => {
      await dropJob();
      throw error;
    });
    if (charge?.approved === false) {
      await dropJob();
      throw new FluxPayError('PAY_002', `Payment approval failed: ${charge.invoice.failureCode ?? 'declined'}.`);
    }
    const now = clock.now();
    const creditsUsedBefore = await this.#usedBefore(input.userId, start.currentPeriodStart);
    const record: SubscriptionRecord = { ...start, creditsUsedBefore, createdAt: now, updatedAt: now, card: stored, invoices: charge === null ? [] : [charge.invoice] };
    const created = await store.create(record, ids('evt'));
    if (created.kind === 'full') {
      if (charge !== null) await this.#refund(charge.order.orderId, 'subscription refused: the store is full');
      await dropJob();
      throw storeFull('fluxpay_billing_subscriptions');
    }
    if (charge !== null) await this.#complete(charge.order.orderId);
    return created.record;
  }

  async get(subscriptionId: string): Promise<SubscriptionRecord> {
    const record = await this.#deps.store.get(subscriptionId);
    if (record === undefined) throw notFound('Subscription', subscriptionId);
    return record;
  }

  list(query: { userId?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<SubscriptionRecord>> {
    return this.#deps.store.list(query);
  }

  /** ACTIVE → CANCELED until the period ends (then EXPIRED, without a charge); PAST_DUE → EXPIRED now. */
  cancel(subscriptionId: string): Promise<SubscriptionRecord> {
    return this.#change(subscriptionId, async (current, now) => {
      const next = canceled(current, now);
      if (next === undefined) throw transition(current, 'canceled', 'ACTIVE or PAST_DUE');
      return { next, invoice: null, card: null, eventType: next.status === 'EXPIRED' ? 'subscription.expired' : 'subscription.canceled' };
    });
  }

  /** An upgrade applies now for the prorated difference (charged to the card on file); any other change at the next renewal. */
  changePlan(subscriptionId: string, planId: string, request: OutcomeRequest = {}): Promise<SubscriptionRecord> {
    const { plan, policy } = this.#plan(planId);
    return this.#change(subscriptionId, async (current, now) => {
      if (current.status !== 'ACTIVE') throw transition(current, 'changed to another plan', 'ACTIVE');
      const from = this.#plan(current.planId).plan;
      if (plan.currency !== from.currency) throw invalid('planId', `${planId} is billed in ${plan.currency}, the subscription in ${from.currency}`);
      const change = planChange(current, from, plan, now);
      if (change.kind === 'same') return null;
      const next = withPlan(current, plan, change, now);
      if (change.kind === 'scheduled') return { next, invoice: null, card: null, eventType: 'subscription.plan_changed' };
      const charge = await this.#charge(current, 'PRORATION', { ...plan, price: change.charge }, policy.name, current.card, now, current.currentPeriodEnd, request);
      if (charge?.approved === false) throw new FluxPayError('PAY_002', `Payment approval failed: ${charge.invoice.failureCode ?? 'declined'}.`);
      return { next, invoice: charge?.invoice ?? null, card: null, eventType: 'subscription.plan_changed', order: charge?.order };
    });
  }

  /** The card renewals are charged to from now on (a declined renewal is retried with it). */
  updateCard(subscriptionId: string, card: CardInput): Promise<SubscriptionRecord> {
    const stored = this.#deps.fluxpay.checkCard(card);
    return this.#change(subscriptionId, async (current, now) => {
      if (current.status === 'EXPIRED') throw transition(current, 'given a new card', 'ACTIVE, PAST_DUE or CANCELED');
      return { next: { ...current, updatedAt: now, version: current.version + 1 }, invoice: null, card: stored, eventType: null };
    });
  }

  async entitlements(subscriptionId: string): Promise<Entitlements> {
    const record = await this.get(subscriptionId);
    const policy = this.#plans.get(record.planId)?.policy;
    const included = policy?.credits ?? 0;
    const { total, since } = await this.#deps.fluxpay.creditsUsed(record.userId, record.currentPeriodStart);
    // A record an earlier version wrote has no base: counted over the transactions still held.
    const used = record.creditsUsedBefore === undefined ? since : total - record.creditsUsedBefore;
    return {
      subscriptionId: record.subscriptionId,
      userId: record.userId,
      planId: record.planId,
      status: record.status,
      entitled: record.status !== 'EXPIRED',
      periodStart: record.currentPeriodStart,
      periodEnd: record.currentPeriodEnd,
      features: policy?.features ?? [],
      credits: { included, used, remaining: Math.max(0, included - used) },
    };
  }

  /** The scheduler's job: renew, retry or expire the subscription if that is due now; safe to run again. Nothing for a subscription never written. */
  async runDue(subscriptionId: string): Promise<void> {
    if ((await this.#deps.store.get(subscriptionId)) === undefined) return;
    await this.#change(subscriptionId, async (current, now) => {
      const action = dueAction(current, now);
      if (action === null) return null;
      if (action === 'expire') return { next: expired(current, now), invoice: null, card: null, eventType: 'subscription.expired' };
      const target = this.#plans.get(renewalPlanId(current)) ?? this.#plans.get(current.planId);
      // A plan gone from the policy (a restart with another file) cannot be charged: the subscription ends.
      if (target === undefined) return { next: expired(current, now), invoice: null, card: null, eventType: 'subscription.expired' };
      const period = nextPeriod(current, target.plan);
      const charge = await this.#charge(current, action === 'retry' ? 'RETRY' : 'RENEWAL', target.plan, target.policy.name, current.card, period.start, period.end);
      if (charge === null || charge.approved) return { next: renewed(current, target.plan, now), invoice: charge?.invoice ?? null, card: null, eventType: 'subscription.renewed', order: charge?.order };
      const next = declined(current, this.#deps.settings.dunningDelaysMs, now);
      return { next, invoice: charge.invoice, card: null, eventType: next.status === 'EXPIRED' ? 'subscription.expired' : 'subscription.past_due' };
    });
  }

  /** Subscriptions by status, for the gauge and the reconciliation. */
  async snapshot(): Promise<SubscriptionRecord[]> {
    return this.#deps.store.snapshot();
  }

  #plan(planId: string): { plan: BillingPlan; policy: PlanPolicy } {
    const found = this.#plans.get(planId);
    if (found === undefined) throw new FluxPayError('SUB_001', `Plan ${planId} does not exist (plans: ${[...this.#plans.keys()].join(', ')}).`);
    return found;
  }

  /**
   * One guarded change: computed from the stored record, written only to that version (with its
   * invoice and event); a write that loses a race is computed again from the new version, after
   * the charge it made (if any) is refunded. `compute` answers null when there is nothing to do.
   */
  async #change(
    subscriptionId: string,
    compute: (current: SubscriptionRecord, now: number) => Promise<{ next: Subscription; invoice: Invoice | null; card: StoredCard | null; eventType: SubscriptionEventType | null; order?: Order | undefined } | null>,
  ): Promise<SubscriptionRecord> {
    const { store, clock, ids, relay } = this.#deps;
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(subscriptionId);
      const change = await compute(current, clock.now());
      if (change === null) {
        await this.#scheduleNext(current);
        return current;
      }
      change.next = await this.#withCreditsBase(current, change.next);
      const outcome = await store.update({ next: change.next, invoice: change.invoice, card: change.card, event: change.eventType === null ? null : { eventId: ids('evt'), eventType: change.eventType } });
      if (outcome.kind === 'updated') {
        relay.kick();
        await this.#scheduleNext(outcome.record);
        if (change.order !== undefined) await this.#complete(change.order.orderId);
        return outcome.record;
      }
      if (change.order !== undefined) await this.#refund(change.order.orderId, 'subscription changed concurrently: charge refunded');
      if (outcome.kind === 'not_found') throw notFound('Subscription', subscriptionId);
      if (attempt >= MAX_ATTEMPTS) throw new FluxPayError('SUB_003', `Subscription ${subscriptionId} is being changed by other requests; try again.`);
    }
  }

  /** Charges `plan.price` for the period given; null when there is nothing to charge (a free plan, or a proration of 0). */
  async #charge(sub: Subscription, kind: InvoiceKind, plan: BillingPlan, planName: string, card: StoredCard, periodStart: number, periodEnd: number, request: OutcomeRequest = {}): Promise<Charge | null> {
    if (plan.price <= 0) return null;
    const { fluxpay, ids, clock, scheduler } = this.#deps;
    const invoiceId = ids('inv');
    const orderId = ids('ord');
    // Its guard first: whatever happens to this call or its change, the order is settled; due once
    // the longest confirm (a delay scenario) and a lease have passed, so never while it is under way.
    await scheduler.schedule(CHARGE_JOB, orderId, clock.now() + fluxpay.longestConfirmDelayMs + scheduler.leaseMs);
    const { approved, order, payment } = await fluxpay.chargeCard(
      {
        userId: sub.userId,
        serviceId: SUBSCRIPTION_SERVICE_ID,
        orderName: `${planName} subscription (${kind.toLowerCase()})`,
        amount: plan.price,
        currency: plan.currency,
        metadata: { kind: SUBSCRIPTION_ORDER_KIND, subscriptionId: sub.subscriptionId, invoiceId, invoiceKind: kind, planId: plan.planId },
      },
      card,
      request,
      orderId,
    );
    // Declined: the order is CANCELLED already, nothing for its guard to do.
    if (!approved) await scheduler.cancel(CHARGE_JOB, orderId);
    const invoice: Invoice = {
      invoiceId,
      kind,
      planId: plan.planId,
      amount: plan.price,
      currency: plan.currency,
      periodStart,
      periodEnd,
      status: approved ? 'PAID' : 'DECLINED',
      orderId: order.orderId,
      paymentKey: payment.paymentKey,
      failureCode: payment.failureCode,
      createdAt: clock.now(),
    };
    return approved ? { approved, order, payment, invoice } : { approved, invoice };
  }

  /** The change recorded the charge: its order COMPLETED, its guard dropped. */
  async #complete(orderId: string): Promise<void> {
    await this.#deps.fluxpay.completeOrder(orderId);
    await this.#deps.scheduler.cancel(CHARGE_JOB, orderId);
  }

  /** The change did not happen: its order refunded, its guard dropped. */
  async #refund(orderId: string, reason: string): Promise<void> {
    await this.#deps.fluxpay.cancelOrder(orderId, reason);
    await this.#deps.scheduler.cancel(CHARGE_JOB, orderId);
  }

  /**
   * A charge's guard, a lease after the longest charge (its call and change over, or cut off): an
   * order PAID that its subscription's invoices name is COMPLETED; one they do not name (the change
   * never written), or one left PENDING, is cancelled, which refunds what was collected. The
   * subscription's due work is scheduled again either way (a new one's may never have been).
   */
  async #settleCharge(orderId: string): Promise<void> {
    const { fluxpay, store } = this.#deps;
    const order = await fluxpay.findOrder(orderId);
    if (order === undefined || (order.status !== 'PAID' && order.status !== 'PENDING')) return;
    const subscriptionId = order.metadata?.['subscriptionId'];
    const record = typeof subscriptionId === 'string' ? await store.get(subscriptionId) : undefined;
    const recorded = record?.invoices.some((invoice) => invoice.orderId === orderId && invoice.status === 'PAID') === true;
    try {
      if (recorded && order.status === 'PAID') await fluxpay.completeOrder(orderId);
      else await fluxpay.cancelOrder(orderId, 'subscription charge not recorded: refunded');
    } catch (error) {
      // PAY_004: a usage saga holds the order (its user used it meanwhile): the saga settles it.
      if (!(error instanceof FluxPayError && error.code === 'PAY_004')) throw error;
    }
    if (record !== undefined) await this.#scheduleNext(record);
  }

  /**
   * A change that starts a period gets the base of the credits used in it: taken now (its start is
   * a moment ago), or, for a dunning retry that starts it where the unpaid period ended, days ago,
   * the one noted when that renewal was first declined (the period's end): `creditsUsedBeforeEnd`.
   */
  async #withCreditsBase(current: Subscription, next: Subscription): Promise<Subscription> {
    const { creditsUsedBeforeEnd: noted, ...rest } = next;
    if (next.currentPeriodStart !== current.currentPeriodStart) {
      const base = noted !== undefined && next.currentPeriodStart === current.currentPeriodEnd ? noted : await this.#usedBefore(current.userId, next.currentPeriodStart);
      return { ...rest, creditsUsedBefore: base };
    }
    // Only a PAST_DUE subscription keeps the note: taken at its first declined renewal, then kept.
    if (next.status !== 'PAST_DUE') return rest;
    return noted !== undefined ? next : { ...next, creditsUsedBeforeEnd: await this.#usedBefore(current.userId, current.currentPeriodEnd) };
  }

  /** The user's credits used before `start`: the total less what the transactions held since `start` used. */
  async #usedBefore(userId: string, start: number): Promise<number> {
    const { total, since } = await this.#deps.fluxpay.creditsUsed(userId, start);
    return total - since;
  }

  async #scheduleNext(record: Subscription): Promise<void> {
    const due = nextDueAt(record);
    if (due === null) await this.#deps.scheduler.cancel(SUBSCRIPTION_JOB, record.subscriptionId);
    else await this.#deps.scheduler.schedule(SUBSCRIPTION_JOB, record.subscriptionId, due);
  }
}

function transition(current: Subscription, what: string, allowed: string): FluxPayError {
  return new FluxPayError('SUB_002', `Subscription ${current.subscriptionId} is ${current.status}; only an ${allowed} subscription can be ${what}.`);
}
