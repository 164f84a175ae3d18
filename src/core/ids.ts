import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { Clock } from './clock.ts';

export type IdPrefix = 'pay' | 'bk' | 'evt' | 'whd' | 'led' | 'tx' | 'ord' | 'pk' | 'cu' | 'saga' | 'sub' | 'whs' | 'wrt' | 'adm';

export type IdFactory = (prefix: IdPrefix) => string;

/**
 * Ids are `<prefix>_<ULID>`. The ULID takes its time from the injected clock and is monotonic, so
 * ids of one prefix sort in creation order; the stores rely on that for cursors.
 */
export function createIdFactory(clock: Clock): IdFactory {
  const ulid = monotonicFactory(pooledRandom());
  return (prefix) => `${prefix}_${ulid(clock.now())}`;
}

const POOL_WORDS = 4096;

/**
 * Cryptographic randomness drawn from a pooled buffer: ulid asks for one random number per
 * character, and a system call per character was a measurable share of a request's time.
 */
function pooledRandom(): () => number {
  const pool = new Uint32Array(POOL_WORDS);
  let next = POOL_WORDS;
  return () => {
    if (next === POOL_WORDS) {
      randomFillSync(pool);
      next = 0;
    }
    return (pool[next++] as number) / 0x1_0000_0000;
  };
}
