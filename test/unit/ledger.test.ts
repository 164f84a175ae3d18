import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/core/errors.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { Ledger } from '../../src/core/ledger.ts';
import { createRandom } from '../../src/core/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { ULID } from './support.ts';

function makeLedger(): { clock: ManualClock; ledger: Ledger } {
  const clock = new ManualClock();
  return { clock, ledger: new Ledger({ clock, ids: createIdFactory(clock) }) };
}

describe('post', () => {
  it('writes one transaction of a CUSTOMER_PAYABLE debit and a MERCHANT_BALANCE credit', () => {
    const { clock, ledger } = makeLedger();
    const tx = ledger.post({ bookingId: 'bk_1', amount: 60000, currency: 'KRW' });
    expect(tx.transactionId).toMatch(new RegExp(`^tx_${ULID}$`));
    expect(tx.entries).toEqual([
      {
        entryId: expect.stringMatching(new RegExp(`^led_${ULID}$`)),
        transactionId: tx.transactionId,
        bookingId: 'bk_1',
        account: 'CUSTOMER_PAYABLE',
        direction: 'DEBIT',
        amount: 60000,
        currency: 'KRW',
        createdAt: clock.now(),
      },
      {
        entryId: expect.stringMatching(new RegExp(`^led_${ULID}$`)),
        transactionId: tx.transactionId,
        bookingId: 'bk_1',
        account: 'MERCHANT_BALANCE',
        direction: 'CREDIT',
        amount: 60000,
        currency: 'KRW',
        createdAt: clock.now(),
      },
    ]);
    expect(tx.entries[0].entryId).not.toBe(tx.entries[1].entryId);
    expect(ledger.entries()).toEqual(tx.entries);
    expect(ledger.size).toBe(2);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses an amount of %s and writes nothing', (amount) => {
    const { ledger } = makeLedger();
    expect(() => ledger.post({ bookingId: 'bk_1', amount, currency: 'KRW' })).toThrow(DomainError);
    expect(ledger.entries()).toEqual([]);
    expect(ledger.balances()).toEqual([]);
  });
});

describe('queries', () => {
  it('filters entries by booking, in the order written, and returns copies', () => {
    const { clock, ledger } = makeLedger();
    const a = ledger.post({ bookingId: 'bk_a', amount: 30000, currency: 'KRW' });
    clock.advance(10);
    ledger.post({ bookingId: 'bk_b', amount: 90000, currency: 'KRW' });
    const a2 = ledger.post({ bookingId: 'bk_a', amount: 30000, currency: 'KRW' });
    expect(ledger.entries('bk_a').map((e) => e.transactionId)).toEqual([a.transactionId, a.transactionId, a2.transactionId, a2.transactionId]);
    expect(ledger.entries('bk_none')).toEqual([]);
    ledger.entries()[0]!.amount = 1;
    expect(ledger.entries()[0]!.amount).toBe(30000);
    a.entries[0].amount = 1;
    expect(ledger.entries()[0]!.amount).toBe(30000);
  });

  it('keeps balances per account and currency, debit-positive, summing to zero', () => {
    const { ledger } = makeLedger();
    ledger.post({ bookingId: 'bk_1', amount: 60000, currency: 'KRW' });
    ledger.post({ bookingId: 'bk_2', amount: 30000, currency: 'KRW' });
    ledger.post({ bookingId: 'bk_3', amount: 1250, currency: 'USD' });
    expect(ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 90000, credits: 0, balance: 90000 },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 90000, balance: -90000 },
      { account: 'CUSTOMER_PAYABLE', currency: 'USD', debits: 1250, credits: 0, balance: 1250 },
      { account: 'MERCHANT_BALANCE', currency: 'USD', debits: 0, credits: 1250, balance: -1250 },
    ]);
    expect(ledger.imbalance()).toBe(0);
  });

  it('debits equal credits after every one of thousands of postings', () => {
    const { ledger } = makeLedger();
    const random = createRandom(11);
    let total = 0;
    for (let i = 0; i < 5000; i++) {
      const amount = 30000 * (1 + Math.floor(random.next() * 10));
      ledger.post({ bookingId: `bk_${i % 97}`, amount, currency: 'KRW' });
      total += amount;
      expect(ledger.imbalance()).toBe(0);
    }
    const [payable, merchant] = ledger.balances();
    expect(payable).toMatchObject({ debits: total, credits: 0 });
    expect(merchant).toMatchObject({ debits: 0, credits: total });
    const entries = ledger.entries();
    expect(entries).toHaveLength(10000);
    expect(new Set(entries.map((e) => e.entryId)).size).toBe(10000);
    expect(new Set(entries.map((e) => e.transactionId)).size).toBe(5000);
  });
});

describe('removeBooking', () => {
  it('removes a booking’s whole transactions and takes them out of the totals', () => {
    const { ledger } = makeLedger();
    const a = ledger.post({ bookingId: 'bk_a', amount: 60000, currency: 'KRW' });
    const b = ledger.post({ bookingId: 'bk_b', amount: 30000, currency: 'KRW' });
    ledger.post({ bookingId: 'bk_c', amount: 1250, currency: 'USD' });
    expect(ledger.removeBooking('bk_a')).toBe(2);
    expect(ledger.entries()).toEqual([...b.entries, ...ledger.entries('bk_c')]);
    expect(ledger.entries('bk_a')).toEqual([]);
    expect(ledger.size).toBe(4);
    expect(ledger.imbalance()).toBe(0);
    expect(ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 30000, credits: 0, balance: 30000 },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 30000, balance: -30000 },
      { account: 'CUSTOMER_PAYABLE', currency: 'USD', debits: 1250, credits: 0, balance: 1250 },
      { account: 'MERCHANT_BALANCE', currency: 'USD', debits: 0, credits: 1250, balance: -1250 },
    ]);
    // A currency's rows leave with its last entry.
    expect(ledger.removeBooking('bk_c')).toBe(2);
    expect(ledger.balances().map((r) => r.currency)).toEqual(['KRW', 'KRW']);
    expect(ledger.removeBooking('bk_a')).toBe(0);
    expect(ledger.removeBooking('bk_none')).toBe(0);
    expect(a.entries).toHaveLength(2);
  });

  it('keeps debits equal to credits through thousands of posts and removals', () => {
    const { ledger } = makeLedger();
    const random = createRandom(5);
    const live = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      if (random.next() < 0.6 || live.size === 0) {
        const amount = 30000 * (1 + Math.floor(random.next() * 10));
        ledger.post({ bookingId: `bk_${i}`, amount, currency: 'KRW' });
        live.set(`bk_${i}`, amount);
      } else {
        const victim = [...live.keys()][Math.floor(random.next() * live.size)]!;
        expect(ledger.removeBooking(victim)).toBe(2);
        live.delete(victim);
      }
      expect(ledger.imbalance()).toBe(0);
    }
    const total = [...live.values()].reduce((a, b) => a + b, 0);
    expect(ledger.size).toBe(2 * live.size);
    expect(ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: total, credits: 0, balance: total },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: total, balance: -total },
    ]);
  });
});
