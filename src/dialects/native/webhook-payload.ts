import type { Clock } from '../../core/clock.ts';
import type { Delivery } from '../../core/deliveries.ts';
import { DomainError } from '../../core/errors.ts';
import type { PaymentEvent, PaymentEventType } from '../../core/events.ts';
import type { IdFactory } from '../../core/ids.ts';
import type { Intent } from '../../core/intents/intent.ts';
import type { WebhookDispatcher, WebhookRequest } from '../../webhooks/dispatcher.ts';

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

/** The events POST /v1/sim/webhook/test (and the console's form) may send. */
export type TestWebhookType = 'payment.approved' | 'payment.failed';

/**
 * A test send (POST /v1/sim/webhook/test, the console's form): the intent as if it had just been
 * decided `type`, to `url`, in the delivery log like any webhook and marked `test`; the intent
 * itself is left as it is. A URL disabled after a 410 is refused (INVALID_STATE), nothing logged:
 * the send would only end `failed` (`endpoint_disabled`) without an attempt.
 */
export async function sendTestWebhook(
  deps: { dispatcher: WebhookDispatcher; ids: IdFactory; clock: Clock; schemes: readonly string[] },
  intent: Readonly<Intent>,
  type: TestWebhookType,
  url: string,
): Promise<Delivery> {
  if (await deps.dispatcher.isUrlDisabled(url)) {
    throw new DomainError('INVALID_STATE', `${url} is disabled since it answered 410 Gone: re-enable it (DELETE /v1/sim/webhooks/disabled-urls?url=…, or the console's Webhooks page) to send to it again.`);
  }
  const approved = type === 'payment.approved';
  const eventId = deps.ids('evt');
  const snapshot = { ...intent, status: approved ? ('APPROVED' as const) : ('FAILED' as const), failureCode: approved ? null : (intent.failureCode ?? 'card_declined') };
  return deps.dispatcher.deliver({
    eventId,
    type,
    url,
    body: nativePayload(eventId, type, deps.clock.now(), snapshot),
    subject: { kind: 'intent', id: intent.id },
    schemes: deps.schemes,
    test: true,
  });
}
