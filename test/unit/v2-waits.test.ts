import { describe, expect, it } from 'vitest';
import { CallbackWaits, LOOK_AFTER_DUE_MS, LOOK_GAP_MAX_MS, type LookedUp } from '../../src/dialects/payment-server-v2/waits.ts';

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

  /** Waits whose overdue payments are read from `found` (by id) on a clock the test sets; the ids read, in order. */
  function lookingWaits(boundMs: number, found: Map<string, LookedUp | Error>, eager = true) {
    const clock = { now: 10_000 };
    const reads: string[] = [];
    const waits = new CallbackWaits(boundMs, () => undefined, {
      now: () => clock.now,
      eager: () => eager,
      look: async (id) => {
        reads.push(id);
        const answer = found.get(id);
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    return { waits, clock, reads };
  }

  it('a wait whose payment another replica decided (no event here) reads it once past its due time: completed ends it, decided (approved or declined) starts what is left of its bound, gone ends it', async () => {
    const found = new Map<string, LookedUp | Error>([
      ['pay_final', { decidedAt: 10_000, completed: true }],
      ['pay_decided', { decidedAt: 10_100, completed: false }],
      ['pay_gone', undefined],
    ]);
    const { waits, clock, reads } = lookingWaits(1_000, found);
    const final = waits.open('pay_final');
    const decided = waits.open('pay_decided');
    const gone = waits.open('pay_gone');
    for (const wait of [final, decided, gone]) waits.expect(wait, 10_000);
    // Not past due + LOOK_AFTER_DUE_MS yet: nothing read.
    clock.now = 10_000 + LOOK_AFTER_DUE_MS - 1;
    expect(await settledWithin(final.done, 600)).toBe(false);
    expect(reads).toEqual([]);
    clock.now = 10_000 + LOOK_AFTER_DUE_MS + 200;
    expect(await settledWithin(Promise.all([final.done, gone.done]).then(() => undefined), 600)).toBe(true);
    // Decided 350 ms ago on the service's clock: 650 ms of its 1,000 ms bound left (read again meanwhile, for its completion).
    expect(await settledWithin(decided.done, 300)).toBe(false);
    expect(await settledWithin(decided.done, 900)).toBe(true);
    expect(reads.filter((id) => id === 'pay_decided').length).toBeGreaterThanOrEqual(1);
    expect(waits.size).toBe(0);
  });

  it('an overdue wait reads its payment soon after its due time, then less and less often (gaps doubling to LOOK_GAP_MAX_MS): a create whose decision another replica made answers within tens of milliseconds, not 250–500 (a user test)', async () => {
    const found = new Map<string, LookedUp | Error>([['pay_elsewhere', { decidedAt: null, completed: false }]]);
    const { waits, clock, reads } = lookingWaits(5_000, found);
    const wait = waits.open('pay_elsewhere');
    waits.expect(wait, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reads).toEqual([]);
    // Just past the first read's time (before: 250 ms past the due time, so never on this clock).
    clock.now = 10_000 + LOOK_AFTER_DUE_MS;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Then at most 25, 50, 100, 200, 250, 250 ms apart (real time): 7 reads in the second at most
    // (the checks come late on a busy machine, never early), where reads 25 ms apart would be 40.
    const schedule = [0, 1, 2, 3, 4, 5].map((i) => Math.min(LOOK_AFTER_DUE_MS * 2 ** i, LOOK_GAP_MAX_MS));
    expect(schedule).toEqual([25, 50, 100, 200, 250, 250]);
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(reads.length).toBeLessThanOrEqual(7);
    found.set('pay_elsewhere', { decidedAt: 10_000, completed: true });
    expect(await settledWithin(wait.done, 600)).toBe(true);
  });

  it('alone (no other process may serve: its own events end its waits), a wait reads its payment only from LOOK_GAP_MAX_MS past its due time, every LOOK_GAP_MAX_MS (reading from 25 ms cost one process 2.4 reads a create with a slow receiver, a review)', async () => {
    const found = new Map<string, LookedUp | Error>([['pay_here', { decidedAt: null, completed: false }]]);
    const { waits, clock, reads } = lookingWaits(5_000, found, false);
    const wait = waits.open('pay_here');
    waits.expect(wait, 10_000);
    clock.now = 10_000 + LOOK_GAP_MAX_MS - 1;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reads).toEqual([]);
    clock.now = 10_000 + LOOK_GAP_MAX_MS;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // About 4 in the second (250 ms apart, the checks late on a busy machine, never early), where eager reads would be 7.
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.length).toBeLessThanOrEqual(5);
    waits.close();
  });

  it('follow (a repeat whose first request is another replica’s): waits only while the answer is to come; undecided, it reads from the next check until completed; decided, what is left of its bound', async () => {
    const found = new Map<string, LookedUp | Error>([
      ['pay_done', { decidedAt: 9_000, completed: true }],
      ['pay_bound_over', { decidedAt: 8_000, completed: false }],
      ['pay_gone', undefined],
      ['pay_undecided', { decidedAt: null, completed: false }],
      ['pay_decided', { decidedAt: 9_700, completed: false }],
      ['pay_broken', new Error('Connection is closed.')],
    ]);
    const { waits } = lookingWaits(1_000, found);
    for (const id of ['pay_done', 'pay_bound_over', 'pay_gone']) expect(await waits.follow(waits.open(id))).toBe(false);
    await expect(waits.follow(waits.open('pay_broken'))).rejects.toThrow('Connection is closed.');
    expect(waits.size).toBe(0);
    const undecided = waits.open('pay_undecided');
    const decided = waits.open('pay_decided');
    expect([await waits.follow(undecided), await waits.follow(decided)]).toEqual([true, true]);
    // Decided 300 ms ago: 700 ms of its bound left (its reads find it not completed meanwhile).
    expect(await settledWithin(decided.done, 450)).toBe(false);
    expect(await settledWithin(decided.done, 600)).toBe(true);
    expect(await settledWithin(undecided.done, 300)).toBe(false);
    found.set('pay_undecided', { decidedAt: 10_000, completed: true });
    expect(await settledWithin(undecided.done, 600)).toBe(true);
    expect(waits.size).toBe(0);
  });

  it('follow: a decision stamped ahead of this clock (another replica’s clock is ahead) waits the bound, not the bound and the skew; a wait ended while its payment was read follows nothing', async () => {
    const found = new Map<string, LookedUp | Error>([['pay_skewed', { decidedAt: 12_000, completed: false }]]);
    const { waits } = lookingWaits(500, found);
    const skewed = waits.open('pay_skewed');
    expect(await waits.follow(skewed)).toBe(true);
    expect(await settledWithin(skewed.done, 800)).toBe(true);
    // The store went away during the read: close() ended the wait; a later wait of the id is not armed by it.
    const ended = waits.open('pay_skewed');
    const following = waits.follow(ended);
    waits.close();
    const later = waits.open('pay_skewed');
    expect(await following).toBe(false);
    expect(await settledWithin(later.done, 800)).toBe(false);
    waits.close();
  });

  it('a failed read is made again at the next check; a wait its own events end first reads nothing', async () => {
    const found = new Map<string, LookedUp | Error>([['pay_flaky', new Error('Connection is closed.')]]);
    const { waits, clock, reads } = lookingWaits(5_000, found);
    const flaky = waits.open('pay_flaky');
    const local = waits.open('pay_local');
    waits.expect(flaky, 10_000);
    waits.expect(local, 10_000);
    waits.settle('pay_local');
    clock.now = 20_000;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await settledWithin(flaky.done, 0)).toBe(false);
    found.set('pay_flaky', { decidedAt: 19_000, completed: true });
    expect(await settledWithin(flaky.done, 600)).toBe(true);
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(new Set(reads)).toEqual(new Set(['pay_flaky']));
  });
});
