import type { PaymentEvent, PaymentEventType } from '../../core/events.ts';
import type { Intent } from '../../core/intents/intent.ts';
import type { WebhookRequest } from '../../webhooks/dispatcher.ts';

/**
 * The native API's webhook: source document 000's fields at the top level (`type`,
 * `reservation_id`, `payment_intent_id`, `amount`, `ts`, `metadata`) plus what receivers need
 * to act without a second call (`id` for de-duplication, `currency`, `status`, `failure_code`,
 * `refunded_amount`). Signed with the schemes of WEBHOOK_SIGNATURE_SCHEMES.
 * @see issue 3 "What is delivered"
 */

export const DELIVERED_PAYMENT_EVENTS: ReadonlySet<PaymentEventType> = new Set(['payment.approved', 'payment.failed', 'payment.cancelled', 'payment.refunded']);

export function nativePayload(eventId: string, type: string, occurredAt: number, intent: Readonly<Intent>): string {
  const at = new Date(occurredAt).toISOString();
  return JSON.stringify({
    id: eventId,
    type,
    created_at: at,
    payment_intent_id: intent.id,
    reservation_id: intent.reservationId,
    amount: intent.amount,
    currency: intent.currency,
    status: intent.status,
    failure_code: intent.failureCode,
    refunded_amount: intent.refundedAmount,
    ts: at,
    metadata: intent.metadata,
  });
}

/** The delivery for an intent event, or undefined when the event is not delivered or the intent has no webhook URL. */
export function nativeWebhookOf(event: PaymentEvent, schemes: readonly string[]): WebhookRequest | undefined {
  if (!DELIVERED_PAYMENT_EVENTS.has(event.type) || event.intent.webhookUrl === null) return undefined;
  return {
    eventId: event.id,
    type: event.type,
    url: event.intent.webhookUrl,
    body: nativePayload(event.id, event.type, event.occurredAt, event.intent),
    subject: { kind: 'intent', id: event.intent.id },
    schemes,
  };
}
