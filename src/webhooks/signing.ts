import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { SignatureScheme } from '../config.ts';

/**
 * Webhook signatures, so receivers can verify deliveries with libraries that already exist.
 * - standard: the Standard Webhooks specification (`webhook-id`, `webhook-timestamp` in unix
 *   seconds, `webhook-signature: v1,<base64>` over `<id>.<timestamp>.<body>`; the key is the
 *   base64 part of a `whsec_` secret, else the secret's UTF-8 bytes). Several signatures are
 *   space-separated. @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 * - legacy: source document 000 (`X-Webhook-Id`, `X-Timestamp` in epoch ms,
 *   `X-Signature: sha256=<hex>` over the body followed by the timestamp string); several are
 *   comma-separated.
 * - stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]` over `<t>.<body>`, keyed by the
 *   secret's UTF-8 bytes as Stripe's libraries do. @see https://docs.stripe.com/webhooks#verify-manually
 * With a previous secret set (rotation), each scheme carries a signature for both.
 */

export interface SigningKeys {
  /** Current first, then the previous one during a rotation. */
  secrets: string[];
  schemes: readonly SignatureScheme[];
}

const WHSEC = 'whsec_';

/**
 * Signs deliveries. The HMAC keys are made once: building a key from a Buffer on every call
 * costs several times the HMAC itself, and a delivery is signed once per scheme per secret.
 */
export class Signer {
  readonly #schemes: readonly SignatureScheme[];
  readonly #standardKeys: KeyObject[];
  readonly #rawKeys: KeyObject[];

  constructor(keys: SigningKeys) {
    this.#schemes = keys.schemes;
    this.#standardKeys = keys.secrets.map((secret) => createSecretKey(secret.startsWith(WHSEC) ? Buffer.from(secret.slice(WHSEC.length), 'base64') : Buffer.from(secret, 'utf8')));
    this.#rawKeys = keys.secrets.map((secret) => createSecretKey(Buffer.from(secret, 'utf8')));
  }

  headers(webhookId: string, body: string, nowMs: number): Record<string, string> {
    const headers: Record<string, string> = {};
    const seconds = Math.floor(nowMs / 1000);
    for (const scheme of this.#schemes) {
      switch (scheme) {
        case 'standard': {
          const signed = `${webhookId}.${seconds}.${body}`;
          headers['webhook-id'] = webhookId;
          headers['webhook-timestamp'] = String(seconds);
          headers['webhook-signature'] = this.#standardKeys.map((key) => `v1,${hmac(key, signed, 'base64')}`).join(' ');
          break;
        }
        case 'legacy': {
          const stamp = String(nowMs);
          headers['x-webhook-id'] = webhookId;
          headers['x-timestamp'] = stamp;
          headers['x-signature'] = this.#rawKeys.map((key) => `sha256=${hmac(key, body + stamp, 'hex')}`).join(',');
          break;
        }
        case 'stripe': {
          const signed = `${seconds}.${body}`;
          headers['stripe-signature'] = [`t=${seconds}`, ...this.#rawKeys.map((key) => `v1=${hmac(key, signed, 'hex')}`)].join(',');
          break;
        }
      }
    }
    return headers;
  }
}

function hmac(key: KeyObject, data: string, encoding: 'hex' | 'base64'): string {
  return createHmac('sha256', key).update(data, 'utf8').digest(encoding);
}
