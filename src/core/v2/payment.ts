import type { DecisionSource } from '../scenario.ts';

/**
 * A payment of the Payment Server v3 API (`/api/v2`, source document 001), as plain data.
 *
 * Lifecycle: PENDING → PAYMENT_COMPLETED | PAYMENT_FAILED.
 * - Created PENDING, with its outcome planned by the scenario engine.
 * - Decided after V2_COMPLETE_DELAY_MS (auto-completion): a declined payment becomes
 *   PAYMENT_FAILED at once; an approved one stays PENDING with `decidedAt` set while its
 *   `payment.completed` callback is out, and becomes PAYMENT_COMPLETED when the callback is
 *   acknowledged (a 2xx, on any attempt or replay), with `confirmedAt` = `decidedAt`, the
 *   `confirmed_at` the callback carried.
 * - Confirmed by hand (`POST /api/v2/confirm-payment`) while PENDING: PAYMENT_COMPLETED with
 *   `confirmedAt` = now; no callback is sent for it, and an undecided payment is then never decided.
 * @see issue 10, ../../../../shared/seeds/001_8ef7263c4f45841a.txt
 */

export const V2_STATUSES = ['PENDING', 'PAYMENT_COMPLETED', 'PAYMENT_FAILED'] as const;
export type V2Status = (typeof V2_STATUSES)[number];

/** Who moved a payment to PAYMENT_COMPLETED: its acknowledged callback, or a manual confirm. */
export type V2Completion = 'callback' | 'manual';

/** The request fields that make a payment: a repeated `tx_id` with the same ones is the same request. */
export interface V2PaymentRequest {
  txId: string;
  orderId: number;
  userId: number;
  amount: number;
  callbackUrl: string;
}

export interface V2Payment extends V2PaymentRequest {
  /** `pay_<tx_id>`: the document's id, not a ULID. */
  id: string;
  status: V2Status;
  /** `card_declined` for a declined payment; null otherwise. */
  failureCode: string | null;
  /** What decided the outcome: `X-Sim-Scenario`, else V2_DEFAULT_SCENARIO. */
  scenario: DecisionSource;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms when auto-completion ran (and the callback was made); null before. */
  decidedAt: number | null;
  /** Epoch ms when it became PAYMENT_COMPLETED; null until then. */
  confirmedAt: number | null;
  completedBy: V2Completion | null;
  /**
   * The outcome the scenario engine chose at creation, applied when the delay has passed. Kept on
   * the record so whichever process runs the due decision can apply it. Never shown. Frozen: copies share it.
   */
  planned: Readonly<{ status: 'PAYMENT_COMPLETED' | 'PAYMENT_FAILED'; failureCode: string | null }>;
  /**
   * true when a fault rule's `outcome` planned it (issue 15), whatever the scenario or card said;
   * absent otherwise, and in records stored before 2026-12-04 (Redis keeps them). Immutable, as
   * `planned`. Never shown by the API (nor is `scenario`); the run report's
   * `decided_by` reads it (`rule` once decided).
   */
  decidedByRule?: true;
}

/** The id of the payment a `tx_id` makes, as the original server named it. */
/** A v2 store's list cursor: a payment's place in creation order, in decimal (src/core/ports.ts V2PaymentQuery). */
export const V2_LIST_CURSOR = /^\d{1,15}$/;

/** The creation sequence number a list cursor names; a RangeError for anything else. */
export function v2CursorSeq(cursor: string): number {
  if (!V2_LIST_CURSOR.test(cursor)) throw new RangeError(`Not a v2 list cursor: ${cursor.slice(0, 100)}`);
  return Number(cursor);
}

export function v2PaymentId(txId: string): string {
  return `pay_${txId}`;
}

/** The same request: the fields the client chose (the tx_id is the same by construction). */
export function sameRequest(a: V2PaymentRequest, b: V2PaymentRequest): boolean {
  return a.txId === b.txId && a.orderId === b.orderId && a.userId === b.userId && a.amount === b.amount && a.callbackUrl === b.callbackUrl;
}

/** A copy a caller may change without touching the stored record (the planned outcome is frozen, hence shared). */
export function copyV2Payment(payment: V2Payment): V2Payment {
  const { planned } = payment;
  return { ...payment, planned: Object.isFrozen(planned) ? planned : Object.freeze({ ...planned }) };
}
