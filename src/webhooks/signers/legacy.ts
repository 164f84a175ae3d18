import { hmac, rawKey, type Signer } from './signer.ts';

/**
 * Source document 000's scheme: `X-Webhook-Id`, `X-Timestamp` (epoch ms) and
 * `X-Signature: sha256=<hex HMAC-SHA256(secret, body followed by the timestamp string)>`;
 * several signatures are comma-separated.
 * @see ../../../../shared/seeds/000_b3f315eb75f1c703.txt
 */
export function legacySigner(secrets: readonly string[]): Signer {
  const keys = secrets.map(rawKey);
  return {
    name: 'legacy',
    headers(webhookId, body, nowMs) {
      const stamp = String(nowMs);
      return {
        'x-webhook-id': webhookId,
        'x-timestamp': stamp,
        'x-signature': keys.map((key) => `sha256=${hmac(key, body + stamp, 'hex')}`).join(','),
      };
    },
  };
}
