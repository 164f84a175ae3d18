import { describe, expect, it } from 'vitest';
import { createRandom, createStreams, returnable } from '../../src/core/random.ts';
import { decide } from '../../src/core/scenario.ts';
import { SCENARIOS } from './support.ts';

const NOW = Date.UTC(2026, 0, 15);

function draws(seed: number | undefined, n: number): number[] {
  const random = createRandom(seed);
  return Array.from({ length: n }, () => random.next());
}

function approvals(rate: number, n: number, seed: number): number {
  const random = createRandom(seed);
  const config = { ...SCENARIOS, randomApproveRate: rate };
  let approved = 0;
  for (let i = 0; i < n; i++) {
    if (decide({ scenario: 'random' }, config, random, NOW).outcome.status === 'APPROVED') approved++;
  }
  return approved;
}

describe('createRandom', () => {
  it('the same seed yields the same sequence', () => {
    expect(draws(42, 100)).toEqual(draws(42, 100));
  });

  it('the sequence for a seed is fixed across runs (pinned values)', () => {
    expect(draws(42, 3)).toEqual([0.9705673231091424, 0.8457159529613436, 0.8476120673136699]);
  });

  it('another seed yields another sequence', () => {
    const a = draws(42, 20);
    const b = draws(43, 20);
    expect(a).not.toEqual(b);
    // Not just a different first value: most positions differ.
    expect(a.filter((v, i) => v !== b[i]).length).toBe(20);
  });

  it('the sequence advances (no repeated value)', () => {
    expect(new Set(draws(7, 1000)).size).toBe(1000);
  });

  it('values lie in [0, 1)', () => {
    for (const seed of [0, 1, 42, 4_294_967_295, undefined]) {
      for (const v of draws(seed, 1000)) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThan(1);
      }
    }
  });

  it('unseeded, it is not a constant', () => {
    expect(new Set(draws(undefined, 10)).size).toBe(10);
  });

  // Regression: with xoroshiro128+ seeded from a 32-bit value, the first draw was ~seed (> 0.998
  // for every seed below 2**31), so the first `random` payment after start always failed.
  it('the first draw after seeding is spread across [0, 1) like any other', () => {
    const firsts = Array.from({ length: 1000 }, (_, seed) => createRandom(seed).next());
    const below = firsts.filter((v) => v < 0.8).length;
    expect(below).toBeGreaterThan(700); // ~800 expected
  });
});

describe('random scenario, seeded', () => {
  it('10,000 decisions at rate 0.8 approve 80 % ± 2 %', () => {
    const approved = approvals(0.8, 10_000, 12345);
    expect(approved / 10_000).toBeGreaterThanOrEqual(0.78);
    expect(approved / 10_000).toBeLessThanOrEqual(0.82);
  });

  it('10,000 decisions at rate 0.3 approve 30 % ± 2 %', () => {
    const approved = approvals(0.3, 10_000, 99);
    expect(approved / 10_000).toBeGreaterThanOrEqual(0.28);
    expect(approved / 10_000).toBeLessThanOrEqual(0.32);
  });

  it('the same seed gives the same decisions', () => {
    const run = (seed: number) => {
      const random = createRandom(seed);
      return Array.from({ length: 200 }, () => decide({ scenario: 'random' }, SCENARIOS, random, NOW).outcome.status);
    };
    const first = run(2024);
    expect(run(2024)).toEqual(first);
    expect(first).toContain('APPROVED');
    expect(first).toContain('FAILED');
  });

  it('rate 0 never approves', () => {
    expect(approvals(0, 10_000, 5)).toBe(0);
  });

  it('rate 1 always approves', () => {
    expect(approvals(1, 10_000, 5)).toBe(10_000);
  });
});

describe('createStreams', () => {
  const draw = (stream: { next(): number }, n: number) => Array.from({ length: n }, () => stream.next());

  it('gives each name its own seeded sequence: the same on every run, independent of the other streams', () => {
    const a = createStreams(42);
    const b = createStreams(42);
    const first = draw(a('faults:default'), 5);
    draw(b('faults:other'), 100);
    expect(draw(b('faults:default'), 5)).toEqual(first);
    expect(draw(a('faults:other'), 5)).not.toEqual(first);
    expect(a('faults:default')).toBe(a('faults:default'));
    expect(first).not.toEqual(draw(createRandom(42), 5));
  });

  it('without a seed, streams are unseeded', () => {
    const values = draw(createStreams()('x'), 3);
    for (const v of values) expect(v >= 0 && v < 1).toBe(true);
  });
});

describe('returnable', () => {
  it('draws given back come first, in the order they were drawn, then the source goes on where it was', () => {
    const plain = createRandom(5);
    const expected = Array.from({ length: 5 }, () => plain.next());
    const source = returnable(createRandom(5));
    const drawn: number[] = [];
    const noting = source.noting(drawn);
    noting.next();
    noting.next();
    expect(drawn).toEqual(expected.slice(0, 2));
    source.giveBack(drawn);
    expect(Array.from({ length: 5 }, () => source.next())).toEqual(expected);
  });

  it('a request that gives back nothing leaves the sequence as it was', () => {
    const plain = createRandom(9);
    const source = returnable(createRandom(9));
    source.giveBack([]);
    expect([source.next(), source.next()]).toEqual([plain.next(), plain.next()]);
  });
});
