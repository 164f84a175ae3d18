import type { OutboxEvent } from '../../core/fluxpay/model.ts';
import type { WebhookRequest } from '../../webhooks/dispatcher.ts';
import { eventData, iso } from './views.ts';

/**
 * FluxPay's outbound events (document 002's "이벤트 구독 (FluxPay → Client)"), as webhooks: a
 * `POST` of the envelope `{"eventId", "eventType", "occurredAt", "data"}` to every subscriber of
 * the event's type (and to FLUXPAY_WEBHOOK_URL), serialised once, signed with
 * FLUXPAY_SIGNATURE_SCHEMES (Standard Webhooks by default: `webhook-id` is the eventId), and
 * delivered, retried, rate-capped, logged and replayable by the one dispatcher.
 * @see issue 11 "Transactional outbox and outbound events"
 */

/** What a delivery is about, in the log: `{kind: 'fluxpay_event', id: 'evt_…'}`. */
export const FLUXPAY_SUBJECT_KIND = 'fluxpay_event';

export function envelopeOf(event: OutboxEvent): string {
  return JSON.stringify({ eventId: event.eventId, eventType: event.eventType, occurredAt: iso(event.occurredAt), data: eventData(event.payload) });
}

/** The webhook of one event to one subscriber URL. */
export function fluxpayWebhookOf(event: OutboxEvent, url: string, body: string, schemes: readonly string[]): WebhookRequest {
  return { eventId: event.eventId, type: event.eventType, url, body, subject: { kind: FLUXPAY_SUBJECT_KIND, id: event.eventId }, schemes };
}
