import type { RandomSource } from '../random.ts';
import { MAX_DURATION_MS, type Distribution } from './model.ts';

/**
 * Latency distributions. Each sample draws a fixed number of values from the random source
 * (fixed 0, uniform 1, normal and lognormal 2), whatever the parameters, so a seeded stream stays
 * aligned across runs. Samples are truncated at 0 and at MAX_DURATION_MS.
 * @see issue 15 "Actions" (latency: fixed, uniform, normal or lognormal, e.g. p50 and p99)
 */

/**
 * z of the 99th percentile of the standard normal distribution: a lognormal with median p50 has
 * its 99th percentile at p50 · e^(σ·z99), so σ = (ln p99 − ln p50) / z99.
 * @see https://en.wikipedia.org/wiki/Log-normal_distribution
 */
export const Z_99 = 2.3263;

export function sample(distribution: Distribution, random: RandomSource): number {
  switch (distribution.kind) {
    case 'fixed':
      return clamp(distribution.ms);
    case 'uniform':
      return clamp(distribution.min + random.next() * (distribution.max - distribution.min));
    case 'normal':
      return clamp(distribution.mean + distribution.stddev * standardNormal(random));
    case 'lognormal': {
      const { mu, sigma } = lognormalParameters(distribution.p50, distribution.p99);
      return clamp(Math.exp(mu + sigma * standardNormal(random)));
    }
  }
}

/** mu and sigma of the underlying normal distribution. */
export function lognormalParameters(p50: number, p99: number): { mu: number; sigma: number } {
  const mu = Math.log(p50);
  return { mu, sigma: (Math.log(p99) - mu) / Z_99 };
}

/**
 * One standard normal value by the Box–Muller transform from two uniform draws. The first draw is
 * taken as 1 − u, in (0, 1], so its logarithm is finite.
 * @see https://en.wikipedia.org/wiki/Box%E2%80%93Muller_transform
 */
export function standardNormal(random: RandomSource): number {
  const u1 = 1 - random.next();
  const u2 = random.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

function clamp(ms: number): number {
  if (!(ms > 0)) return 0;
  return ms > MAX_DURATION_MS ? MAX_DURATION_MS : ms;
}
