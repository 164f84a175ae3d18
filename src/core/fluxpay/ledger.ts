/**
 * FluxPay's double-entry ledger: four accounts, two units. Money is booked in the order's
 * currency, credits in the unit `CREDIT`; each transaction balances in each unit, so total debits
 * equal total credits at every moment.
 *
 * | movement                    | debit                  | credit                 | unit      |
 * |-----------------------------|------------------------|------------------------|-----------|
 * | payment approved            | CUSTOMER_PAYMENTS      | MERCHANT_BALANCE       | currency  |
 * | payment cancelled (refund)  | MERCHANT_BALANCE       | CUSTOMER_PAYMENTS      | currency  |
 * | credits charged             | MERCHANT_BALANCE       | CREDIT_LIABILITY       | CREDIT    |
 * | credits used                | CREDIT_LIABILITY       | REVENUE                | CREDIT    |
 * | credits refunded            | REVENUE                | CREDIT_LIABILITY       | CREDIT    |
 *
 * So CUSTOMER_PAYMENTS holds what customers paid and were not refunded; MERCHANT_BALANCE owes it
 * (and, in CREDIT, has issued the credits sold); CREDIT_LIABILITY is the credits users hold (it
 * equals the sum of their balances); REVENUE is the credits used and not refunded.
 * A transaction is written by the same store operation as the change it records.
 * @see issue 11 "Credits" (ledger accounts)
 */

export const FLUXPAY_ACCOUNTS = ['CUSTOMER_PAYMENTS', 'MERCHANT_BALANCE', 'CREDIT_LIABILITY', 'REVENUE'] as const;
export type FluxPayAccount = (typeof FLUXPAY_ACCOUNTS)[number];

/** The unit of credit postings. */
export const CREDIT_UNIT = 'CREDIT';

export const POSTING_KINDS = ['PAYMENT_APPROVED', 'PAYMENT_CANCELLED', 'CREDIT_CHARGED', 'CREDIT_USED', 'CREDIT_REFUNDED'] as const;
export type PostingKind = (typeof POSTING_KINDS)[number];

const SIDES: Readonly<Record<PostingKind, readonly [debit: FluxPayAccount, credit: FluxPayAccount]>> = {
  PAYMENT_APPROVED: ['CUSTOMER_PAYMENTS', 'MERCHANT_BALANCE'],
  PAYMENT_CANCELLED: ['MERCHANT_BALANCE', 'CUSTOMER_PAYMENTS'],
  CREDIT_CHARGED: ['MERCHANT_BALANCE', 'CREDIT_LIABILITY'],
  CREDIT_USED: ['CREDIT_LIABILITY', 'REVENUE'],
  CREDIT_REFUNDED: ['REVENUE', 'CREDIT_LIABILITY'],
};

export interface FluxPayEntry {
  account: FluxPayAccount;
  direction: 'DEBIT' | 'CREDIT';
  amount: number;
  unit: string;
}

export interface FluxPayTransaction {
  /** `tx_<ULID>` */
  transactionId: string;
  kind: PostingKind;
  /** What it is for: `ord_…` for money, `cu_…` or `ord_…` for credits. */
  reference: string;
  entries: readonly FluxPayEntry[];
  createdAt: number;
}

/** The two entries of a movement. Amounts are positive whole numbers (a store refuses anything else). */
export function posting(kind: PostingKind, transactionId: string, reference: string, amount: number, unit: string, now: number): FluxPayTransaction {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error(`a ${kind} posting needs a positive whole amount (got ${amount})`);
  const [debit, credit] = SIDES[kind];
  return {
    transactionId,
    kind,
    reference,
    entries: [
      { account: debit, direction: 'DEBIT', amount, unit },
      { account: credit, direction: 'CREDIT', amount, unit },
    ],
    createdAt: now,
  };
}

/** The totals of one account in one unit; `balance` is debit-positive (debits − credits). */
export interface FluxPayAccountTotal {
  account: FluxPayAccount;
  unit: string;
  debits: number;
  credits: number;
  balance: number;
}

/** Adds a transaction's entries to running totals, keyed `account unit`. */
export function addToTotals(totals: Map<string, FluxPayAccountTotal>, transaction: FluxPayTransaction): void {
  for (const entry of transaction.entries) {
    const key = `${entry.account} ${entry.unit}`;
    let total = totals.get(key);
    if (total === undefined) {
      total = { account: entry.account, unit: entry.unit, debits: 0, credits: 0, balance: 0 };
      totals.set(key, total);
    }
    if (entry.direction === 'DEBIT') {
      total.debits += entry.amount;
      total.balance += entry.amount;
    } else {
      total.credits += entry.amount;
      total.balance -= entry.amount;
    }
  }
}

/** Totals sorted by unit, then in FLUXPAY_ACCOUNTS order. */
export function sortTotals(rows: FluxPayAccountTotal[]): FluxPayAccountTotal[] {
  return rows.sort((a, b) => a.unit.localeCompare(b.unit) || FLUXPAY_ACCOUNTS.indexOf(a.account) - FLUXPAY_ACCOUNTS.indexOf(b.account));
}
