import { describe, expect, it } from 'vitest';
import { outboxOrderIds } from '../../../src/core/fluxpay/model.ts';
import type { FluxPayStore } from '../../../src/core/fluxpay/ports.ts';
import { parsePeriod } from '../../../src/core/subscriptions/period.ts';
import { MAX_INVOICES, type Invoice, type SubscriptionRecord, type SubscriptionStore } from '../../../src/core/subscriptions/ports.ts';
import { activated, canceled, expired, renewed, type BillingPlan } from '../../../src/core/subscriptions/subscription.ts';
import { concurrently, DAY, ids, T0, tally } from './fixtures.ts';

export interface BillingStoreOptions {
  maxSubscriptions: number;
  ttlMs: number;
}

/** A billing store and the FluxPay store whose outbox it writes to. */
export type BillingStoreFactory = (options: BillingStoreOptions) => Promise<{ billing: SubscriptionStore; fluxpay: FluxPayStore }> | { billing: SubscriptionStore; fluxpay: FluxPayStore };

const BASIC: BillingPlan = { planId: 'basic-monthly', price: 9_900, currency: 'KRW', periodText: 'P1M', period: parsePeriod('P1M') };
const ROOMY: BillingStoreOptions = { maxSubscriptions: 1000, ttlMs: DAY };

function anInvoice(sub: { periodStart: number; periodEnd: number }, overrides: Partial<Invoice> = {}): Invoice {
  return {
    invoiceId: ids('inv'),
    kind: 'INITIAL',
    planId: 'basic-monthly',
    amount: 9_900,
    currency: 'KRW',
    status: 'PAID',
    orderId: ids('ord'),
    paymentKey: ids('pk'),
    failureCode: null,
    createdAt: T0,
    ...sub,
    ...overrides,
  };
}

export function aSubscription(userId = 'user_1', now = T0): SubscriptionRecord {
  const sub = activated({ subscriptionId: ids('sub'), userId }, BASIC, now);
  // creditsUsedBefore set: every comparison of a stored record checks that it is kept.
  return { ...sub, creditsUsedBefore: 42, card: { last4: '4242', expMonth: null, expYear: null, planned: { status: 'APPROVED', failureCode: null } }, invoices: [anInvoice({ periodStart: sub.currentPeriodStart, periodEnd: sub.currentPeriodEnd })] };
}

export function billingStoreContract(name: string, make: BillingStoreFactory): void {
  describe(`SubscriptionStore (billing) contract: ${name}`, () => {
    it('creates with its subscription.activated event in the FluxPay outbox; gets and lists copies, newest first, by user', async () => {
      const { billing, fluxpay } = await make(ROOMY);
      const a = aSubscription('user_1');
      const b = aSubscription('user_2');
      const c = aSubscription('user_1');
      for (const [i, record] of [a, b, c].entries()) expect(await billing.create(record, `evt_${i}`)).toEqual({ kind: 'created', record });
      const got = (await billing.get(a.subscriptionId)) as SubscriptionRecord;
      expect(got).toEqual(a);
      got.invoices.push(anInvoice({ periodStart: 0, periodEnd: 1 }));
      got.card.last4 = '0000';
      expect(await billing.get(a.subscriptionId)).toEqual(a);
      expect(await billing.get('sub_unknown')).toBeUndefined();
      expect(await billing.list({ limit: 10 })).toEqual({ data: [c, b, a], nextCursor: null });
      expect(await billing.list({ userId: 'user_1', limit: 1 })).toEqual({ data: [c], nextCursor: c.subscriptionId });
      expect(await billing.list({ userId: 'user_1', limit: 1, cursor: c.subscriptionId })).toEqual({ data: [a], nextCursor: null });
      expect(await billing.list({ userId: 'nobody', limit: 10 })).toEqual({ data: [], nextCursor: null });
      const events = await fluxpay.pendingOutbox(10);
      expect(events.map((e) => [e.eventId, e.eventType, e.aggregate])).toEqual([
        ['evt_0', 'subscription.activated', `subscription:${a.subscriptionId}`],
        ['evt_1', 'subscription.activated', `subscription:${b.subscriptionId}`],
        ['evt_2', 'subscription.activated', `subscription:${c.subscriptionId}`],
      ]);
      expect(events[0]?.payload).toEqual({ kind: 'subscription', subscription: a });
      expect(await billing.counts()).toEqual({ ACTIVE: 3, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0 });
    });

    it('updates only the version a change was computed from, with its invoice and event in one step', async () => {
      const { billing, fluxpay } = await make(ROOMY);
      const a = aSubscription();
      await billing.create(a, 'evt_a');
      const next = renewed(a, BASIC, a.currentPeriodEnd);
      const invoice = anInvoice({ periodStart: next.currentPeriodStart, periodEnd: next.currentPeriodEnd }, { kind: 'RENEWAL' });
      const outcome = await billing.update({ next, invoice, card: null, event: { eventId: 'evt_r', eventType: 'subscription.renewed' } });
      const expected = { ...next, card: a.card, invoices: [...a.invoices, invoice] };
      expect(outcome).toEqual({ kind: 'updated', record: expected });
      // A stale change (computed from version 1) changes nothing and writes no event.
      const stale = canceled(a, a.currentPeriodEnd) as SubscriptionRecord;
      expect(await billing.update({ next: stale, invoice: null, card: null, event: { eventId: 'evt_s', eventType: 'subscription.canceled' } })).toEqual({ kind: 'conflict', record: expected });
      expect(await billing.update({ next: { ...next, subscriptionId: 'sub_unknown' }, invoice: null, card: null, event: null })).toEqual({ kind: 'not_found' });
      // A new card, and a change without an event.
      const card = { last4: '0002', expMonth: 12, expYear: 2030, planned: { status: 'FAILED', failureCode: 'card_declined' } } as const;
      const carded = await billing.update({ next: { ...next, version: next.version + 1 }, invoice: null, card, event: null });
      expect(carded).toEqual({ kind: 'updated', record: { ...expected, version: next.version + 1, card } });
      expect((await fluxpay.pendingOutbox(10)).map((e) => [e.eventId, e.eventType])).toEqual([
        ['evt_a', 'subscription.activated'],
        ['evt_r', 'subscription.renewed'],
      ]);
    });

    it('of concurrent changes computed from one version, exactly one applies and writes its event', async () => {
      const { billing, fluxpay } = await make(ROOMY);
      const a = aSubscription();
      await billing.create(a, 'evt_a');
      const results = await concurrently(20, (i) => billing.update({ next: { ...(canceled(a, T0 + i) as SubscriptionRecord) }, invoice: null, card: null, event: { eventId: `evt_c${i}`, eventType: 'subscription.canceled' } }));
      expect(tally(results)).toEqual({ updated: 1, conflict: 19 });
      const winner = results.findIndex((r) => r.kind === 'updated');
      expect(await billing.get(a.subscriptionId)).toMatchObject({ status: 'CANCELED', canceledAt: T0 + winner, version: 2 });
      expect((await fluxpay.pendingOutbox(100)).map((e) => e.eventId)).toEqual(['evt_a', `evt_c${winner}`]);
    });

    it('keeps the newest MAX_INVOICES invoices', async () => {
      const { billing } = await make(ROOMY);
      let current = aSubscription();
      await billing.create(current, 'evt_a');
      for (let i = 0; i < MAX_INVOICES + 5; i++) {
        const next = renewed(current, BASIC, current.currentPeriodEnd);
        const outcome = await billing.update({ next, invoice: anInvoice({ periodStart: next.currentPeriodStart, periodEnd: next.currentPeriodEnd }, { kind: 'RENEWAL' }), card: null, event: null });
        if (outcome.kind !== 'updated') throw new Error(outcome.kind);
        current = outcome.record;
      }
      expect(current.invoices).toHaveLength(MAX_INVOICES);
      expect(current.invoices[0]?.kind).toBe('RENEWAL');
      expect(current.invoices.at(-1)?.periodEnd).toBe(current.currentPeriodEnd);
    });

    it("writes each event under the orders of the invoices its record carries (the FluxPay outbox's index by order)", async () => {
      const { billing, fluxpay } = await make(ROOMY);
      let current = aSubscription();
      await billing.create(current, 'evt_0');
      const first = current.invoices[0]?.orderId ?? '';
      // Past MAX_INVOICES renewals the first invoice leaves the record: later events are not about its order.
      for (let i = 1; i <= MAX_INVOICES + 1; i++) {
        const next = renewed(current, BASIC, current.currentPeriodEnd);
        const outcome = await billing.update({ next, invoice: anInvoice({ periodStart: next.currentPeriodStart, periodEnd: next.currentPeriodEnd }, { kind: 'RENEWAL' }), card: null, event: { eventId: `evt_${i}`, eventType: 'subscription.renewed' } });
        if (outcome.kind !== 'updated') throw new Error(outcome.kind);
        current = outcome.record;
      }
      const second = current.invoices[0]?.orderId ?? '';
      const newest = current.invoices.at(-1)?.orderId ?? '';
      const ids = async (orderId: string): Promise<[string[], number]> => {
        const { events, total } = await fluxpay.orderOutbox(orderId, 200);
        return [events.map((e) => e.eventId), total];
      };
      const upTo = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `evt_${from + i}`);
      expect(await ids(first)).toEqual([upTo(0, MAX_INVOICES - 1), MAX_INVOICES]);
      expect(await ids(second)).toEqual([upTo(2, MAX_INVOICES + 1), MAX_INVOICES]);
      expect(await ids(newest)).toEqual([[`evt_${MAX_INVOICES + 1}`], 1]);
      // Whole events, the same as the relation outboxOrderIds gives over the listing.
      const all = (await fluxpay.listOutbox({ limit: 100 })).data.reverse();
      expect((await fluxpay.orderOutbox(second, 200)).events).toEqual(all.filter((e) => outboxOrderIds(e.payload).includes(second)));
    });

    it('is bounded: EXPIRED subscriptions go (by TTL, or the oldest when full); open ones never do', async () => {
      const { billing } = await make({ maxSubscriptions: 2, ttlMs: DAY });
      const a = aSubscription('user_1');
      const b = aSubscription('user_2');
      await billing.create(a, 'evt_a');
      await billing.create(b, 'evt_b');
      expect(await billing.create(aSubscription('user_3'), 'evt_c')).toEqual({ kind: 'full' });
      await billing.update({ next: expired(a, T0 + 1000), invoice: null, card: null, event: { eventId: 'evt_x', eventType: 'subscription.expired' } });
      expect(await billing.sweep(T0 + 1000 + DAY - 1)).toBe(0);
      const c = aSubscription('user_3');
      expect(await billing.create(c, 'evt_c')).toEqual({ kind: 'created', record: c });
      expect(await billing.get(a.subscriptionId)).toBeUndefined();
      expect(await billing.list({ limit: 10 })).toEqual({ data: [c, b], nextCursor: null });
      await billing.update({ next: expired(b, T0 + 2000), invoice: null, card: null, event: null });
      expect(await billing.stats()).toEqual({ size: 2, max: 2 });
      expect(await billing.sweep(T0 + 2000 + DAY)).toBe(1);
      expect((await billing.snapshot()).map((s) => s.subscriptionId)).toEqual([c.subscriptionId]);
    });
  });
}
