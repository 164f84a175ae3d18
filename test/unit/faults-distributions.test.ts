import { describe, expect, it } from 'vitest';
import { lognormalParameters, sample, standardNormal, Z_99 } from '../../src/core/faults/distributions.ts';
import { MAX_DURATION_MS, type Distribution } from '../../src/core/faults/model.ts';
import { createRandom } from '../../src/core/random.ts';
import { quantile, scripted } from './faults-support.ts';

const N = 5_000;

function samples(distribution: Distribution, seed: number, n = N): number[] {
  const random = createRandom(seed);
  return Array.from({ length: n }, () => sample(distribution, random)).sort((a, b) => a - b);
}

/** Within ±10 % of the expected value. */
function near(actual: number, expected: number): void {
  expect(actual, `expected ${expected} ± 10 %`).toBeGreaterThanOrEqual(expected * 0.9);
  expect(actual, `expected ${expected} ± 10 %`).toBeLessThanOrEqual(expected * 1.1);
}

describe('latency distributions: 5,000 seeded samples have the configured percentiles (±10 %)', () => {
  // Several seeds, so a lucky seed cannot hide a wrong formula. The 99th percentile of 5,000
  // samples of a wide lognormal (sigma ≈ 1) has a relative standard error of about 5 %, so ±10 %
  // holds for about 92 % of seeds (seed 1 misses: 2,223 ms); the test after the next checks the
  // formula over many seeds instead.
  const SEEDS = [2, 42, 2026];

  it.each(SEEDS)('lognormal from p50 = 200 ms and p99 = 2,000 ms (seed %i)', (seed) => {
    const sorted = samples({ kind: 'lognormal', p50: 200, p99: 2_000 }, seed);
    near(quantile(sorted, 0.5), 200);
    near(quantile(sorted, 0.99), 2_000);
  });

  it('lognormal: over 40 seeds the 99th percentiles of 5,000 samples average within ±2 % of p99, the medians within ±1 % of p50', () => {
    let p50s = 0;
    let p99s = 0;
    const seeds = 40;
    for (let seed = 100; seed < 100 + seeds; seed++) {
      const sorted = samples({ kind: 'lognormal', p50: 200, p99: 2_000 }, seed);
      p50s += quantile(sorted, 0.5);
      p99s += quantile(sorted, 0.99);
    }
    expect(Math.abs(p50s / seeds / 200 - 1)).toBeLessThan(0.01);
    expect(Math.abs(p99s / seeds / 2_000 - 1)).toBeLessThan(0.02);
  });

  it.each(SEEDS)('lognormal with a narrow tail: p50 = 50 ms, p99 = 80 ms (seed %i)', (seed) => {
    const sorted = samples({ kind: 'lognormal', p50: 50, p99: 80 }, seed);
    near(quantile(sorted, 0.5), 50);
    near(quantile(sorted, 0.99), 80);
  });

  it.each(SEEDS)('normal, mean 500 ms, stddev 100 ms: p50 = 500, p84 = 600, p16 = 400, p99 = 733 (seed %i)', (seed) => {
    const sorted = samples({ kind: 'normal', mean: 500, stddev: 100 }, seed);
    near(quantile(sorted, 0.5), 500);
    near(quantile(sorted, 0.8413), 600);
    near(quantile(sorted, 0.1587), 400);
    near(quantile(sorted, 0.99), 500 + Z_99 * 100);
  });

  it.each(SEEDS)('uniform from 100 to 300 ms: p10 = 120, p50 = 200, p90 = 280, nothing outside (seed %i)', (seed) => {
    const sorted = samples({ kind: 'uniform', min: 100, max: 300 }, seed);
    near(quantile(sorted, 0.1), 120);
    near(quantile(sorted, 0.5), 200);
    near(quantile(sorted, 0.9), 280);
    expect(sorted[0]).toBeGreaterThanOrEqual(100);
    expect(sorted.at(-1)).toBeLessThan(300);
  });

  it('fixed: every sample is the value, and no number is drawn', () => {
    const random = scripted([]);
    expect(Array.from({ length: 10 }, () => sample({ kind: 'fixed', ms: 250 }, random))).toEqual(Array(10).fill(250));
    expect(random.draws).toBe(0);
  });
});

describe('sampling details', () => {
  it('lognormal parameters: mu = ln p50, sigma = (ln p99 − ln p50) / 2.3263', () => {
    const { mu, sigma } = lognormalParameters(200, 2_000);
    expect(mu).toBeCloseTo(Math.log(200), 12);
    expect(sigma).toBeCloseTo(Math.log(10) / 2.3263, 12);
    // p50 == p99: no spread at all.
    expect(lognormalParameters(80, 80).sigma).toBe(0);
    expect(sample({ kind: 'lognormal', p50: 80, p99: 80 }, createRandom(1))).toBeCloseTo(80, 9);
  });

  it('samples are truncated at 0: a normal around 10 ms with a 100 ms spread never goes negative, and about 46 % are 0', () => {
    const sorted = samples({ kind: 'normal', mean: 10, stddev: 100 }, 7);
    expect(sorted[0]).toBe(0);
    const zeros = sorted.filter((v) => v === 0).length / sorted.length;
    // P(Z < −0.1) = 0.460
    expect(zeros).toBeGreaterThan(0.43);
    expect(zeros).toBeLessThan(0.49);
  });

  it('samples are truncated at the longest latency a rule may ask for', () => {
    const sorted = samples({ kind: 'lognormal', p50: 500_000, p99: 600_000 }, 3, 1_000);
    expect(sorted.at(-1)).toBe(MAX_DURATION_MS);
  });

  it('draws a fixed number of values per sample whatever they are: uniform 1, normal 2, lognormal 2', () => {
    for (const [distribution, draws] of [
      [{ kind: 'uniform', min: 0, max: 10 }, 1],
      [{ kind: 'normal', mean: 10, stddev: 1 }, 2],
      [{ kind: 'lognormal', p50: 10, p99: 20 }, 2],
    ] as const) {
      const random = scripted([0.5, 0.5, 0.5, 0.5]);
      sample(distribution, random);
      expect(random.draws).toBe(draws);
    }
  });

  it('the standard normal of Box–Muller: u1 = 0 (a source may return 0) gives a finite value', () => {
    expect(Number.isFinite(standardNormal(scripted([0, 0.25])))).toBe(true);
    // u1 = 1 − 0.5, u2 = 0: sqrt(−2 ln 0.5) · cos 0
    expect(standardNormal(scripted([0.5, 0]))).toBeCloseTo(Math.sqrt(-2 * Math.log(0.5)), 12);
  });

  it('the same seed gives the same samples; another seed others', () => {
    const lognormal: Distribution = { kind: 'lognormal', p50: 100, p99: 900 };
    expect(samples(lognormal, 5, 50)).toEqual(samples(lognormal, 5, 50));
    expect(samples(lognormal, 5, 50)).not.toEqual(samples(lognormal, 6, 50));
  });
});
