import { isBalanced, sortBalances, type LedgerBalance, type LedgerEntry, type LedgerTransaction } from '../../core/ledger.ts';
import type { LedgerStore } from '../../core/ports.ts';

/** A running total and how many entries it sums, so a row leaves `balances()` with its last entry. */
interface Total extends LedgerBalance {
  entries: number;
}

/**
 * The ledger in one process's memory: entries in the order written, an index by reference, and
 * running totals per account and currency (so balances never scan the entries). A transaction's
 * entries are written in one synchronous step; removing a reference removes whole transactions.
 */
export class MemoryLedgerStore implements LedgerStore {
  /** By entry id, in the order written (a Map, so removing a reference's entries is O(1) each). */
  readonly #entries = new Map<string, LedgerEntry>();
  readonly #byReference = new Map<string, LedgerTransaction>();
  readonly #totals = new Map<string, Total>();
  #debits = 0;
  #credits = 0;

  post(transaction: LedgerTransaction): Promise<LedgerTransaction> {
    const existing = this.#byReference.get(transaction.reference);
    if (existing !== undefined) return Promise.resolve(copyTransaction(existing));
    if (!isBalanced(transaction.entries) || transaction.entries.some((e) => e.reference !== transaction.reference)) {
      return Promise.reject(new Error(`ledger transaction ${transaction.transactionId} does not balance`));
    }
    const stored = copyTransaction(transaction);
    this.#byReference.set(stored.reference, stored);
    for (const entry of stored.entries) {
      this.#entries.set(entry.entryId, entry);
      this.#count(entry, 1);
    }
    return Promise.resolve(copyTransaction(stored));
  }

  entries(reference?: string): Promise<LedgerEntry[]> {
    if (reference === undefined) return Promise.resolve(Array.from(this.#entries.values(), (e) => ({ ...e })));
    return Promise.resolve((this.#byReference.get(reference)?.entries ?? []).map((e) => ({ ...e })));
  }

  balances(): Promise<LedgerBalance[]> {
    return Promise.resolve(sortBalances([...this.#totals.values()].map(({ account, currency, debits, credits, balance }) => ({ account, currency, debits, credits, balance }))));
  }

  imbalance(): Promise<number> {
    return Promise.resolve(this.#debits - this.#credits);
  }

  removeReference(reference: string): Promise<number> {
    const transaction = this.#byReference.get(reference);
    if (transaction === undefined) return Promise.resolve(0);
    this.#byReference.delete(reference);
    for (const entry of transaction.entries) {
      this.#entries.delete(entry.entryId);
      this.#count(entry, -1);
    }
    return Promise.resolve(transaction.entries.length);
  }


  /** Adds (sign 1) or takes away (sign −1) an entry's amount on its side. */
  #count(entry: LedgerEntry, sign: 1 | -1): void {
    const key = `${entry.account} ${entry.currency}`;
    let total = this.#totals.get(key);
    if (total === undefined) {
      total = { account: entry.account, currency: entry.currency, debits: 0, credits: 0, balance: 0, entries: 0 };
      this.#totals.set(key, total);
    }
    const amount = sign * entry.amount;
    total.entries += sign;
    if (entry.direction === 'DEBIT') {
      total.debits += amount;
      total.balance += amount;
      this.#debits += amount;
    } else {
      total.credits += amount;
      total.balance -= amount;
      this.#credits += amount;
    }
    if (total.entries === 0) this.#totals.delete(key);
  }
}

function copyTransaction(transaction: LedgerTransaction): LedgerTransaction {
  return { transactionId: transaction.transactionId, reference: transaction.reference, entries: transaction.entries.map((e) => ({ ...e })) };
}
