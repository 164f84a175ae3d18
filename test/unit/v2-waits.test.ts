import { describe, expect, it } from 'vitest';
import { CallbackWaits } from '../../src/dialects/payment-server-v2/waits.ts';

/** What POST /api/v2/payments waits for, against a store that goes away: a blip ends no wait, an outage of a second does. */
describe('CallbackWaits and the store', () => {
  const settledWithin = async (done: Promise<void>, ms: number): Promise<boolean> =>
    Promise.race([done.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

  it('a store unavailable for half a second (a reconnect) ends no wait; one unavailable for a second ends them all', async () => {
    let unavailable: string | undefined;
    const waits = new CallbackWaits(5_000, () => unavailable);
    const first = waits.open('pay_tx_1');
    const second = waits.open('pay_tx_2');
    unavailable = 'Redis at redis://127.0.0.1:6379 is unreachable (connect ECONNREFUSED 127.0.0.1:6379); reconnecting';
    await new Promise((resolve) => setTimeout(resolve, 500));
    unavailable = undefined;
    // Before, the first look at an unavailable store ended the waits: a blip answered PENDING.
    expect(await settledWithin(first.done, 700)).toBe(false);
    expect(waits.size).toBe(2);

    unavailable = 'Redis at redis://127.0.0.1:6379 has not answered for 2 s (paused, overloaded, or cut off by the network)';
    expect(await settledWithin(Promise.all([first.done, second.done]).then(() => undefined), 2_500)).toBe(true);
    expect(waits.size).toBe(0);
  });

  it('with a store that is always there (memory), a wait ends only by its payment', async () => {
    const waits = new CallbackWaits(5_000);
    const wait = waits.open('pay_tx_3');
    expect(await settledWithin(wait.done, 600)).toBe(false);
    waits.settle('pay_tx_3');
    expect(await settledWithin(wait.done, 100)).toBe(true);
    expect(waits.size).toBe(0);
  });
});
