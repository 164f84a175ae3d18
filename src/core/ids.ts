import { monotonicFactory } from 'ulid';
import type { Clock } from './clock.ts';

export type IdPrefix = 'pay' | 'bk' | 'evt' | 'whd' | 'led' | 'tx';

export type IdFactory = (prefix: IdPrefix) => string;

/**
 * Ids are `<prefix>_<ULID>`. The ULID takes its time from the injected clock and is monotonic, so
 * ids of one prefix sort in creation order; the stores rely on that for cursors.
 */
export function createIdFactory(clock: Clock): IdFactory {
  const ulid = monotonicFactory();
  return (prefix) => `${prefix}_${ulid(clock.now())}`;
}
