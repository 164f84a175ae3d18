import type { Clock } from './clock.ts';
import { validationFailed } from './errors.ts';
import type { IdFactory } from './ids.ts';

/**
 * A double-entry ledger. Every confirmed payment is one transaction of two entries sharing a
 * `transactionId`: a `CUSTOMER_PAYABLE` debit and a `MERCHANT_BALANCE` credit of the same amount,
 * so total debits equal total credits at every moment. Entries are append-only while their booking
 * is kept; when the booking service evicts a finished booking (its store is bounded), the booking's
 * transaction leaves with it, both entries at once, so the invariant holds for what remains.
 * @see issue 4 "Ledger", ../../shared/seeds/003_2d28ecb358825d26.txt (ledgerEntries)
 */

export const LEDGER_ACCOUNTS = ['CUSTOMER_PAYABLE', 'MERCHANT_BALANCE'] as const;
export type LedgerAccount = (typeof LEDGER_ACCOUNTS)[number];
export type EntryDirection = 'DEBIT' | 'CREDIT';

export interface LedgerEntry {
  /** `led_<ULID>` */
  entryId: string;
  /** `tx_<ULID>`, shared by the two entries of one transaction. */
  transactionId: string;
  bookingId: string;
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
  entries: [LedgerEntry, LedgerEntry];
}

export interface PostInput {
  bookingId: string;
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

export interface LedgerDeps {
  clock: Clock;
  ids: IdFactory;
}

/** A running total and how many entries it sums, so a row leaves `balances()` with its last entry. */
interface Total extends LedgerBalance {
  entries: number;
}

export class Ledger {
  readonly #deps: LedgerDeps;
  /** By entry id, in the order written (a Map, so removing a booking's entries is O(1) each). */
  readonly #entries = new Map<string, LedgerEntry>();
  readonly #byBooking = new Map<string, LedgerEntry[]>();
  /** Running totals keyed by `${account} ${currency}`, so `balances()` never scans the entries. */
  readonly #totals = new Map<string, Total>();
  #debits = 0;
  #credits = 0;

  constructor(deps: LedgerDeps) {
    this.#deps = deps;
  }

  /** Writes one balanced transaction for a payment; VALIDATION_FAILED unless the amount is a positive integer. */
  post(input: PostInput): LedgerTransaction {
    if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
      throw validationFailed([{ field: '/amount', rule: 'minimum', message: 'must be a positive whole number of minor units' }]);
    }
    const { clock, ids } = this.#deps;
    const transactionId = ids('tx');
    const createdAt = clock.now();
    const entry = (account: LedgerAccount, direction: EntryDirection): LedgerEntry => ({
      entryId: ids('led'),
      transactionId,
      bookingId: input.bookingId,
      account,
      direction,
      amount: input.amount,
      currency: input.currency,
      createdAt,
    });
    const entries: [LedgerEntry, LedgerEntry] = [entry('CUSTOMER_PAYABLE', 'DEBIT'), entry('MERCHANT_BALANCE', 'CREDIT')];
    for (const e of entries) this.#append(e);
    return { transactionId, entries: [{ ...entries[0] }, { ...entries[1] }] };
  }

  /** Entries in the order they were written, all of them or one booking's. */
  entries(bookingId?: string): LedgerEntry[] {
    const list = bookingId === undefined ? this.#entries.values() : (this.#byBooking.get(bookingId) ?? []);
    return Array.from(list, (e) => ({ ...e }));
  }

  /**
   * Removes every entry of a booking (whole transactions: both entries of each) and takes them
   * out of the totals; returns how many entries it removed. For the eviction of finished bookings.
   */
  removeBooking(bookingId: string): number {
    const list = this.#byBooking.get(bookingId);
    if (list === undefined) return 0;
    this.#byBooking.delete(bookingId);
    for (const entry of list) {
      this.#entries.delete(entry.entryId);
      const key = totalKey(entry);
      const total = this.#totals.get(key) as Total;
      this.#count(total, entry, -1);
      total.entries -= 1;
      if (total.entries === 0) this.#totals.delete(key);
    }
    return list.length;
  }

  /** One row per account and currency that has entries, accounts in `LEDGER_ACCOUNTS` order. */
  balances(): LedgerBalance[] {
    return [...this.#totals.values()]
      .map(({ account, currency, debits, credits, balance }) => ({ account, currency, debits, credits, balance }))
      .sort((a, b) => a.currency.localeCompare(b.currency) || LEDGER_ACCOUNTS.indexOf(a.account) - LEDGER_ACCOUNTS.indexOf(b.account));
  }

  /** Total debits minus total credits over every entry: always 0. */
  imbalance(): number {
    return this.#debits - this.#credits;
  }

  get size(): number {
    return this.#entries.size;
  }

  #append(entry: LedgerEntry): void {
    this.#entries.set(entry.entryId, entry);
    const list = this.#byBooking.get(entry.bookingId);
    if (list === undefined) this.#byBooking.set(entry.bookingId, [entry]);
    else list.push(entry);
    const key = totalKey(entry);
    let total = this.#totals.get(key);
    if (total === undefined) {
      total = { account: entry.account, currency: entry.currency, debits: 0, credits: 0, balance: 0, entries: 0 };
      this.#totals.set(key, total);
    }
    total.entries += 1;
    this.#count(total, entry, 1);
  }

  /** Adds (sign 1) or takes away (sign −1) an entry's amount on its side. */
  #count(total: Total, entry: LedgerEntry, sign: 1 | -1): void {
    const amount = sign * entry.amount;
    if (entry.direction === 'DEBIT') {
      total.debits += amount;
      total.balance += amount;
      this.#debits += amount;
    } else {
      total.credits += amount;
      total.balance -= amount;
      this.#credits += amount;
    }
  }
}

function totalKey(entry: LedgerEntry): string {
  return `${entry.account} ${entry.currency}`;
}
