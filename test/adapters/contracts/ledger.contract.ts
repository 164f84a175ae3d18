import { describe, expect, it } from 'vitest';
import { paymentTransaction, type LedgerBalance, type LedgerEntry, type LedgerTransaction } from '../../../src/core/ledger.ts';
import type { LedgerStore } from '../../../src/core/ports.ts';
import { concurrently, ids, T0 } from './fixtures.ts';

export type LedgerStoreFactory = () => Promise<LedgerStore> | LedgerStore;

const payment = (reference: string, amount: number, currency = 'KRW', now = T0): LedgerTransaction => paymentTransaction({ reference, amount, currency }, ids, now);

const row = (account: LedgerBalance['account'], currency: string, debits: number, credits: number): LedgerBalance => ({ account, currency, debits, credits, balance: debits - credits });

/** Both rows of a currency after `amount` was collected in it. */
const collected = (currency: string, amount: number): LedgerBalance[] => [row('CUSTOMER_PAYABLE', currency, amount, 0), row('MERCHANT_BALANCE', currency, 0, amount)];

/** The LedgerStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function ledgerStoreContract(name: string, make: LedgerStoreFactory): void {
  describe(`LedgerStore contract: ${name}`, () => {
    it('posts a balanced transaction and lists its entries, all or by reference, in the order written', async () => {
      const store = await make();
      const first = payment('bk_1', 60_000);
      const second = payment('bk_2', 30_000);
      expect(await store.post(first)).toEqual(first);
      expect(await store.post(second)).toEqual(second);
      expect(await store.entries()).toEqual([...first.entries, ...second.entries]);
      expect(await store.entries('bk_2')).toEqual(second.entries);
      expect(await store.entries('bk_unknown')).toEqual([]);
      expect(await store.imbalance()).toBe(0);
    });

    it('is idempotent by reference: a second transaction for it returns the first and writes nothing', async () => {
      const store = await make();
      const first = payment('bk_1', 60_000);
      await store.post(first);
      expect(await store.post(payment('bk_1', 99_000))).toEqual(first);
      expect(await store.entries()).toEqual(first.entries);
      expect(await store.balances()).toEqual(collected('KRW', 60_000));
    });

    it('refuses an unbalanced transaction and writes none of it', async () => {
      const store = await make();
      const good = payment('bk_1', 100);
      const [debit, credit] = good.entries as [LedgerEntry, LedgerEntry];
      const uneven: LedgerTransaction = { ...good, entries: [debit, { ...credit, amount: 99 }] };
      const oneSided: LedgerTransaction = { ...good, entries: [debit] };
      const mixedCurrencies: LedgerTransaction = { ...good, entries: [debit, { ...credit, currency: 'USD' }] };
      for (const bad of [uneven, oneSided, mixedCurrencies]) await expect(store.post(bad)).rejects.toThrow();
      expect(await store.entries()).toEqual([]);
      expect(await store.balances()).toEqual([]);
      expect(await store.imbalance()).toBe(0);
      expect(await store.post(good)).toEqual(good);
    });

    it('balances has one row per account and currency, sorted by currency then account', async () => {
      const store = await make();
      await store.post(payment('bk_1', 1_000, 'USD'));
      await store.post(payment('bk_2', 60_000, 'KRW'));
      await store.post(payment('bk_3', 30_000, 'KRW'));
      expect(await store.balances()).toEqual([...collected('KRW', 90_000), ...collected('USD', 1_000)]);
      expect(await store.imbalance()).toBe(0);
    });

    it('removeReference removes a reference’s entries and the totals follow; a row goes with its last entry', async () => {
      const store = await make();
      const krw = payment('bk_1', 60_000);
      const usd = payment('bk_2', 1_000, 'USD');
      const krw2 = payment('bk_3', 30_000);
      for (const t of [krw, usd, krw2]) await store.post(t);
      expect(await store.removeReference('bk_2')).toBe(2);
      expect(await store.balances()).toEqual(collected('KRW', 90_000));
      expect(await store.removeReference('bk_1')).toBe(2);
      expect(await store.entries()).toEqual(krw2.entries);
      expect(await store.entries('bk_1')).toEqual([]);
      expect(await store.balances()).toEqual(collected('KRW', 30_000));
      expect(await store.removeReference('bk_1')).toBe(0);
      expect(await store.removeReference('bk_unknown')).toBe(0);
      expect(await store.imbalance()).toBe(0);
    });

    it('a removed reference may be posted again, as a new transaction written last', async () => {
      const store = await make();
      const first = payment('bk_1', 100);
      const other = payment('bk_2', 200);
      await store.post(first);
      await store.post(other);
      await store.removeReference('bk_1');
      const again = payment('bk_1', 300);
      expect(await store.post(again)).toEqual(again);
      expect(await store.entries()).toEqual([...other.entries, ...again.entries]);
    });

    it('transactions go in and come out as copies', async () => {
      const store = await make();
      const posted = payment('bk_1', 100);
      const expected = structuredClone(posted);
      const returned = await store.post(posted);
      (posted.entries[0] as LedgerEntry).amount = 1;
      (returned.entries[1] as LedgerEntry).amount = 2;
      ((await store.entries())[0] as LedgerEntry).currency = 'USD';
      ((await store.entries('bk_1'))[1] as LedgerEntry).account = 'CUSTOMER_PAYABLE';
      ((await store.balances())[0] as LedgerBalance).debits = 5;
      expect(await store.entries()).toEqual(expected.entries);
      expect(await store.post(payment('bk_1', 100))).toEqual(expected);
      expect(await store.balances()).toEqual(collected('KRW', 100));
    });

    describe('under concurrent calls', () => {
      it('50 posts for one reference write one balanced transaction, and every call gets it', async () => {
        const store = await make();
        const attempts = Array.from({ length: 50 }, (_, i) => payment('bk_1', 1_000 + i));
        const results = await concurrently(50, (i) => store.post(attempts[i] as LedgerTransaction));
        const winner = results[0] as LedgerTransaction;
        expect(attempts).toContainEqual(winner);
        expect(results).toEqual(Array(50).fill(winner));
        expect(await store.entries()).toEqual(winner.entries);
        expect(await store.imbalance()).toBe(0);
        expect(await store.balances()).toEqual(collected('KRW', (winner.entries[0] as LedgerEntry).amount));
      });

      it('posts and removals of many references keep the ledger balanced', async () => {
        const store = await make();
        await concurrently(100, (i) => store.post(payment(`bk_${i}`, 100 + i)));
        await concurrently<unknown>(100, (i) => (i % 2 === 0 ? store.removeReference(`bk_${i}`) : store.post(payment(`bk_new_${i}`, 7))));
        expect(await store.entries()).toHaveLength(2 * (50 + 50));
        expect(await store.imbalance()).toBe(0);
        const odd = Array.from({ length: 50 }, (_, k) => 100 + 2 * k + 1).reduce((a, b) => a + b, 0);
        expect(await store.balances()).toEqual(collected('KRW', odd + 50 * 7));
      });
    });
  });
}
