import { Temporal } from 'temporal-polyfill';
import { scaled } from '../time-scale.ts';

/**
 * Billing periods of subscription plans: an ISO 8601 duration (`P1M`, `P1Y`, or `PT1M` so a test
 * can renew every minute), applied in UTC with the calendar's rules through Temporal (the
 * `temporal-polyfill` package until Node ships Temporal): a month after January 31 is the last day
 * of February. Periods count from the subscription's anchor, never from the previous end, so a
 * subscription started on the 31st renews on the 31st of the months that have one.
 * @see issue 12 "Subscriptions"
 */

const FIELDS = ['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds', 'milliseconds'] as const;

/** Parses an ISO 8601 duration; throws with a readable reason when it is not one, or is not positive. */
export function parsePeriod(text: string): Temporal.Duration {
  let duration: Temporal.Duration;
  try {
    duration = Temporal.Duration.from(text);
  } catch {
    throw new Error(`"${text}" is not an ISO 8601 duration (such as P1M, P1Y, P7D or PT1M)`);
  }
  if (duration.sign <= 0) throw new Error(`"${text}" must be a positive duration`);
  if (duration.microseconds !== 0 || duration.nanoseconds !== 0) throw new Error(`"${text}" must be whole milliseconds`);
  return duration;
}

/** `count` times `period`, field by field (P1M × 3 = P3M: calendar months, not 3 × 30 days). */
function times(period: Temporal.Duration, count: number): Temporal.Duration {
  const fields: Partial<Record<(typeof FIELDS)[number], number>> = {};
  for (const field of FIELDS) if (period[field] !== 0) fields[field] = period[field] * count;
  return Temporal.Duration.from(fields);
}

/**
 * The end of period `index` (0 = the first) of a subscription anchored at `anchor` (epoch ms), in UTC.
 * With a TIME_SCALE `scale`, the calendar's time from the anchor to that end is scaled (issue 15):
 * still counted from the anchor, so rounding never accumulates over renewals.
 */
export function periodEnd(anchor: number, period: Temporal.Duration, index: number, scale = 1): number {
  const start = Temporal.Instant.fromEpochMilliseconds(anchor).toZonedDateTimeISO('UTC');
  return anchor + scaled(start.add(times(period, index + 1)).epochMilliseconds - anchor, scale);
}

/** The start of period `index`: the anchor, or the end of the period before. */
export function periodStart(anchor: number, period: Temporal.Duration, index: number, scale = 1): number {
  return index === 0 ? anchor : periodEnd(anchor, period, index - 1, scale);
}

/**
 * The prorated charge of moving from `oldPrice` per `oldLengthMs` to `newPrice` per `newLengthMs`
 * with `remainingMs` of the current period left: the difference of the two rates over the time
 * left, in minor units, rounded half up; 0 when the new plan costs less per unit of time.
 * Computed with BigInt: price × milliseconds overflows a double's exact integers within a year.
 */
export function proratedCharge(oldPrice: number, oldLengthMs: number, newPrice: number, newLengthMs: number, remainingMs: number): number {
  if (remainingMs <= 0) return 0;
  // remaining × (new/newLen − old/oldLen) = remaining × (new × oldLen − old × newLen) / (newLen × oldLen)
  const numerator = BigInt(remainingMs) * (BigInt(newPrice) * BigInt(oldLengthMs) - BigInt(oldPrice) * BigInt(newLengthMs));
  if (numerator <= 0n) return 0;
  const denominator = BigInt(newLengthMs) * BigInt(oldLengthMs);
  return Number((2n * numerator + denominator) / (2n * denominator));
}

/** True when `newPrice` per `newLengthMs` costs more per unit of time than `oldPrice` per `oldLengthMs`. */
export function isUpgrade(oldPrice: number, oldLengthMs: number, newPrice: number, newLengthMs: number): boolean {
  return BigInt(newPrice) * BigInt(oldLengthMs) > BigInt(oldPrice) * BigInt(newLengthMs);
}
