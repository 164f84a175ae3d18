import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/**
 * A signature scheme: given the webhook id, the exact body bytes and the time of the attempt, the
 * headers that let a receiver verify the delivery. Each scheme is a signer in the registry; a
 * delivery names the schemes it is signed with, so a replay is signed the same way.
 */
export interface Signer {
  readonly name: string;
  headers(webhookId: string, body: string, nowMs: number): Record<string, string>;
}

const WHSEC = 'whsec_';

/** An HMAC key from a secret's UTF-8 bytes (how Stripe's and document 000's receivers use it). */
export function rawKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}

/** An HMAC key as Standard Webhooks reads a secret: the base64 part of `whsec_…`, else the UTF-8 bytes. */
export function standardKey(secret: string): KeyObject {
  return createSecretKey(secret.startsWith(WHSEC) ? Buffer.from(secret.slice(WHSEC.length), 'base64') : Buffer.from(secret, 'utf8'));
}

/** Keys are made once per signer: building one from a Buffer on every call costs several times the HMAC itself. */
export function hmac(key: KeyObject, data: string, encoding: 'hex' | 'base64'): string {
  return createHmac('sha256', key).update(data, 'utf8').digest(encoding);
}
