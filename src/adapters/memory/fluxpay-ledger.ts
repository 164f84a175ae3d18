import { addToTotals, posting, sortTotals, type FluxPayAccountTotal, type FluxPayTransaction, type PostingKind } from '../../core/fluxpay/ledger.ts';

/**
 * FluxPay's double-entry ledger in one process's memory: each posting is one balanced
 * transaction (core/fluxpay/ledger.ts), kept under its reference (an order, a usage or a user)
 * and added to the running totals per account and unit, which are never evicted. When an order
 * is evicted its postings go with it and their net is kept per currency, so the totals still
 * reconcile against what is left (FluxPaySnapshot.evictedNetCollected).
 */
export class MemoryFluxPayLedger {
  readonly #totals = new Map<string, FluxPayAccountTotal>();
  readonly #byReference = new Map<string, FluxPayTransaction[]>();
  readonly #evictedNet = new Map<string, number>();

  post(kind: PostingKind, transactionId: string, reference: string, amount: number, unit: string, now: number): void {
    const transaction = posting(kind, transactionId, reference, amount, unit, now);
    addToTotals(this.#totals, transaction);
    const list = this.#byReference.get(reference);
    if (list === undefined) this.#byReference.set(reference, [transaction]);
    else list.push(transaction);
  }

  /** The postings under `reference`, oldest first (copies). */
  of(reference: string): FluxPayTransaction[] {
    return (this.#byReference.get(reference) ?? []).map(copyTransaction);
  }

  /** Forgets the postings of an evicted usage (credits: the totals keep them). */
  forget(reference: string): void {
    this.#byReference.delete(reference);
  }

  /** Forgets the postings of an evicted order, keeping the net of its payments per currency. */
  forgetOrder(orderId: string): void {
    for (const tx of this.#byReference.get(orderId) ?? []) {
      if (tx.kind !== 'PAYMENT_APPROVED' && tx.kind !== 'PAYMENT_CANCELLED') continue;
      const unit = tx.entries[0]?.unit as string;
      const sign = tx.kind === 'PAYMENT_APPROVED' ? 1 : -1;
      this.#evictedNet.set(unit, (this.#evictedNet.get(unit) ?? 0) + sign * (tx.entries[0]?.amount ?? 0));
    }
    this.#byReference.delete(orderId);
  }

  /** The running totals per account and unit, sorted (copies). */
  accounts(): FluxPayAccountTotal[] {
    return sortTotals([...this.#totals.values()].map((t) => ({ ...t })));
  }

  /** What evicted orders had posted, by currency: collected minus refunded. */
  evictedNet(): Record<string, number> {
    return Object.fromEntries(this.#evictedNet);
  }
}

function copyTransaction(tx: FluxPayTransaction): FluxPayTransaction {
  return { ...tx, entries: tx.entries.map((e) => ({ ...e })) };
}
