import { describe, expect, it } from 'vitest';
import { bucketUpperMs, LATENCY_BUCKETS, latencyBucket, MAX_TRACKED_MS, percentileMs } from '../../src/console/latency-buckets.ts';
import { ActivitySeries, GROUP_SECONDS, WINDOW_SECONDS, type SeriesWindow } from '../../src/console/series.ts';
import type { Clock } from '../../src/core/clock.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/**
 * The console's recorder (src/console/series.ts) and its latency buckets: per-second counts on the
 * injected clock, the window rolling over and surviving clock jumps, and percentiles checked
 * against sets worked out by hand.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

/** The events the recorder reads, with only the fields it reads (the rest of a real event is irrelevant to it). */
const ev = {
  intent: (status: 'approved' | 'failed', at: number) => ({ id: 'e', type: `payment.${status}`, occurredAt: at, intent: {} }) as unknown as DomainEvent,
  v2: (status: 'PENDING' | 'PAYMENT_FAILED', at: number) => ({ id: 'e', type: 'v2.payment_decided', occurredAt: at, payment: { status } }) as unknown as DomainEvent,
  booking: (isSuccess: boolean, at: number) => ({ id: 'e', type: 'booking.payment_decided', occurredAt: at, isSuccess }) as unknown as DomainEvent,
  fluxpay: (eventType: string, decidedAt: number, publishedAt: number) => ({ id: 'e', type: 'fluxpay.event', occurredAt: publishedAt, event: { eventType, occurredAt: decidedAt } }) as unknown as DomainEvent,
  attempt: (statusCode: number | null, durationMs: number, at: number, error: string | null = statusCode === null ? 'timeout' : null) =>
    ({ id: 'whd', type: 'webhook.attempted', occurredAt: at, delivery: {}, attempt: { at, statusCode, durationMs, error } }) as unknown as DomainEvent,
  other: (type: string, at: number) => ({ id: 'e', type, occurredAt: at, intent: {}, payment: { status: 'PAYMENT_COMPLETED' }, delivery: {} }) as unknown as DomainEvent,
};

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
/** The seconds of a window that have a decision: [epoch ms, approved, failed]. */
const busySeconds = (w: SeriesWindow): Array<[number, number, number]> =>
  w.seconds.flatMap((s, i) => ((w.approved[i] as number) + (w.failed[i] as number) === 0 ? [] : [[s, w.approved[i] as number, w.failed[i] as number] as [number, number, number]]));

describe('latency buckets', () => {
  it('keeps values below 16 ms exact and every bucket above within 12.5 % of its values, in order, up to the last', () => {
    expect(LATENCY_BUCKETS).toBe(144);
    let previous = -1;
    for (let v = 0; v <= MAX_TRACKED_MS; v++) {
      const bucket = latencyBucket(v);
      const upper = bucketUpperMs(bucket);
      if (v < 16) expect(upper).toBe(v);
      if (upper < v || upper > v * 1.125 + 1 || bucket < previous || bucket > previous + 1) throw new Error(`value ${v}: bucket ${bucket} (after ${previous}), upper bound ${upper}`);
      previous = bucket;
    }
    expect(previous).toBe(LATENCY_BUCKETS - 1);
  });

  it('rounds fractions up, counts negatives as 0 and caps what is above the range', () => {
    expect([latencyBucket(0.4), latencyBucket(0), latencyBucket(-3), latencyBucket(15.01)]).toEqual([1, 0, 0, 16]);
    expect([bucketUpperMs(latencyBucket(16)), bucketUpperMs(latencyBucket(17)), bucketUpperMs(latencyBucket(18)), bucketUpperMs(latencyBucket(100)), bucketUpperMs(latencyBucket(1000))]).toEqual([17, 17, 19, 103, 1023]);
    expect(bucketUpperMs(latencyBucket(5_000_000))).toBe(MAX_TRACKED_MS);
  });

  it('gives nearest-rank percentiles as the upper bound of the bucket holding that rank', () => {
    const counts = new Uint32Array(LATENCY_BUCKETS);
    expect(percentileMs(counts, 50)).toBeNull();
    // 20 values; sorted: 1 … 10, 20, 20, 40, 100, 100, 100, 500, 900, 1000, 5000.
    for (const v of [100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 20, 40, 100, 100, 500, 900, 1000, 5000]) counts[latencyBucket(v)] = (counts[latencyBucket(v)] as number) + 1;
    // p50: rank 10 → 10 (exact); p75: rank 15 → 100 (96–103); p90: rank 18 → 900 (896–959);
    // p95: rank 19 → 1000 (960–1023); p99: rank ⌈19.8⌉ = 20 → 5000 (4608–5119).
    expect([50, 75, 90, 95, 99].map((p) => percentileMs(counts, p))).toEqual([10, 103, 959, 1023, 5119]);
    expect(percentileMs(counts, 1)).toBe(1);
  });
});

describe('the console’s activity series', () => {
  it('counts decisions of every dialect by outcome in the second they were made, zero elsewhere', async () => {
    const clock = new ManualClock(T0);
    const series = new ActivitySeries(clock);
    series.onEvent(ev.intent('approved', T0));
    series.onEvent(ev.intent('approved', T0 + 999));
    series.onEvent(ev.v2('PAYMENT_FAILED', T0 + 1400)); // stamped after now (another source's time): the current second
    await clock.advance(1500);
    series.onEvent(ev.v2('PENDING', T0 + 1500));
    series.onEvent(ev.booking(true, T0 + 1200));
    series.onEvent(ev.booking(false, T0 + 1499));
    // FluxPay's event is published after the decision: counted at the decision's second.
    series.onEvent(ev.fluxpay('payment.failed', T0 + 200, T0 + 1500));
    series.onEvent(ev.fluxpay('payment.approved', T0 + 1000, T0 + 1500));
    // Not decisions: creation, cancel, refund, completion, other FluxPay events, deliveries.
    for (const type of ['payment.created', 'payment.cancelled', 'payment.refunded', 'v2.payment_created', 'v2.payment_completed', 'booking.confirmed', 'webhook.delivered', 'webhook.failed']) series.onEvent(ev.other(type, T0 + 1500));
    series.onEvent(ev.fluxpay('credit.charged', T0 + 1500, T0 + 1500));
    // Made again (a decision's job run again): counted when first made, not twice.
    series.onEvent({ ...ev.intent('approved', T0), again: true } as DomainEvent);
    series.onEvent({ ...ev.v2('PAYMENT_FAILED', T0 + 1500), again: true } as DomainEvent);
    const w = series.read();
    expect(w.seconds.length).toBe(WINDOW_SECONDS);
    expect([w.seconds[0], w.seconds.at(-1)]).toEqual([T0 + 1000 - (WINDOW_SECONDS - 1) * 1000, T0 + 1000]);
    expect(busySeconds(w)).toEqual([
      [T0, 2, 2],
      [T0 + 1000, 3, 1],
    ]);
    expect(w.byDialect).toEqual({ intent: { approved: 2, failed: 0 }, v2: { approved: 1, failed: 1 }, booking: { approved: 1, failed: 1 }, fluxpay: { approved: 1, failed: 1 } });
    expect(w.groups.length).toBe(WINDOW_SECONDS / GROUP_SECONDS);
    expect(w.groups.at(-1)).toEqual({ start: T0 + 1000 - (GROUP_SECONDS - 1) * 1000, approved: 5, failed: 3, attempts: 0, succeeded: 0, p50: null, p95: null, p99: null });
    expect(w.groups.slice(0, -1).every((g) => g.approved + g.failed + g.attempts === 0)).toBe(true);
    expect(w.total).toEqual({ approved: 5, failed: 3, attempts: 0, succeeded: 0, p50: null, p95: null, p99: null });
  });

  it('rolls the window over: a second leaves it WINDOW_SECONDS later, and its slot serves a new second cleared', async () => {
    const clock = new ManualClock(T0);
    const series = new ActivitySeries(clock);
    series.onEvent(ev.intent('approved', T0 + 999));
    series.onEvent(ev.attempt(200, 7, T0 + 10));
    await clock.advance((WINDOW_SECONDS - 1) * 1000);
    let w = series.read();
    expect([w.seconds[0], w.approved[0], w.total.approved, w.total.attempts, w.groups[0]?.p50]).toEqual([T0, 1, 1, 1, 7]);
    // Older than the window: not counted. The window's first second still is.
    series.onEvent(ev.intent('failed', T0 - 1));
    series.onEvent(ev.intent('failed', T0));
    expect(busySeconds(series.read())).toEqual([[T0, 1, 1]]);
    await clock.advance(1000);
    w = series.read();
    expect([w.seconds[0], sum(w.approved), sum(w.failed), w.total.attempts, w.total.p50]).toEqual([T0 + 1000, 0, 0, 0, null]);
    // The same slot as T0's, now for T0 + WINDOW_SECONDS: only the new count.
    series.onEvent(ev.intent('failed', T0 + WINDOW_SECONDS * 1000));
    series.onEvent(ev.attempt(500, 12, T0 + WINDOW_SECONDS * 1000));
    w = series.read();
    expect(busySeconds(w)).toEqual([[T0 + WINDOW_SECONDS * 1000, 0, 1]]);
    expect(w.total).toEqual({ approved: 0, failed: 1, attempts: 1, succeeded: 0, p50: 12, p95: 12, p99: 12 });
  });

  it('shows nothing from before a forward jump of the clock past the window', async () => {
    const clock = new ManualClock(T0);
    const series = new ActivitySeries(clock);
    for (let i = 0; i < 30; i++) series.onEvent(ev.intent('approved', T0));
    series.onEvent(ev.attempt(200, 3, T0));
    await clock.advance(3_600_000);
    expect(series.read().total).toEqual({ approved: 0, failed: 0, attempts: 0, succeeded: 0, p50: null, p95: null, p99: null });
    series.onEvent(ev.intent('failed', T0)); // an hour old
    series.onEvent(ev.intent('approved', T0 + 3_600_000));
    expect(busySeconds(series.read())).toEqual([[T0 + 3_600_000, 1, 0]]);
  });

  it('shows only the window ending now when the clock goes back, and reuses a slot holding a second after now', () => {
    let now = T0 + WINDOW_SECONDS * 1000;
    const clock: Clock = { now: () => now, schedule: () => ({ cancel: () => undefined }) };
    const series = new ActivitySeries(clock);
    series.onEvent(ev.intent('approved', now));
    series.onEvent(ev.intent('approved', now - 1000));
    now = T0; // back by the whole window
    expect(series.read().total.approved).toBe(0);
    series.onEvent(ev.intent('failed', T0)); // the slot that held T0 + WINDOW_SECONDS
    expect(busySeconds(series.read())).toEqual([[T0, 0, 1]]);
    now = T0 + 500_000;
    expect(busySeconds(series.read())).toEqual([[T0, 0, 1]]);
  });

  it('counts webhook attempts by success and gives latency percentiles per interval and over the window', async () => {
    const clock = new ManualClock(T0);
    const series = new ActivitySeries(clock);
    // An interval (GROUP_SECONDS) before the last: two slow attempts, one answered 500, one timed out.
    series.onEvent(ev.attempt(500, 1000, T0));
    series.onEvent(ev.attempt(null, 1000, T0 + 100));
    series.onEvent({ id: 'whd', type: 'webhook.attempted', occurredAt: T0 + 200, delivery: {} } as unknown as DomainEvent); // no attempt carried: nothing to count
    await clock.advance(GROUP_SECONDS * 1000);
    // The last interval: the 20 values of the percentile test above, 18 of them answered 2xx.
    const values = [100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 20, 40, 100, 100, 500, 900, 1000, 5000];
    values.forEach((v, i) => series.onEvent(ev.attempt(i < 2 ? 503 : i % 2 === 0 ? 200 : 204, v, T0 + GROUP_SECONDS * 1000)));
    // A 2xx with an error (the body could not be read) is not a success.
    series.onEvent(ev.attempt(200, 2, T0 + GROUP_SECONDS * 1000, 'network_error: aborted'));
    const w = series.read();
    const [older, last] = w.groups.slice(-2);
    expect(older).toEqual({ start: T0 - 9000, approved: 0, failed: 0, attempts: 2, succeeded: 0, p50: 1023, p95: 1023, p99: 1023 });
    // 21 values: 1, 2, 2, 3 … → p50 rank 11 → 10; p95 rank 20 → 1000; p99 rank 21 → 5000.
    expect(last).toEqual({ start: T0 + 10_000 - (GROUP_SECONDS - 1) * 1000, approved: 0, failed: 0, attempts: 21, succeeded: 18, p50: 10, p95: 1023, p99: 5119 });
    // The window: those 21 and the two of 1000 ms: p50 rank 12 → 20 (20–21); p95 rank ⌈21.85⌉ = 22 → 1000 (960–1023).
    expect(w.total).toEqual({ approved: 0, failed: 0, attempts: 23, succeeded: 18, p50: 21, p95: 1023, p99: 5119 });
  });
});
