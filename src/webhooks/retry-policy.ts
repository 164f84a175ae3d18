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

/** `Retry-After` is delay-seconds or an HTTP date. @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return null;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}
