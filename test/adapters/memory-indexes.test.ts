import { queryObjects } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { MemoryBillingStore } from '../../src/adapters/memory/fluxpay-billing.ts';
import { MemoryCreditBook } from '../../src/adapters/memory/fluxpay-credits.ts';
import { MemoryFluxPayLedger } from '../../src/adapters/memory/fluxpay-ledger.ts';
import { MemoryOrderBook } from '../../src/adapters/memory/fluxpay-orders.ts';
import { IdList } from '../../src/adapters/memory/id-list.ts';
import { stampOf } from '../../src/core/fluxpay/model.ts';
import { expired } from '../../src/core/subscriptions/subscription.ts';
import { aSubscription } from './contracts/billing.contract.ts';
import { anOrder } from './contracts/fluxpay.contract.ts';
import { DAY, ids, T0 } from './contracts/fixtures.ts';

/*
 * The memory stores' per-user indexes hold a user only while a record of theirs is held. Before
 * 2026-12-04 the FluxPay billing, order and credit stores kept an index list for every user ever
 * seen (a code review measured 344 bytes a user: 68.8 MB after 200,000 users, nothing held).
 * The lists are counted in the heap (v8.queryObjects, after a full GC): each user here has two
 * records, so their index is a list while they are held, and none is left once they are evicted.
 */

const USERS = 300;
const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
const lists = (): number => queryObjects(IdList, { format: 'count' });

describe('memory per-user indexes leave with the user’s last record', () => {
  it('billing subscriptions: expired and swept', async () => {
    const billing = new MemoryBillingStore({ maxSubscriptions: 10_000, ttlMs: DAY }, { appendEvent: () => undefined });
    const before = lists();
    const held = [];
    for (const userId of users) {
      for (let i = 0; i < 2; i++) {
        const record = aSubscription(userId);
        expect((await billing.create(record, ids('evt'))).kind).toBe('created');
        held.push(record);
      }
    }
    expect(lists() - before).toBe(USERS);
    for (const record of held) expect((await billing.update({ next: expired(record, T0 + 1), invoice: null, card: null, event: null })).kind).toBe('updated');
    expect(await billing.sweep(T0 + 1 + DAY)).toBe(2 * USERS);
    expect(await billing.stats()).toEqual({ size: 0, max: 10_000 });
    expect(lists() - before).toBe(0);
    // A user seen again is indexed again.
    const again = aSubscription('user_0', T0 + 2);
    await billing.create(again, ids('evt'));
    expect(await billing.list({ userId: 'user_0', limit: 10 })).toEqual({ data: [again], nextCursor: null });
  });

  it('FluxPay orders: cancelled and swept', () => {
    const orders = new MemoryOrderBook(new MemoryFluxPayLedger(), 10_000);
    const before = lists();
    for (const userId of users) {
      for (let i = 0; i < 2; i++) orders.cancel(orders.insert(anOrder({ userId })), null, stampOf(ids, T0), false);
    }
    expect(lists() - before).toBe(USERS);
    expect(orders.sweep(T0)).toBe(2 * USERS);
    expect(orders.size).toBe(0);
    expect(lists() - before).toBe(0);
    expect(orders.list({ userId: 'user_0', limit: 10 })).toEqual({ data: [], nextCursor: null });
  });

  it('FluxPay credit transactions: swept (the balances stay)', () => {
    const credits = new MemoryCreditBook(new MemoryFluxPayLedger(), 10_000);
    const before = lists();
    const about = { orderId: null, usageId: null, serviceId: null };
    for (const userId of users) {
      for (let i = 0; i < 2; i++) credits.move('CHARGE', userId, 5, stampOf(ids, T0), about);
    }
    expect(lists() - before).toBe(USERS);
    expect(credits.sweep(T0)).toBe(2 * USERS);
    expect(lists() - before).toBe(0);
    expect([credits.balance('user_0'), credits.transactions('user_0', { limit: 10 })]).toEqual([10, { data: [], nextCursor: null }]);
  });
});
