import type { Delivery } from '../../core/deliveries.ts';
import type { Intent } from '../../core/intents/intent.ts';

/** How the native API shows its records: snake_case, ISO 8601 times, never internals (the planned outcome, idempotency keys). */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function intentView(intent: Intent) {
  return {
    payment_intent_id: intent.id,
    reservation_id: intent.reservationId,
    amount: intent.amount,
    currency: intent.currency,
    scenario: intent.scenario,
    status: intent.status,
    failure_code: intent.failureCode,
    refunded_amount: intent.refundedAmount,
    delay_ms: intent.delayMs,
    webhook_url: intent.webhookUrl,
    metadata: intent.metadata,
    created_at: iso(intent.createdAt) as string,
    updated_at: iso(intent.updatedAt) as string,
    decided_at: iso(intent.decidedAt),
  };
}

export function deliveryView(delivery: Delivery) {
  return {
    id: delivery.id,
    event_id: delivery.eventId,
    type: delivery.type,
    url: delivery.url,
    payment_intent_id: delivery.subject?.kind === 'intent' ? delivery.subject.id : null,
    subject: delivery.subject,
    test: delivery.test,
    status: delivery.status,
    attempts: delivery.attempts.map((a) => ({ at: iso(a.at) as string, status_code: a.statusCode, duration_ms: a.durationMs, error: a.error })),
    next_attempt_at: iso(delivery.nextAttemptAt),
    failure_reason: delivery.failureReason,
    created_at: iso(delivery.createdAt) as string,
    updated_at: iso(delivery.updatedAt) as string,
  };
}

/** The intent's latest webhook delivery, in short; null when it has none. */
export function webhookSummary(delivery: Delivery | undefined) {
  if (delivery === undefined) return null;
  const last = delivery.attempts.at(-1);
  return { status: delivery.status, attempts: delivery.attempts.length, last_status_code: last?.statusCode ?? null, last_attempt_at: iso(last?.at ?? null) };
}

export { iso };
