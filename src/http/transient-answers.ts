import type { FastifyReply } from 'fastify';

/**
 * Answers that report a state another request in flight is about to change (a payment of the
 * booking already in progress): not stored under an `Idempotency-Key`, so the client's retry with
 * the key runs again and gets the outcome, as a 5xx's does. Stored, a retry was told "in progress"
 * for the key's whole lifetime (24 h), long after the booking had settled (a user test). Stripe
 * saves no result for a request that conflicted with another executing concurrently.
 */
const transient = new WeakSet<FastifyReply>();

export function markTransient(reply: FastifyReply): void {
  transient.add(reply);
}

export function isTransient(reply: FastifyReply): boolean {
  return transient.has(reply);
}

/**
 * Answers `409 IDEMPOTENCY_KEY_IN_USE` a route sent itself (its key taken over by another request
 * before its write: `idempotencyKeyLost`), counted as the idempotency hooks' own refusals are.
 */
const keyConflicts = new WeakSet<FastifyReply>();

export function markKeyConflict(reply: FastifyReply): void {
  keyConflicts.add(reply);
}

export function isKeyConflict(reply: FastifyReply): boolean {
  return keyConflicts.has(reply);
}
