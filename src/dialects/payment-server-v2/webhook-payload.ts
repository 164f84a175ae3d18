import { createHmac, createSecretKey } from 'node:crypto';
import type { V2PaymentEvent } from '../../core/events.ts';
import type { V2Payment } from '../../core/v2/payment.ts';
import type { WebhookRequest } from '../../webhooks/dispatcher.ts';
import type { Signer } from '../../webhooks/signers/signer.ts';
import { iso } from './views.ts';

/**
 * The callback of the Payment Server v3 API, in source document 001's wire format: a `POST` to
 * the payment's `callback_url` with the body
 * `{"version": "v2", "payment_id", "order_id", "tx_id", "user_id", "amount", "status", "created_at", "confirmed_at"}`
 * (and `failure_code` for a failure), serialised once (compact JSON, byte-identical on every
 * retry and replay), and the headers `X-Payment-Event: payment.completed | payment.failed`,
 * `X-Payment-Signature: base64(HMAC-SHA256(secret, raw body))`, `X-Payment-Webhook-Id` (the
 * event id, the same on every retry: receivers de-duplicate on it) and, when SERVICE_AUTH_TOKEN
 * is set, `Authorization: Bearer <token>`. No other signature scheme unless
 * V2_EXTRA_SIGNATURE_SCHEMES names some. Delivered, retried, rate-capped, logged and replayable by
 * the one dispatcher, like every webhook.
 * @see issue 10 "Callback", ../../../../shared/seeds/001_8ef7263c4f45841a.txt ("웹훅 보안")
 */

/** The signer's name in the registry, stored with each delivery (a replay is signed the same way). */
export const V2_SIGNATURE_SCHEME = 'payment-v2';
/** What a delivery is about, in the log: `{kind: 'v2_payment', id: 'pay_…'}`. */
export const V2_SUBJECT_KIND = 'v2_payment';

export type V2CallbackType = 'payment.completed' | 'payment.failed';

/** The `X-Payment-Event` header of each callback: one frozen object each, shared by every delivery. */
const EVENT_HEADERS: Readonly<Record<V2CallbackType, Readonly<Record<string, string>>>> = {
  'payment.completed': Object.freeze({ 'x-payment-event': 'payment.completed' }),
  'payment.failed': Object.freeze({ 'x-payment-event': 'payment.failed' }),
};

/** The body, in the document's field order. */
export function callbackBody(payment: Readonly<V2Payment>): string {
  const failed = payment.status === 'PAYMENT_FAILED';
  const body: Record<string, unknown> = {
    version: 'v2',
    payment_id: payment.id,
    order_id: payment.orderId,
    tx_id: payment.txId,
    user_id: payment.userId,
    amount: payment.amount,
    status: failed ? 'PAYMENT_FAILED' : 'PAYMENT_COMPLETED',
    created_at: iso(payment.createdAt),
    // What the receiver is told: completed when auto-completion ran.
    confirmed_at: failed ? null : iso(payment.decidedAt),
  };
  if (failed) body.failure_code = payment.failureCode;
  return JSON.stringify(body);
}

/** The callback for a decided payment; undefined for every other event. */
export function v2CallbackOf(event: V2PaymentEvent, schemes: readonly string[]): WebhookRequest | undefined {
  if (event.type !== 'v2.payment_decided') return undefined;
  const { payment } = event;
  const type: V2CallbackType = payment.status === 'PAYMENT_FAILED' ? 'payment.failed' : 'payment.completed';
  return {
    eventId: event.id,
    type,
    url: payment.callbackUrl,
    body: callbackBody(payment),
    subject: { kind: V2_SUBJECT_KIND, id: payment.id },
    schemes,
    headers: EVENT_HEADERS[type],
  };
}

/**
 * The document's scheme as a signer: `X-Payment-Signature` (one signature, with PAYMENT_WEBHOOK_SECRET
 * or else the webhook secret: the document's receivers compare one value, so there is no rotation
 * list), `X-Payment-Webhook-Id`, and the `Authorization` header when SERVICE_AUTH_TOKEN is set.
 * The token is added at sending time rather than stored with the delivery, so it never sits in
 * the delivery log, and a replay carries the token the service has now.
 */
export function paymentV2Signer(secret: string, serviceAuthToken: string | undefined): Signer {
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  const authorization = serviceAuthToken === undefined ? undefined : `Bearer ${serviceAuthToken}`;
  return {
    name: V2_SIGNATURE_SCHEME,
    headers(webhookId, body) {
      const headers: Record<string, string> = {
        'x-payment-signature': createHmac('sha256', key).update(body, 'utf8').digest('base64'),
        'x-payment-webhook-id': webhookId,
      };
      if (authorization !== undefined) headers.authorization = authorization;
      return headers;
    },
  };
}
