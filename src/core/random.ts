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

/** A source whose draws can be given back: the next draws return them first, in order. */
export interface ReturnableRandom extends RandomSource {
  /**
   * Gives back `values`, drawn from this source by a request that made nothing with them (a
   * payment sent again, refused): with a seed, the next payment draws what it would have drawn had
   * that request never come, so a client's retry does not shift every later seeded outcome.
   */
  giveBack(values: readonly number[]): void;
  /** `source` as seen by one request: each draw is also noted in `drawn`, to give back. */
  noting(drawn: number[]): RandomSource;
}

/** `source` with draws that can be given back (`ReturnableRandom`). */
export function returnable(source: RandomSource): ReturnableRandom {
  const returned: number[] = [];
  const next = (): number => (returned.length > 0 ? (returned.shift() as number) : source.next());
  return {
    next,
    giveBack: (values) => void returned.unshift(...values),
    noting: (drawn) => ({
      next: () => {
        const value = next();
        drawn.push(value);
        return value;
      },
    }),
  };
}

/**
 * Named random streams (`faults:<namespace>`, say), each its own sequence: with a seed, a Mersenne
 * Twister seeded with RANDOM_SEED mixed with the name's 32-bit FNV-1a hash, so what one stream
 * draws never shifts another's and a seeded run repeats per stream; without a seed, Math.random.
 * Streams are made on first use and kept (their names come from a bounded set: namespaces).
 */
export function createStreams(seed?: number): (name: string) => RandomSource {
  const streams = new Map<string, RandomSource>();
  return (name) => {
    let stream = streams.get(name);
    if (stream === undefined) {
      stream = createRandom(seed === undefined ? undefined : (seed ^ fnv1a(name)) >>> 0);
      streams.set(name, stream);
    }
    return stream;
  };
}

/**
 * The seed of a namespace's simulator (X-Sim-Namespace): RANDOM_SEED mixed with the namespace's
 * name, so each namespace draws its own sequence and the same requests in a namespace repeat its
 * outcomes whatever other namespaces do. No seed: none (Math.random).
 */
export function namespaceSeed(seed: number | undefined, namespace: string): number | undefined {
  return seed === undefined ? undefined : (seed ^ fnv1a(`namespace:${namespace}`)) >>> 0;
}

/** The 32-bit FNV-1a hash of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}
