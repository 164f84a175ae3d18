import { describe, expect, it } from 'vitest';
import { MemoryLedgerStore } from '../../src/adapters/memory/ledger.ts';
import { DomainError } from '../../src/core/errors.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { isBalanced, paymentTransaction, type PaymentPosting } from '../../src/core/ledger.ts';
import { createRandom } from '../../src/core/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { ULID } from './support.ts';

/**
 * The ledger's rules (core/ledger.ts): what a payment's transaction is, and that every store
 * write balances. What every ledger store must do is the ledger contract suite's (test/adapters);
 * the long random runs here check the running totals of the in-memory store.
 */

function makeLedger() {
  const clock = new ManualClock();
  const ids = createIdFactory(clock);
  const ledger = new MemoryLedgerStore();
  const post = (posting: PaymentPosting) => ledger.post(paymentTransaction(posting, ids, clock.now()));
  return { clock, ids, ledger, post };
}

describe('paymentTransaction', () => {
  it('is one CUSTOMER_PAYABLE debit and one MERCHANT_BALANCE credit of the amount, sharing a transaction id', () => {
    const clock = new ManualClock();
    const tx = paymentTransaction({ reference: 'bk_1', amount: 60000, currency: 'KRW' }, createIdFactory(clock), clock.now());
    expect(tx.transactionId).toMatch(new RegExp(`^tx_${ULID}$`));
    const entry = (account: string, direction: string) => ({
      entryId: expect.stringMatching(new RegExp(`^led_${ULID}$`)),
      transactionId: tx.transactionId,
      reference: 'bk_1',
      account,
      direction,
      amount: 60000,
      currency: 'KRW',
      createdAt: clock.now(),
    });
    expect(tx).toEqual({ transactionId: tx.transactionId, reference: 'bk_1', entries: [entry('CUSTOMER_PAYABLE', 'DEBIT'), entry('MERCHANT_BALANCE', 'CREDIT')] });
    expect(tx.entries[0]?.entryId).not.toBe(tx.entries[1]?.entryId);
    expect(isBalanced(tx.entries)).toBe(true);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses an amount of %s', (amount) => {
    const clock = new ManualClock();
    expect(() => paymentTransaction({ reference: 'bk_1', amount, currency: 'KRW' }, createIdFactory(clock), clock.now())).toThrow(DomainError);
  });
});

describe('isBalanced', () => {
  it('needs two entries or more whose debits equal their credits in every currency', () => {
    const clock = new ManualClock();
    const [debit, credit] = paymentTransaction({ reference: 'r', amount: 100, currency: 'KRW' }, createIdFactory(clock), clock.now()).entries;
    expect(isBalanced([debit!, credit!])).toBe(true);
    expect(isBalanced([debit!])).toBe(false);
    expect(isBalanced([debit!, { ...credit!, amount: 99 }])).toBe(false);
    expect(isBalanced([debit!, { ...credit!, currency: 'USD' }])).toBe(false);
  });
});

describe('running totals of the in-memory ledger', () => {
  it('debits equal credits after every one of thousands of postings', async () => {
    const { ledger, post } = makeLedger();
    const random = createRandom(11);
    let total = 0;
    for (let i = 0; i < 5000; i++) {
      const amount = 30000 * (1 + Math.floor(random.next() * 10));
      await post({ reference: `bk_${i}`, amount, currency: 'KRW' });
      total += amount;
      expect(await ledger.imbalance()).toBe(0);
    }
    const [payable, merchant] = await ledger.balances();
    expect(payable).toMatchObject({ debits: total, credits: 0 });
    expect(merchant).toMatchObject({ debits: 0, credits: total });
    const entries = await ledger.entries();
    expect(entries).toHaveLength(10000);
    expect(new Set(entries.map((e) => e.entryId)).size).toBe(10000);
    expect(new Set(entries.map((e) => e.transactionId)).size).toBe(5000);
  });

  it('keeps debits equal to credits through thousands of posts and removals', async () => {
    const { ledger, post } = makeLedger();
    const random = createRandom(5);
    const live = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      if (random.next() < 0.6 || live.size === 0) {
        const amount = 30000 * (1 + Math.floor(random.next() * 10));
        await post({ reference: `bk_${i}`, amount, currency: 'KRW' });
        live.set(`bk_${i}`, amount);
      } else {
        const victim = [...live.keys()][Math.floor(random.next() * live.size)]!;
        expect(await ledger.removeReference(victim)).toBe(2);
        live.delete(victim);
      }
      expect(await ledger.imbalance()).toBe(0);
    }
    const total = [...live.values()].reduce((a, b) => a + b, 0);
    expect((await ledger.entries()).length).toBe(2 * live.size);
    expect(await ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: total, credits: 0, balance: total },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: total, balance: -total },
    ]);
  });
});
