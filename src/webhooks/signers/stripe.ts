import { hmac, rawKey, type Signer } from './signer.ts';

/**
 * Stripe's scheme: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]` over `<t>.<body>`, keyed by
 * the secret's UTF-8 bytes as Stripe's libraries do.
 * @see https://docs.stripe.com/webhooks#verify-manually
 */
export function stripeSigner(secrets: readonly string[]): Signer {
  const keys = secrets.map(rawKey);
  return {
    name: 'stripe',
    headers(_webhookId, body, nowMs) {
      const seconds = Math.floor(nowMs / 1000);
      const signed = `${seconds}.${body}`;
      return { 'stripe-signature': [`t=${seconds}`, ...keys.map((key) => `v1=${hmac(key, signed, 'hex')}`)].join(',') };
    },
  };
}
