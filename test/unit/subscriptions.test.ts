import { describe, expect, it } from 'vitest';
import { parsePeriod, periodEnd, proratedCharge } from '../../src/core/subscriptions/period.ts';
import { activated, canceled, declined, dueAction, nextDueAt, planChange, renewalPlanId, renewed, withPlan, type BillingPlan, type Subscription } from '../../src/core/subscriptions/subscription.ts';

const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const plan = (planId: string, price: number, periodText: string): BillingPlan => ({ planId, price, currency: 'KRW', periodText, period: parsePeriod(periodText) });
const BASIC = plan('basic-monthly', 9_900, 'P1M');
const PLUS = plan('plus-monthly', 19_900, 'P1M');
const PRO_YEARLY = plan('pro-yearly', 99_000, 'P1Y');
const PLANS = new Map([BASIC, PLUS, PRO_YEARLY].map((p) => [p.planId, p]));
const DUNNING = [1 * DAY, 3 * DAY, 5 * DAY];

describe('billing periods', () => {
  it('parses ISO 8601 durations and refuses what is not one, or not positive', () => {
    expect(parsePeriod('P1M').months).toBe(1);
    expect(parsePeriod('PT1M').minutes).toBe(1);
    expect(() => parsePeriod('monthly')).toThrow('"monthly" is not an ISO 8601 duration (such as P1M, P1Y, P7D or PT1M)');
    expect(() => parsePeriod('PT0S')).toThrow('"PT0S" must be a positive duration');
    expect(() => parsePeriod('-P1M')).toThrow('"-P1M" must be a positive duration');
  });

  it('months count from the anchor in UTC: the 31st renews on the last day of shorter months and on the 31st again', () => {
    const anchor = at('2026-01-31T09:30:00Z');
    const ends = Array.from({ length: 6 }, (_, i) => new Date(periodEnd(anchor, BASIC.period, i)).toISOString());
    expect(ends).toEqual(['2026-02-28T09:30:00.000Z', '2026-03-31T09:30:00.000Z', '2026-04-30T09:30:00.000Z', '2026-05-31T09:30:00.000Z', '2026-06-30T09:30:00.000Z', '2026-07-31T09:30:00.000Z']);
    expect(new Date(periodEnd(at('2028-02-29T00:00:00Z'), PRO_YEARLY.period, 0)).toISOString()).toBe('2029-02-28T00:00:00.000Z');
    expect(periodEnd(at('2026-11-30T09:00:00Z'), parsePeriod('PT1M'), 2) - at('2026-11-30T09:00:00Z')).toBe(180_000);
  });

  it('proration: the difference of the rates over the time left, rounded half up, exact with large numbers', () => {
    const month = 30 * DAY;
    expect(proratedCharge(9_900, month, 19_900, month, month / 2)).toBe(5_000);
    expect(proratedCharge(9_900, month, 19_900, month, month)).toBe(10_000);
    expect(proratedCharge(9_900, month, 19_900, month, 0)).toBe(0);
    // 1 won over 3 parts: 0.333… → 0; 2 won over 3: 0.666… → 1; exactly one half rounds up.
    expect(proratedCharge(0, 3, 1, 3, 1)).toBe(0);
    expect(proratedCharge(0, 3, 2, 3, 1)).toBe(1);
    expect(proratedCharge(0, 2, 1, 2, 1)).toBe(1);
    // A cheaper rate charges nothing.
    expect(proratedCharge(19_900, month, 9_900, month, month)).toBe(0);
    // 1e11 for a year with 1 ms less than a year left: 1e11 − 1e11 / 31,536,000,000 = 99,999,999,996.83…
    const year = 365 * DAY;
    expect(proratedCharge(0, year, 100_000_000_000, year, year - 1)).toBe(99_999_999_997);
  });
});

/** Drives one subscription through time with a charger that declines the charges listed, as the service will. */
function simulate(start: string, until: string, declines: ReadonlySet<string>) {
  const charges: Array<[string, string, number, 'PAID' | 'DECLINED']> = [];
  let sub: Subscription = activated({ subscriptionId: 'sub_1', userId: 'user_1' }, BASIC, at(start));
  charges.push([iso(at(start)), 'INITIAL', BASIC.price, 'PAID']);
  const history: string[] = [];
  for (;;) {
    const due = nextDueAt(sub);
    if (due === null || due > at(until)) break;
    const action = dueAction(sub, due);
    if (action === 'expire') {
      sub = { ...sub, status: 'EXPIRED', expiredAt: due };
      continue;
    }
    const next = PLANS.get(renewalPlanId(sub)) as BillingPlan;
    const kind = action === 'retry' ? 'RETRY' : 'RENEWAL';
    const ok = !declines.has(iso(due));
    charges.push([iso(due), kind, next.price, ok ? 'PAID' : 'DECLINED']);
    sub = ok ? renewed(sub, next, due) : declined(sub, DUNNING, due);
    history.push(`${iso(due)} ${sub.status} ${iso(sub.currentPeriodStart)}..${iso(sub.currentPeriodEnd)}`);
  }
  return { sub, charges, history };
}

describe('the subscription lifecycle', () => {
  it('a year of monthly renewals with declines injected follows the hand-computed schedule of charges', () => {
    const { sub, charges } = simulate('2026-01-31T00:00:00Z', '2027-01-15T00:00:00Z', new Set(['2026-03-31', '2026-06-30', '2026-07-01']));
    expect(charges).toEqual([
      ['2026-01-31', 'INITIAL', 9_900, 'PAID'],
      ['2026-02-28', 'RENEWAL', 9_900, 'PAID'],
      ['2026-03-31', 'RENEWAL', 9_900, 'DECLINED'],
      ['2026-04-01', 'RETRY', 9_900, 'PAID'], // after 1 day; the period is Mar 31 – Apr 30
      ['2026-04-30', 'RENEWAL', 9_900, 'PAID'],
      ['2026-05-31', 'RENEWAL', 9_900, 'PAID'],
      ['2026-06-30', 'RENEWAL', 9_900, 'DECLINED'],
      ['2026-07-01', 'RETRY', 9_900, 'DECLINED'],
      ['2026-07-03', 'RETRY', 9_900, 'PAID'], // 3 days after the period end
      ['2026-07-31', 'RENEWAL', 9_900, 'PAID'],
      ['2026-08-31', 'RENEWAL', 9_900, 'PAID'],
      ['2026-09-30', 'RENEWAL', 9_900, 'PAID'],
      ['2026-10-31', 'RENEWAL', 9_900, 'PAID'],
      ['2026-11-30', 'RENEWAL', 9_900, 'PAID'],
      ['2026-12-31', 'RENEWAL', 9_900, 'PAID'],
    ]);
    expect(charges.filter((c) => c[3] === 'PAID').reduce((sum, c) => sum + c[2], 0)).toBe(12 * 9_900);
    expect(sub).toMatchObject({ status: 'ACTIVE', currentPeriodStart: at('2026-12-31T00:00:00Z'), currentPeriodEnd: at('2027-01-31T00:00:00Z'), dunningAttempt: 0, nextRetryAt: null });
  });

  it('dunning: declined after 1, 3 and 5 days → EXPIRED at the last retry', () => {
    const { sub, history } = simulate('2026-01-31T00:00:00Z', '2026-12-31T00:00:00Z', new Set(['2026-02-28', '2026-03-01', '2026-03-03', '2026-03-05']));
    expect(history).toEqual([
      '2026-02-28 PAST_DUE 2026-01-31..2026-02-28',
      '2026-03-01 PAST_DUE 2026-01-31..2026-02-28',
      '2026-03-03 PAST_DUE 2026-01-31..2026-02-28',
      '2026-03-05 EXPIRED 2026-01-31..2026-02-28',
    ]);
    expect(sub).toMatchObject({ status: 'EXPIRED', expiredAt: at('2026-03-05T00:00:00Z'), dunningAttempt: 3, nextRetryAt: null });
  });

  it('cancel: usable until the period ends, then EXPIRED without a charge; PAST_DUE expires at once; EXPIRED cannot be canceled', () => {
    const sub = activated({ subscriptionId: 'sub_1', userId: 'user_1' }, BASIC, at('2026-01-10T00:00:00Z'));
    const cancel = canceled(sub, at('2026-01-20T00:00:00Z')) as Subscription;
    expect(cancel).toMatchObject({ status: 'CANCELED', canceledAt: at('2026-01-20T00:00:00Z'), currentPeriodEnd: at('2026-02-10T00:00:00Z'), version: 2 });
    expect(dueAction(cancel, at('2026-02-09T23:59:59Z'))).toBeNull();
    expect(dueAction(cancel, at('2026-02-10T00:00:00Z'))).toBe('expire');
    const pastDue = declined(sub, DUNNING, sub.currentPeriodEnd);
    expect(canceled(pastDue, at('2026-02-10T12:00:00Z'))).toMatchObject({ status: 'EXPIRED', canceledAt: at('2026-02-10T12:00:00Z'), expiredAt: at('2026-02-10T12:00:00Z') });
    expect(canceled({ ...sub, status: 'EXPIRED' }, at('2026-01-20T00:00:00Z'))).toBeUndefined();
  });

  it('change of plan: an upgrade now for the prorated difference; a downgrade (or a longer, cheaper-per-day plan) at the next renewal', () => {
    const sub = activated({ subscriptionId: 'sub_1', userId: 'user_1' }, BASIC, at('2026-04-01T00:00:00Z')); // April: 30 days
    const halfway = at('2026-04-16T00:00:00Z');
    const up = planChange(sub, BASIC, PLUS, halfway);
    expect(up).toEqual({ kind: 'upgrade', charge: 5_000 });
    const upgraded = withPlan(sub, PLUS, up, halfway);
    expect(upgraded).toMatchObject({ planId: 'plus-monthly', pendingPlanId: null, currentPeriodEnd: at('2026-05-01T00:00:00Z') });
    const down = planChange(upgraded, PLUS, BASIC, halfway);
    expect(down).toEqual({ kind: 'scheduled' });
    const scheduled = withPlan(upgraded, BASIC, down, halfway);
    expect(scheduled).toMatchObject({ planId: 'plus-monthly', pendingPlanId: 'basic-monthly' });
    expect(renewalPlanId(scheduled)).toBe('basic-monthly');
    expect(renewed(scheduled, BASIC, at('2026-05-01T00:00:00Z'))).toMatchObject({ planId: 'basic-monthly', pendingPlanId: null, currentPeriodStart: at('2026-05-01T00:00:00Z'), currentPeriodEnd: at('2026-06-01T00:00:00Z') });
    // 99,000 a year costs less a day than 9,900 a month: scheduled; renewing on it re-anchors at the period end.
    expect(planChange(sub, BASIC, PRO_YEARLY, halfway)).toEqual({ kind: 'scheduled' });
    const yearly = renewed(withPlan(sub, PRO_YEARLY, { kind: 'scheduled' }, halfway), PRO_YEARLY, at('2026-05-01T00:00:00Z'));
    expect(yearly).toMatchObject({ planId: 'pro-yearly', periodText: 'P1Y', anchor: at('2026-05-01T00:00:00Z'), periodIndex: 0, currentPeriodEnd: at('2027-05-01T00:00:00Z') });
    expect(planChange(sub, BASIC, BASIC, halfway)).toEqual({ kind: 'same' });
  });
});
