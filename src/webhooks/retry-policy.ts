import type { RandomSource } from '../core/random.ts';

/**
 * What happens after a webhook attempt: delivered (2xx), gone (410: the URL is disabled until
 * re-enabled), another try after a backoff, or give up once the retries are spent. Pure: the
 * dispatcher applies the step; tests check the rules without sockets.
 * Backoff of the n-th retry: `backoffMs × 2^(n−1)`, ±20 % jitter, capped at `backoffMaxMs`; a
 * `Retry-After` (on 429 or 503) replaces it, up to the same cap.
 * @see issue 3 "Delivery", ../../../shared/seeds/000_b3f315eb75f1c703.txt (backoff)
 */

export interface RetrySettings {
  maxRetries: number;
  backoffMs: number;
  backoffMaxMs: number;
}

export interface AttemptResult {
  statusCode: number | null;
  /** A network error or timeout, in words; null when a status came back. */
  error: string | null;
  /** A `Retry-After` the receiver sent with 429 or 503, in ms. */
  retryAfterMs: number | null;
}

export type NextStep = { kind: 'delivered' } | { kind: 'gone' } | { kind: 'retry'; delayMs: number } | { kind: 'give_up'; reason: string };

export const JITTER = 0.2;

export function isSuccess(result: Pick<AttemptResult, 'statusCode' | 'error'>): boolean {
  return result.error === null && result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
}

/** `attemptsInSeries` counts the attempt just made (1 after the first try). */
export function nextStep(result: AttemptResult, attemptsInSeries: number, settings: RetrySettings, random: RandomSource): NextStep {
  if (isSuccess(result)) return { kind: 'delivered' };
  if (result.statusCode === 410) return { kind: 'gone' };
  if (attemptsInSeries > settings.maxRetries) return { kind: 'give_up', reason: `max_retries_exceeded: ${result.error ?? `HTTP ${result.statusCode}`}` };
  return { kind: 'retry', delayMs: backoff(attemptsInSeries, result.retryAfterMs, settings, random) };
}

/** The wait before the `retry`-th retry. */
export function backoff(retry: number, retryAfterMs: number | null, settings: RetrySettings, random: RandomSource): number {
  if (retryAfterMs !== null) return Math.min(settings.backoffMaxMs, retryAfterMs);
  const base = settings.backoffMs * 2 ** (retry - 1);
  const jittered = base * (1 - JITTER + 2 * JITTER * random.next());
  return Math.round(Math.min(settings.backoffMaxMs, jittered));
}

/** HTTP-date's three forms (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime ones. */
const IMF_FIXDATE = /^[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/i;
const RFC_850_DATE = /^[a-z]{6,9}, \d{2}-[a-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/i;
const ASCTIME_DATE = /^[a-z]{3} [a-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/i;

/**
 * `Retry-After` is delay-seconds (digits) or an HTTP date; anything else is ignored (null: the
 * backoff applies), as RFC 9110 has a recipient do. Before 2026-12-07 any other text went to
 * `Date.parse`, which reads `1.5`, `-1` or `+5` as dates in 2001: a retry at once, every retry
 * spent within milliseconds (a user test).
 * @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (raw === undefined || raw === '') return null;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  // asctime has no zone: it is GMT, not the process's local time.
  const date = IMF_FIXDATE.test(raw) || RFC_850_DATE.test(raw) ? Date.parse(raw) : ASCTIME_DATE.test(raw) ? Date.parse(`${raw} GMT`) : Number.NaN;
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}
