import type { Clock } from '../core/clock.ts';
import { isMadeAgain, type DomainEvent } from '../core/events.ts';
import { isSuccess } from '../webhooks/retry-policy.ts';
import { LATENCY_BUCKETS, latencyBucket, percentileMs } from './latency-buckets.ts';

/**
 * What the console's charts show, recorded as it happens: per second, for the last
 * WINDOW_SECONDS, the decisions of every dialect by outcome and the webhook attempts (succeeded,
 * failed, and a latency histogram). Fed by a bus subscriber from the moment the console is
 * registered, so the history is there when somebody opens the page, and counted on the whole
 * traffic (the stores are never scanned).
 *
 * Cost per event: finding its second's slot and incrementing counters in preallocated typed
 * arrays; no allocation, no timer. The window is a ring of seconds, each slot tagged with the
 * second it holds: a slot is cleared when an event first lands in it for a new second, and read
 * only when its tag is a second inside the window asked for, so a clock that jumps (forward past
 * the whole window, or back) never shows counts from outside the window, and a second with no
 * event reads as zero. Memory is fixed: about 375 KB, nearly all the latency histograms.
 * Time is the injected clock's (tests drive it); an event is placed at the second it happened
 * (a FluxPay payment's outbox event is published after its decision, and counts at the decision).
 * @see issue 13 "Charts"
 */

export const WINDOW_SECONDS = 600;
/** The rows of the table and the points of the webhook charts: the window in groups of this many seconds. */
export const GROUP_SECONDS = 10;
/** The dialects whose decisions are counted (a PaymentSource's `dialect`). */
export const DECISION_DIALECTS = ['intent', 'v2', 'booking', 'fluxpay'] as const;
export type DecisionDialect = (typeof DECISION_DIALECTS)[number];
export type Outcome = 'approved' | 'failed';

const DIALECT_INDEX: Readonly<Record<DecisionDialect, number>> = { intent: 0, v2: 1, booking: 2, fluxpay: 3 };
/** Per second: approved and failed of each dialect. */
const DECISION_COUNTERS = DECISION_DIALECTS.length * 2;

export interface DecisionCounts {
  approved: number;
  failed: number;
}

export interface GroupStats extends DecisionCounts {
  /** Epoch ms of its first second. */
  start: number;
  /** Webhook attempts, and those answered 2xx. */
  attempts: number;
  succeeded: number;
  /** Attempt latency percentiles in ms (bucket upper bounds); null without attempts. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface SeriesWindow {
  /** Epoch ms of each second of the window, oldest first (the last one is the current second). */
  seconds: number[];
  /** Decisions of every dialect in each second. */
  approved: number[];
  failed: number[];
  /** The window in GROUP_SECONDS groups, oldest first, the last one ending with the current second. */
  groups: GroupStats[];
  /** The whole window: its decisions, attempts and latency percentiles. */
  total: Omit<GroupStats, 'start'>;
  byDialect: Record<DecisionDialect, DecisionCounts>;
}

export class ActivitySeries {
  readonly #clock: Clock;
  /** The second each slot holds (-1: none yet). */
  readonly #second = new Float64Array(WINDOW_SECONDS).fill(-1);
  readonly #decisions = new Uint32Array(WINDOW_SECONDS * DECISION_COUNTERS);
  /** Per second: succeeded, failed. */
  readonly #attempts = new Uint32Array(WINDOW_SECONDS * 2);
  readonly #latency = new Uint32Array(WINDOW_SECONDS * LATENCY_BUCKETS);

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Counts one decision made at `at` (epoch ms). */
  decision(dialect: DecisionDialect, outcome: Outcome, at: number): void {
    const slot = this.#slot(at);
    if (slot < 0) return;
    increment(this.#decisions, slot * DECISION_COUNTERS + DIALECT_INDEX[dialect] * 2 + (outcome === 'approved' ? 0 : 1));
  }

  /** Counts one webhook attempt that ended at `at`. */
  attempt(succeeded: boolean, durationMs: number, at: number): void {
    const slot = this.#slot(at);
    if (slot < 0) return;
    increment(this.#attempts, slot * 2 + (succeeded ? 0 : 1));
    increment(this.#latency, slot * LATENCY_BUCKETS + latencyBucket(durationMs));
  }

  /** The bus subscriber: the events that carry a decision or a webhook attempt, each counted once. */
  onEvent(event: DomainEvent): void {
    if (isMadeAgain(event)) return;
    switch (event.type) {
      case 'payment.approved':
        this.decision('intent', 'approved', event.occurredAt);
        break;
      case 'payment.failed':
        this.decision('intent', 'failed', event.occurredAt);
        break;
      case 'v2.payment_decided':
        // Approved stays PENDING until its callback is acknowledged; declined is PAYMENT_FAILED at once.
        this.decision('v2', event.payment.status === 'PAYMENT_FAILED' ? 'failed' : 'approved', event.occurredAt);
        break;
      case 'booking.payment_decided':
        this.decision('booking', event.isSuccess ? 'approved' : 'failed', event.occurredAt);
        break;
      case 'fluxpay.event':
        if (event.event.eventType === 'payment.approved') this.decision('fluxpay', 'approved', event.event.occurredAt);
        else if (event.event.eventType === 'payment.failed') this.decision('fluxpay', 'failed', event.event.occurredAt);
        break;
      case 'webhook.attempted':
        if (event.attempt !== undefined) this.attempt(isSuccess(event.attempt), event.attempt.durationMs, event.occurredAt);
        break;
      default:
        break;
    }
  }

  /**
   * The slot for an event at `at`, cleared first if it held another second; -1 when `at` is
   * before the window ending now. An event stamped after now counts in the current second.
   */
  #slot(at: number): number {
    const now = Math.floor(this.#clock.now() / 1000);
    const second = Math.min(Math.floor(at / 1000), now);
    if (second <= now - WINDOW_SECONDS) return -1;
    const slot = second % WINDOW_SECONDS;
    if (this.#second[slot] === second) return slot;
    // It holds a second before the window, or (the clock went back) after now: outside either way.
    this.#second[slot] = second;
    this.#decisions.fill(0, slot * DECISION_COUNTERS, (slot + 1) * DECISION_COUNTERS);
    this.#attempts.fill(0, slot * 2, slot * 2 + 2);
    this.#latency.fill(0, slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS);
    return slot;
  }

  /** The window ending with the current second. */
  read(): SeriesWindow {
    const end = Math.floor(this.#clock.now() / 1000);
    const first = end - WINDOW_SECONDS + 1;
    const seconds: number[] = [];
    const approved: number[] = [];
    const failed: number[] = [];
    const byDialect = Object.fromEntries(DECISION_DIALECTS.map((d) => [d, { approved: 0, failed: 0 }])) as Record<DecisionDialect, DecisionCounts>;
    const groups: GroupStats[] = [];
    const windowLatency = new Uint32Array(LATENCY_BUCKETS);
    const groupLatency = new Uint32Array(LATENCY_BUCKETS);
    let group: GroupStats | undefined;
    for (let second = first; second <= end; second++) {
      if ((second - first) % GROUP_SECONDS === 0) {
        if (group !== undefined) groups.push(closeGroup(group, groupLatency));
        group = { start: second * 1000, approved: 0, failed: 0, attempts: 0, succeeded: 0, p50: null, p95: null, p99: null };
        groupLatency.fill(0);
      }
      const g = group as GroupStats;
      seconds.push(second * 1000);
      const slot = second % WINDOW_SECONDS;
      if (this.#second[slot] !== second) {
        approved.push(0);
        failed.push(0);
        continue;
      }
      let a = 0;
      let f = 0;
      for (const dialect of DECISION_DIALECTS) {
        const at = slot * DECISION_COUNTERS + DIALECT_INDEX[dialect] * 2;
        const ok = this.#decisions[at] as number;
        const no = this.#decisions[at + 1] as number;
        byDialect[dialect].approved += ok;
        byDialect[dialect].failed += no;
        a += ok;
        f += no;
      }
      approved.push(a);
      failed.push(f);
      g.approved += a;
      g.failed += f;
      const succeeded = this.#attempts[slot * 2] as number;
      g.succeeded += succeeded;
      g.attempts += succeeded + (this.#attempts[slot * 2 + 1] as number);
      for (let b = 0; b < LATENCY_BUCKETS; b++) {
        const n = this.#latency[slot * LATENCY_BUCKETS + b] as number;
        groupLatency[b] = (groupLatency[b] as number) + n;
        windowLatency[b] = (windowLatency[b] as number) + n;
      }
    }
    if (group !== undefined) groups.push(closeGroup(group, groupLatency));
    const sum = (key: 'approved' | 'failed' | 'attempts' | 'succeeded'): number => groups.reduce((n, g) => n + g[key], 0);
    const total = { approved: sum('approved'), failed: sum('failed'), attempts: sum('attempts'), succeeded: sum('succeeded'), ...percentiles(windowLatency) };
    return { seconds, approved, failed, groups, total, byDialect };
  }
}

function increment(counters: Uint32Array, index: number): void {
  counters[index] = (counters[index] as number) + 1;
}

function percentiles(histogram: Uint32Array): Pick<GroupStats, 'p50' | 'p95' | 'p99'> {
  return { p50: percentileMs(histogram, 50), p95: percentileMs(histogram, 95), p99: percentileMs(histogram, 99) };
}

function closeGroup(group: GroupStats, latency: Uint32Array): GroupStats {
  return { ...group, ...percentiles(latency) };
}
