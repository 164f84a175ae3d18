import { validationFailed } from './errors.ts';
import type { IdFactory } from './ids.ts';

/**
 * A double-entry ledger. Every confirmed payment is one transaction of two entries sharing a
 * `transactionId`: a `CUSTOMER_PAYABLE` debit and a `MERCHANT_BALANCE` credit of the same amount,
 * so total debits equal total credits at every moment. A transaction is written as one store
 * operation (both entries or neither) and is idempotent by its `reference` (the booking it pays
 * for): posting the same reference twice returns the first transaction. When a bounded store
 * evicts what a reference stands for, the reference's transactions leave with it, both entries
 * at once, so the invariant holds for what remains.
 * @see issue 4 "Ledger", issue 7, ../../shared/seeds/003_2d28ecb358825d26.txt (ledgerEntries)
 */

export const LEDGER_ACCOUNTS = ['CUSTOMER_PAYABLE', 'MERCHANT_BALANCE'] as const;
export type LedgerAccount = (typeof LEDGER_ACCOUNTS)[number];
export type EntryDirection = 'DEBIT' | 'CREDIT';

export interface LedgerEntry {
  /** `led_<ULID>` */
  entryId: string;
  /** `tx_<ULID>`, shared by the entries of one transaction. */
  transactionId: string;
  /** What the transaction is for: a booking id. */
  reference: string;
  account: LedgerAccount;
  direction: EntryDirection;
  /** Minor units, always positive; the direction gives the side. */
  amount: number;
  currency: string;
  /** Epoch ms. */
  createdAt: number;
}

export interface LedgerTransaction {
  transactionId: string;
  reference: string;
  entries: readonly LedgerEntry[];
}

export interface PaymentPosting {
  reference: string;
  amount: number;
  currency: string;
}

/**
 * The totals of one account in one currency. `balance` is signed debit-positive
 * (`debits − credits`), so the balances of all accounts in a currency always sum to 0:
 * `CUSTOMER_PAYABLE` is positive and `MERCHANT_BALANCE` negative by the amount collected.
 */
export interface LedgerBalance {
  account: LedgerAccount;
  currency: string;
  debits: number;
  credits: number;
  balance: number;
}

/**
 * The transaction that records a collected payment: debit what the customer owes, credit the
 * merchant. VALIDATION_FAILED unless the amount is a positive whole number of minor units.
 */
export function paymentTransaction(input: PaymentPosting, ids: IdFactory, now: number): LedgerTransaction {
  if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
    throw validationFailed([{ in: 'body', field: '/amount', rule: 'minimum', message: 'must be a positive whole number of minor units' }]);
  }
  const transactionId = ids('tx');
  const entry = (account: LedgerAccount, direction: EntryDirection): LedgerEntry => ({
    entryId: ids('led'),
    transactionId,
    reference: input.reference,
    account,
    direction,
    amount: input.amount,
    currency: input.currency,
    createdAt: now,
  });
  return { transactionId, reference: input.reference, entries: [entry('CUSTOMER_PAYABLE', 'DEBIT'), entry('MERCHANT_BALANCE', 'CREDIT')] };
}

/** True when the entries' debits equal their credits in every currency: the one rule a store checks before writing. */
export function isBalanced(entries: readonly LedgerEntry[]): boolean {
  const net = new Map<string, number>();
  for (const e of entries) net.set(e.currency, (net.get(e.currency) ?? 0) + (e.direction === 'DEBIT' ? e.amount : -e.amount));
  return entries.length >= 2 && [...net.values()].every((n) => n === 0);
}

/** Balance rows sorted by currency, then in `LEDGER_ACCOUNTS` order. */
export function sortBalances(rows: LedgerBalance[]): LedgerBalance[] {
  return rows.sort((a, b) => a.currency.localeCompare(b.currency) || LEDGER_ACCOUNTS.indexOf(a.account) - LEDGER_ACCOUNTS.indexOf(b.account));
}
