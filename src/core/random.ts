import { mersenne } from 'pure-rand/generator/mersenne';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';

/** A source of numbers in [0, 1). Seeded, it yields the same sequence on every run. */
export interface RandomSource {
  next(): number;
}

/**
 * With a seed: the Mersenne Twister from pure-rand, so `RANDOM_SEED` makes random outcomes
 * reproducible. Not xoroshiro128+: seeded from a 32-bit value its first outputs are close to
 * `~seed`, so the first random payment after start would almost always fail.
 * Without a seed: Math.random.
 */
export function createRandom(seed?: number): RandomSource {
  if (seed === undefined) return { next: () => Math.random() };
  const rng = mersenne(seed);
  return { next: () => uniformFloat64(rng) };
}
