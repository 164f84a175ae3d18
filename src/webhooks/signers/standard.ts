import { hmac, standardKey, type Signer } from './signer.ts';

/**
 * Standard Webhooks: `webhook-id`, `webhook-timestamp` (unix seconds) and
 * `webhook-signature: v1,<base64>` over `<id>.<timestamp>.<body>`; several signatures (one per
 * secret during a rotation) are space-separated.
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 */
export function standardSigner(secrets: readonly string[]): Signer {
  const keys = secrets.map(standardKey);
  return {
    name: 'standard',
    headers(webhookId, body, nowMs) {
      const seconds = Math.floor(nowMs / 1000);
      const signed = `${webhookId}.${seconds}.${body}`;
      return {
        'webhook-id': webhookId,
        'webhook-timestamp': String(seconds),
        'webhook-signature': keys.map((key) => `v1,${hmac(key, signed, 'base64')}`).join(' '),
      };
    },
  };
}
