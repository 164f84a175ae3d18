/**
 * Webhook deliveries as plain data: every webhook the dispatcher accepted, with each attempt,
 * until it is delivered or has failed for a stated reason.
 * @see issue 3, issue 7 "Webhooks"
 */

export const DELIVERY_STATUSES = ['pending', 'retrying', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** What a delivery is about, whatever the dialect: `{kind: 'intent', id: 'pay_…'}`, `{kind: 'booking', id: 'bk_…'}`. */
export interface Subject {
  kind: string;
  id: string;
}

export interface DeliveryAttempt {
  at: number;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface Delivery {
  id: string;
  eventId: string;
  type: string;
  url: string;
  subject: Subject | null;
  /** Sent by a test-send route rather than by an event of its subject. */
  test: boolean;
  /** Serialised once: every attempt sends these exact bytes. */
  body: string;
  /** Headers of the dialect that produced the event (e.g. an event-type header), sent on every attempt. */
  extraHeaders: Readonly<Record<string, string>>;
  /** The signers' names (`standard`, `legacy`, …), chosen when the delivery was made; a replay signs the same way. */
  schemes: readonly string[];
  /**
   * A `drop_attempts` fault rule's plan for the delivery (issue 15), decided when it was made and
   * logged with it, so that whichever replica makes an attempt loses the first `n` of its first
   * series; absent without such a rule, and gone once the delivery is replayed (a replay's attempts
   * go out, also those of a delivery that failed before its first attempt).
   */
  dropAttempts?: { ruleId: string; n: number } | undefined;
  /**
   * The trace the delivery was made in (its event's request, or the job that decided its payment),
   * as a W3C `traceparent`: every attempt, on whichever replica, is a span of it and sends it on.
   * Absent without tracing.
   */
  traceparent?: string | undefined;
  status: DeliveryStatus;
  attempts: readonly DeliveryAttempt[];
  /** Index in `attempts` where the current attempt series (first try or a replay) started. */
  seriesStart: number;
  nextAttemptAt: number | null;
  failureReason: string | null;
  createdAt: number;
  updatedAt: number;
}

/** The state a delivery moves to, and the attempt that moved it there (if any). */
export interface DeliveryChange {
  status: DeliveryStatus;
  attempt?: DeliveryAttempt | undefined;
  nextAttemptAt: number | null;
  failureReason: string | null;
  /** A replay starts a new series at the current number of attempts. */
  newSeries?: boolean | undefined;
  updatedAt: number;
}

/** The delivery as `change` leaves it (what a store's update makes of it), a new object. */
export function changedDelivery(delivery: Delivery, change: DeliveryChange): Delivery {
  const changed: Delivery = {
    ...delivery,
    status: change.status,
    nextAttemptAt: change.nextAttemptAt,
    failureReason: change.failureReason,
    updatedAt: change.updatedAt,
    seriesStart: change.newSeries === true ? delivery.attempts.length : delivery.seriesStart,
    attempts: change.attempt === undefined ? delivery.attempts : [...delivery.attempts, { ...change.attempt }],
  };
  // A new series (a replay) goes out: the `drop_attempts` plan was the first series' (the stores drop it too).
  if (change.newSeries === true) delete changed.dropAttempts;
  return changed;
}

/** A delivery's change back to pending, to be queued for its next attempt (a retry, a replay, a reorder hold's release or backstop). */
export function backToPending(now: number): DeliveryChange & { status: 'pending' } {
  return { status: 'pending', nextAttemptAt: null, failureReason: null, updatedAt: now };
}

export function isFinished(delivery: Pick<Delivery, 'status'>): boolean {
  return delivery.status === 'delivered' || delivery.status === 'failed';
}

/** Attempts are never changed once made, so a copy shares them and copies only the list (and the subject, which is small). */
export function copyDelivery(delivery: Delivery): Delivery {
  return { ...delivery, subject: delivery.subject === null ? null : { ...delivery.subject }, attempts: [...delivery.attempts] };
}

export function subjectKey(subject: Subject): string {
  return `${subject.kind}:${subject.id}`;
}
