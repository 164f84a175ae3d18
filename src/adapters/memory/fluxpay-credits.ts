import { FifoQueue } from '../../core/fifo-queue.ts';
import { CREDIT_UNIT, type PostingKind } from '../../core/fluxpay/ledger.ts';
import type { CreditTransaction, CreditTransactionType, CreditUsage, Stamp } from '../../core/fluxpay/model.ts';
import type { CreditBalance, CreditsUsed, UseInput } from '../../core/fluxpay/ports.ts';
import type { Page, PageQuery } from '../../core/ports.ts';
import { EvictionQueue } from './eviction-queue.ts';
import type { MemoryFluxPayLedger } from './fluxpay-ledger.ts';
import { leastIds, pageOf } from './id-list.ts';
import { KeyedIds } from './keyed-ids.ts';

interface CreditTotals {
  charged: number;
  used: number;
  refunded: number;
}

/** The key of a usage: one per user and usageId (a saga's usage too). */
export const usageKey = (userId: string, usageId: string): string => `${userId}\n${usageId}`;

/**
 * Users' FluxPay credits in one process's memory: each user's balance and running totals (never
 * evicted: they are users' money), the credit transactions that moved them (evicted in write
 * order, by TTL or the oldest at the bound, with each user's line of net use: see `used`),
 * and the usages (one per user and usageId: a deduction and its refund; evicted by
 * TTL, or the oldest at the bound, with their ledger postings; a saga's usage only once the saga
 * has ended, so that its compensation finds it to refund). Every movement also posts its
 * ledger transaction, under the same id, in the caller's synchronous step (MemoryFluxPayStore,
 * which writes the outbox events), so a balance never moves without its posting.
 */
export class MemoryCreditBook {
  readonly #ledger: MemoryFluxPayLedger;
  /** The bound of usages held, and of credit transactions held. */
  readonly #max: number;
  readonly #balances = new Map<string, number>();
  readonly #totals = new Map<string, CreditTotals>();
  readonly #transactions = new Map<string, CreditTransaction>();
  /** Each user's credit transactions held; a user leaves with the last one (the balance and totals stay). */
  readonly #byUser = new KeyedIds();
  /** Credit transaction ids in write order, the order they are evicted in (by TTL or at the bound). */
  readonly #order = new FifoQueue<string>();
  readonly #isLive = (id: string): boolean => this.#transactions.has(id);
  /** Per user with transactions held: their times and net use, for `used`. */
  readonly #lines = new Map<string, NetUseLine>();
  readonly #usages = new Map<string, CreditUsage>();
  readonly #usageQueue = new EvictionQueue(
    (key: string) => this.#usages.get(key),
    (usage: CreditUsage) => usage.createdAt,
    (usage: CreditUsage) => {
      this.#usages.delete(usageKey(usage.userId, usage.usageId));
      this.#ledger.forget(usage.creditUsageId);
    },
  );

  /** `max`: the bound of usages held, and of credit transactions held. */
  constructor(ledger: MemoryFluxPayLedger, max: number) {
    this.#ledger = ledger;
    this.#max = max;
  }

  balance(userId: string): number {
    return this.#balances.get(userId) ?? 0;
  }

  /** Whether `userId` has a balance (was ever charged credits): such a user's movements never need room. */
  hasBalance(userId: string): boolean {
    return this.#balances.has(userId);
  }

  /** Users with a balance. */
  get users(): number {
    return this.#balances.size;
  }

  /**
   * A credit movement: the balance, the running totals, the credit transaction and its ledger
   * transaction (same id, under `reference`, else the order, else the user). The caller has
   * checked that a USE is covered. Answers the stored transaction (the caller copies it out).
   */
  move(
    type: CreditTransactionType,
    userId: string,
    amount: number,
    stamp: Stamp,
    about: { orderId: string | null; usageId: string | null; serviceId: string | null },
    reference?: string,
  ): CreditTransaction {
    const before = this.balance(userId);
    const after = type === 'USE' ? before - amount : before + amount;
    this.#balances.set(userId, after);
    let totals = this.#totals.get(userId);
    if (totals === undefined) this.#totals.set(userId, (totals = { charged: 0, used: 0, refunded: 0 }));
    const usedBefore = totals.used - totals.refunded;
    if (type === 'CHARGE') totals.charged += amount;
    else if (type === 'USE') totals.used += amount;
    else totals.refunded += amount;
    const kind: PostingKind = type === 'CHARGE' ? 'CREDIT_CHARGED' : type === 'USE' ? 'CREDIT_USED' : 'CREDIT_REFUNDED';
    this.#ledger.post(kind, stamp.transactionId, reference ?? about.orderId ?? userId, amount, CREDIT_UNIT, stamp.now);
    const transaction: CreditTransaction = { transactionId: stamp.transactionId, userId, type, amount, balanceAfter: after, ...about, createdAt: stamp.now };
    if (this.#transactions.size >= this.#max) this.#evictOldestTransaction();
    this.#transactions.set(transaction.transactionId, transaction);
    this.#byUser.insert(userId, transaction.transactionId);
    this.#order.push(transaction.transactionId);
    let line = this.#lines.get(userId);
    if (line === undefined) this.#lines.set(userId, (line = new NetUseLine()));
    line.push(stamp.now, usedBefore);
    return transaction;
  }

  /**
   * The user's credits deducted minus refunded: `total` (running totals) and `since`, by the credit
   * transactions held that were created at or after `since`: the total less the net use before the
   * first of them, found by binary search (so an entitlements check costs the same after a million uses).
   */
  used(userId: string, since: number): CreditsUsed {
    const totals = this.#totals.get(userId);
    const total = totals === undefined ? 0 : totals.used - totals.refunded;
    const before = this.#lines.get(userId)?.usedBeforeFirstSince(since);
    return { total, since: before === undefined ? 0 : total - before };
  }

  /** The stored usage of `usageId` by `userId` (the store's record: the caller copies it out). */
  usage(userId: string, usageId: string): CreditUsage | undefined {
    return this.#usages.get(usageKey(userId, usageId));
  }

  /** Whether one more usage fits, evicting the oldest that may go at the bound. */
  usageRoom(): boolean {
    return this.#usages.size < this.#max || this.#usageQueue.evictOne();
  }

  /**
   * A new usage (DEDUCTED) and its USE movement; the caller has checked the balance and made room.
   * A usage of no saga may be evicted from now on; a saga's once the saga ends (`sagaEnded`).
   */
  deduct(input: UseInput, sagaId: string | null, stamp: Stamp): { usage: CreditUsage; transaction: CreditTransaction } {
    const usage: CreditUsage = {
      creditUsageId: input.creditUsageId,
      usageId: input.usageId,
      userId: input.userId,
      serviceId: input.serviceId,
      amount: input.amount,
      status: 'DEDUCTED',
      sagaId,
      createdAt: stamp.now,
      refundedAt: null,
    };
    const key = usageKey(input.userId, input.usageId);
    this.#usages.set(key, usage);
    if (sagaId === null) this.#usageQueue.push(key);
    const transaction = this.move('USE', input.userId, input.amount, stamp, { orderId: null, usageId: input.usageId, serviceId: input.serviceId }, usage.creditUsageId);
    return { usage, transaction };
  }

  /** The saga `sagaId` of `userId`'s `usageId` has ended: its usage, if it made one, may be evicted from now on. */
  sagaEnded(userId: string, usageId: string, sagaId: string): void {
    const key = usageKey(userId, usageId);
    if (this.#usages.get(key)?.sagaId === sagaId) this.#usageQueue.push(key);
  }

  /** A usage → REFUNDED, with its REFUND movement. */
  refund(usage: CreditUsage, stamp: Stamp): CreditTransaction {
    usage.status = 'REFUNDED';
    usage.refundedAt = stamp.now;
    return this.move('REFUND', usage.userId, usage.amount, stamp, { orderId: null, usageId: usage.usageId, serviceId: usage.serviceId }, usage.creditUsageId);
  }

  /** A user's credit transactions, newest first. */
  transactions(userId: string, page: PageQuery): Page<CreditTransaction> {
    const list = this.#byUser.get(userId);
    if (list === undefined) return { data: [], nextCursor: null };
    return pageOf(
      list,
      page,
      (id) => {
        const tx = this.#transactions.get(id);
        return tx === undefined ? undefined : { id, tx };
      },
      ({ tx }) => ({ ...tx }),
    );
  }

  /** The first `limit` users in id order (code units, as Redis sorts ULIDs) with their totals, and how many users there are. */
  balances(limit: number): { total: number; users: CreditBalance[] } {
    const users = leastIds(this.#balances.keys(), limit);
    return {
      total: this.#balances.size,
      users: users.map((userId) => ({ userId, balance: this.balance(userId), charged: 0, used: 0, refunded: 0, ...this.#totals.get(userId) })),
    };
  }

  /** Every usage, balance and user's running totals (copies, for FluxPaySnapshot). */
  snapshot(): { usages: CreditUsage[]; balances: Array<{ userId: string; balance: number }>; creditTotals: Array<{ userId: string } & CreditTotals> } {
    return {
      usages: [...this.#usages.values()].map((u) => ({ ...u })),
      balances: [...this.#balances].map(([userId, balance]) => ({ userId, balance })),
      creditTotals: [...this.#totals].map(([userId, t]) => ({ userId, ...t })),
    };
  }

  /** Evicts usages and credit transactions created at or before `cutoff`; returns how many. */
  sweep(cutoff: number): number {
    let evicted = this.#usageQueue.sweep(cutoff);
    for (;;) {
      const id = this.#order.peek();
      const tx = id === undefined ? undefined : this.#transactions.get(id);
      if (tx === undefined || tx.createdAt > cutoff) break;
      this.#evictOldestTransaction();
      evicted++;
    }
    return evicted;
  }

  /** Evicts the oldest credit transaction held (the first in write order), with its place in its user's line. */
  #evictOldestTransaction(): void {
    const id = this.#order.shift();
    const tx = id === undefined ? undefined : this.#transactions.get(id);
    if (id === undefined || tx === undefined) return;
    this.#transactions.delete(id);
    this.#byUser.markDead(tx.userId, this.#isLive);
    const line = this.#lines.get(tx.userId);
    if (line?.shift() === 0) this.#lines.delete(tx.userId);
  }
}

/**
 * One user's credit transactions held, oldest first (write order, the order they are evicted in),
 * each as its time and the user's net use (deducted minus refunded) before it. The net use of the
 * transactions since a time is then the running total less the entry of the first one since,
 * which a binary search finds; entries leave from the front as their transactions are evicted.
 */
class NetUseLine {
  #at: number[] = [];
  #usedBefore: number[] = [];
  #head = 0;

  /** Appends a transaction at `at`, kept in order when the clock has stepped back (it was written after the last). */
  push(at: number, usedBefore: number): void {
    this.#at.push(Math.max(at, this.#at[this.#at.length - 1] ?? at));
    this.#usedBefore.push(usedBefore);
  }

  /** Drops the oldest entry; answers how many are left. */
  shift(): number {
    this.#head++;
    const left = this.#at.length - this.#head;
    if (this.#head >= 1024 && this.#head * 2 >= this.#at.length) {
      this.#at = this.#at.slice(this.#head);
      this.#usedBefore = this.#usedBefore.slice(this.#head);
      this.#head = 0;
    }
    return left;
  }

  /** The net use before the first entry at or after `since`; undefined when there is none. */
  usedBeforeFirstSince(since: number): number | undefined {
    let lo = this.#head;
    let hi = this.#at.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#at[mid] as number) < since) lo = mid + 1;
      else hi = mid;
    }
    return this.#usedBefore[lo];
  }
}
