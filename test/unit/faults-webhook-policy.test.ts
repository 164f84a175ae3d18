import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/core/random.ts';
import { dropsAttempt, duplicatePlan, firstSend, NO_WEBHOOK_FAULTS, ReorderHold, shuffled, type WebhookFaultPlan } from '../../src/core/faults/webhook-policy.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { scripted, T0 } from './faults-support.ts';

const PLAN: WebhookFaultPlan = {
  ruleIds: ['r_dup', 'r_delay', 'r_drop'],
  duplicate: { ruleId: 'r_dup' },
  reorder: null,
  delay: { ruleId: 'r_delay', ms: 1_500 },
  dropAttempts: { ruleId: 'r_drop', n: 2 },
};

describe('a delivery plan', () => {
  it('drop_attempts n: the first n attempts are lost, the next goes out', () => {
    expect([1, 2, 3, 4].map((attempt) => dropsAttempt(PLAN.dropAttempts, attempt))).toEqual([true, true, false, false]);
    expect(dropsAttempt(NO_WEBHOOK_FAULTS.dropAttempts, 1)).toBe(false);
  });

  it('delay and duplicate: the first attempt waits the delay; the event goes out twice; the duplicate is not duplicated again', () => {
    expect(firstSend(PLAN, T0)).toEqual({ at: T0 + 1_500, copies: 2 });
    expect(firstSend(NO_WEBHOOK_FAULTS, T0)).toEqual({ at: T0, copies: 1 });
    const second = duplicatePlan(PLAN);
    expect(firstSend(second, T0)).toEqual({ at: T0 + 1_500, copies: 1 });
    expect(second).toEqual({ ...PLAN, duplicate: null });
    expect(PLAN.duplicate).not.toBeNull();
  });
});

describe('ReorderHold', () => {
  function holdWith(seed = 1, maxHeld = 1_000) {
    const clock = new ManualClock(T0);
    const released: { at: number; target: string; items: string[] }[] = [];
    const hold = new ReorderHold<string>({ clock, random: createRandom(seed), maxHeld, release: (target, items) => released.push({ at: clock.now(), target, items }) });
    return { clock, hold, released };
  }

  it('holds a target\'s deliveries for the window opened by the first, then releases them all, out of order', async () => {
    const { clock, hold, released } = holdWith();
    for (const id of ['e1', 'e2', 'e3']) expect(hold.hold('https://a.example/hooks', id, 1_000)).toBe(true);
    await clock.advance(400);
    hold.hold('https://a.example/hooks', 'e4', 1_000);
    hold.hold('https://b.example/hooks', 'x1', 300);
    expect(hold.held).toBe(5);
    await clock.advance(299);
    expect(released).toEqual([]);
    await clock.advance(1);
    expect(released).toEqual([{ at: T0 + 700, target: 'https://b.example/hooks', items: ['x1'] }]);
    await clock.advance(299);
    expect(released).toHaveLength(1);
    await clock.advance(1);
    expect(released).toHaveLength(2);
    const [, a] = released;
    expect(a).toMatchObject({ at: T0 + 1_000, target: 'https://a.example/hooks' });
    expect([...a!.items].sort()).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(a!.items).not.toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(hold.held).toBe(0);
    // The next delivery opens a new window.
    hold.hold('https://a.example/hooks', 'e5', 1_000);
    await clock.advance(1_000);
    expect(released[2]).toEqual({ at: T0 + 2_000, target: 'https://a.example/hooks', items: ['e5'] });
  });

  it('seeded: the same deliveries come out in the same order on every run', async () => {
    const run = async (seed: number) => {
      const { clock, hold, released } = holdWith(seed);
      for (let i = 0; i < 8; i++) hold.hold('t', `e${i}`, 100);
      await clock.advance(100);
      return released[0]?.items;
    };
    expect(await run(5)).toEqual(await run(5));
    expect(await run(5)).not.toEqual(await run(6));
  });

  it('is bounded: beyond maxHeld it refuses (the caller sends at once), and takes again once released', async () => {
    const { clock, hold } = holdWith(1, 2);
    expect([hold.hold('t', 'a', 100), hold.hold('u', 'b', 100), hold.hold('t', 'c', 100)]).toEqual([true, true, false]);
    await clock.advance(100);
    expect(hold.hold('t', 'c', 100)).toBe(true);
  });

  it('close releases everything held at once and leaves no timer', async () => {
    const { clock, hold, released } = holdWith();
    hold.hold('t', 'a', 5_000);
    hold.hold('t', 'b', 5_000);
    hold.hold('u', 'c', 5_000);
    hold.close();
    expect(released.map((r) => [r.target, [...r.items].sort()])).toEqual([
      ['t', ['a', 'b']],
      ['u', ['c']],
    ]);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(10_000);
    expect(released).toHaveLength(2);
    // Closed for good (a drain): nothing more is held, each goes at once (before 2026-12-06 a new window opened).
    expect([hold.closed, hold.hold('t', 'd', 5_000), hold.held, clock.pendingTimers]).toEqual([true, false, 0, 0]);
  });
});

describe('shuffled', () => {
  it('a permutation that is never the given order, for 2 to 6 items over many seeds', () => {
    for (let n = 2; n <= 6; n++) {
      const items = Array.from({ length: n }, (_, i) => i);
      for (let seed = 0; seed < 300; seed++) {
        const out = shuffled(items, createRandom(seed));
        expect([...out].sort((a, b) => a - b)).toEqual(items);
        expect(out).not.toEqual(items);
      }
    }
  });

  it('one item stays, and the input is not changed', () => {
    expect(shuffled(['a'], createRandom(1))).toEqual(['a']);
    const items = ['a', 'b', 'c'];
    shuffled(items, createRandom(1));
    expect(items).toEqual(['a', 'b', 'c']);
  });

  it('draws n − 1 numbers, whatever they are (a draw that would keep the order is not redrawn)', () => {
    // Every j = i: Fisher–Yates keeps the order; the swap of the first two makes it [b, a, c].
    const random = scripted([0.99, 0.99]);
    expect(shuffled(['a', 'b', 'c'], random)).toEqual(['b', 'a', 'c']);
    expect(random.draws).toBe(2);
  });

  it('every order but the given one turns up (3 items, 600 seeds)', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 600; seed++) seen.add(shuffled(['a', 'b', 'c'], createRandom(seed)).join(''));
    expect([...seen].sort()).toEqual(['acb', 'bac', 'bca', 'cab', 'cba']);
  });
});
