import type { DecisionSource } from '../scenario.ts';

/**
 * A payment intent of the native API.
 * Lifecycle: PENDING → APPROVED | FAILED; PENDING → CANCELLED; APPROVED → PARTIALLY_REFUNDED → REFUNDED.
 * @see issue 2 "Intent lifecycle"
 */

export const INTENT_STATUSES = ['PENDING', 'APPROVED', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED'] as const;
export type IntentStatus = (typeof INTENT_STATUSES)[number];

export interface Intent {
  id: string;
  reservationId: string;
  amount: number;
  currency: string;
  scenario: DecisionSource;
  status: IntentStatus;
  failureCode: string | null;
  refundedAmount: number;
  delayMs: number;
  webhookUrl: string | null;
  /** Frozen at creation: copies share it. */
  metadata: Readonly<Record<string, string>> | null;
  createdAt: number;
  updatedAt: number;
  decidedAt: number | null;
  /**
   * The outcome decided at creation and applied when the delay has passed. Kept on the record
   * (not in a process's memory) so whichever process runs the due decision can apply it.
   * Never shown by the API. Frozen: copies share it (the scenario engine hands out one frozen
   * object per outcome, so a million declines are not a million objects).
   */
  planned: Readonly<{ status: 'APPROVED' | 'FAILED'; failureCode: string | null }>;
  /**
   * true when a fault rule's `outcome` planned it (issue 15), whatever the scenario or card said;
   * absent otherwise, and in records stored before 2026-12-04 (Redis keeps them). Immutable, as
   * `planned`. Never shown by the API (`scenario` stays what was asked for); the run report's
   * `decided_by` reads it (`rule` once decided).
   */
  decidedByRule?: true;
}

/** A copy a caller may change without touching the stored record (metadata and planned outcome are frozen, hence shared). */
export function copyIntent(intent: Intent): Intent {
  const { planned, metadata } = intent;
  return {
    ...intent,
    planned: Object.isFrozen(planned) ? planned : Object.freeze({ ...planned }),
    metadata: metadata === null || Object.isFrozen(metadata) ? metadata : Object.freeze({ ...metadata }),
  };
}
