import { describe, expect, it } from 'vitest';
import { backoff, JITTER, nextStep, parseRetryAfter, type AttemptResult } from '../../src/webhooks/retry-policy.ts';
import { scriptedRandom } from './support.ts';

/** The webhook retry rules, without sockets. @see issue 3 "Delivery" */

const SETTINGS = { maxRetries: 3, backoffMs: 1000, backoffMaxMs: 60_000 };
const status = (statusCode: number, retryAfterMs: number | null = null): AttemptResult => ({ statusCode, error: null, retryAfterMs });
const networkError: AttemptResult = { statusCode: null, error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9', retryAfterMs: null };
const middle = () => scriptedRandom(0.5, 0.5, 0.5);

describe('nextStep', () => {
  it.each([200, 201, 204, 299])('%i is delivered', (code) => {
    expect(nextStep(status(code), 1, SETTINGS, middle())).toEqual({ kind: 'delivered' });
  });

  it('410 Gone is final: the URL goes, whatever the retries left', () => {
    expect(nextStep(status(410), 1, SETTINGS, middle())).toEqual({ kind: 'gone' });
  });

  it.each([[status(500)], [status(404)], [status(301)], [status(429)], [networkError]])('%j is retried while retries are left, then given up with the reason', (result) => {
    expect(nextStep(result, 1, SETTINGS, middle())).toEqual({ kind: 'retry', delayMs: 1000 });
    expect(nextStep(result, 3, SETTINGS, middle())).toEqual({ kind: 'retry', delayMs: 4000 });
    expect(nextStep(result, 4, SETTINGS, middle())).toEqual({ kind: 'give_up', reason: `max_retries_exceeded: ${result.error ?? `HTTP ${result.statusCode}`}` });
  });

  it('with no retries the first failure is final', () => {
    expect(nextStep(status(503), 1, { ...SETTINGS, maxRetries: 0 }, middle())).toEqual({ kind: 'give_up', reason: 'max_retries_exceeded: HTTP 503' });
  });
});

describe('backoff', () => {
  it('doubles per retry: base × 2^(n−1), with ±20 % jitter from the random source', () => {
    expect([1, 2, 3, 4].map((n) => backoff(n, null, SETTINGS, scriptedRandom(0.5)))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoff(1, null, SETTINGS, scriptedRandom(0))).toBe(1000 * (1 - JITTER));
    expect(backoff(1, null, SETTINGS, scriptedRandom(0.999999))).toBe(1200);
  });

  it('is capped at backoffMaxMs, and a Retry-After replaces it up to the same cap', () => {
    expect(backoff(10, null, SETTINGS, scriptedRandom(0.5))).toBe(60_000);
    expect(backoff(1, 5000, SETTINGS, scriptedRandom())).toBe(5000);
    expect(backoff(1, 0, SETTINGS, scriptedRandom())).toBe(0);
    expect(backoff(1, 3_600_000, SETTINGS, scriptedRandom())).toBe(60_000);
  });

  it('a Retry-After of a 429 or 503 sets the next wait', () => {
    expect(nextStep(status(429, 7000), 1, SETTINGS, scriptedRandom())).toEqual({ kind: 'retry', delayMs: 7000 });
  });
});

describe('parseRetryAfter', () => {
  const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
  it.each([
    ['120', 120_000],
    [' 5 ', 5000],
    ['0', 0],
    [new Date(NOW + 30_000).toUTCString(), 30_000],
    [new Date(NOW - 30_000).toUTCString(), 0],
    ['soon', null],
    ['', null],
    [undefined, null],
    [['9', '1'], 9000],
    // RFC 850's form of the same date.
    ['Thursday, 15-Jan-26 12:00:30 GMT', 30_000],
    // Neither digits nor a date: ignored, the backoff applies (before 2026-12-07 Date.parse read them as dates in 2001: a retry at once).
    ['1.5', null],
    ['-1', null],
    ['+5', null],
    ['1.0', null],
    ['2026-01-15T12:00:30Z', null],
  ] as const)('%j → %s', (value, ms) => {
    expect(parseRetryAfter(value as string | string[] | undefined, NOW)).toBe(ms);
  });

  it('reads asctime’s form, which has no zone, as GMT whatever the process’s zone (rev74d: a test in UTC could not tell)', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'Asia/Seoul';
    try {
      // The zone took: a date without one is read as Seoul's, nine hours ahead.
      expect(new Date('Thu Jan 15 12:00:30 2026').getTime()).toBe(NOW + 30_000 - 9 * 3_600_000);
      expect(parseRetryAfter('Thu Jan 15 12:00:30 2026', NOW)).toBe(30_000);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});
