import { createHash, randomFillSync } from 'node:crypto';
import type { Clock } from './clock.ts';

export type IdPrefix = 'pay' | 'bk' | 'evt' | 'whd' | 'led' | 'tx' | 'ord' | 'pk' | 'cu' | 'saga' | 'sub' | 'inv' | 'whs' | 'wrt' | 'adm' | 'rule';

export type IdFactory = (prefix: IdPrefix) => string;

/**
 * Ids are `<prefix>_<ULID>`. The ULID takes its time from the injected clock and is monotonic, so
 * ids of one prefix sort in creation order; the stores rely on that for cursors.
 */
export function createIdFactory(clock: Clock): IdFactory {
  const ulid = monotonicUlid();
  return (prefix) => `${prefix}_${ulid(clock.now())}`;
}

/** Crockford's base 32, the ULID alphabet. */
const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_LENGTH = 10;
const RANDOM_LENGTH = 16;
/** The largest time a ULID holds: 48 bits of milliseconds. */
const TIME_MAX = 2 ** 48 - 1;
const POOL_BYTES = 16_384;

/**
 * A monotonic ULID generator (https://github.com/ulid/spec): 10 characters of time (milliseconds,
 * from `seedTime`, or `Date.now()` when it is 0 or missing), then 16 random characters. Within
 * one millisecond, or when the time goes back, the previous ULID's random part is incremented
 * instead (with the previous time), so ULIDs always sort in the order they were made.
 * Randomness is cryptographic, drawn from a pooled buffer (one draw fills thousands of
 * characters), and a time's characters are encoded once, not once per ULID.
 */
export function monotonicUlid(): (seedTime?: number) => string {
  const pool = new Uint8Array(POOL_BYTES);
  let next = POOL_BYTES;
  // The ULID's character codes: the time's, then the random part's (as base-32 digits until encoded).
  const codes: number[] = Array.from({ length: TIME_LENGTH + RANDOM_LENGTH }, () => 0);
  const random = new Uint8Array(RANDOM_LENGTH);
  let lastTime = 0;
  return (seedTime) => {
    const seed = seedTime === undefined || seedTime === 0 || Number.isNaN(seedTime) ? Date.now() : seedTime;
    if (seed <= lastTime) {
      increment(random);
    } else {
      encodeTime(seed, codes);
      lastTime = seed;
      if (next + RANDOM_LENGTH > POOL_BYTES) {
        randomFillSync(pool);
        next = 0;
      }
      // 256 is a multiple of 32: the low 5 bits of a random byte are a uniform base-32 digit.
      for (let i = 0; i < RANDOM_LENGTH; i++) random[i] = (pool[next++] as number) & 31;
    }
    for (let i = 0; i < RANDOM_LENGTH; i++) codes[TIME_LENGTH + i] = ENCODING.charCodeAt(random[i] as number);
    // One flat string (ids are kept by the million): not a chain of concatenations.
    return String.fromCharCode(...codes);
  };
}

/** Writes the 10 character codes of `time` (milliseconds) into `codes`. */
function encodeTime(time: number, codes: number[]): void {
  if (!Number.isInteger(time) || time < 0 || time > TIME_MAX) throw new RangeError(`a ULID's time must be an integer from 0 to ${TIME_MAX} (got ${time})`);
  for (let i = TIME_LENGTH - 1; i >= 0; i--) {
    const digit = time % 32;
    codes[i] = ENCODING.charCodeAt(digit);
    time = (time - digit) / 32;
  }
}

/** Adds one to a base-32 number, most significant digit first. */
function increment(digits: Uint8Array): void {
  for (let i = digits.length - 1; i >= 0; i--) {
    if ((digits[i] as number) < 31) {
      digits[i] = (digits[i] as number) + 1;
      return;
    }
    digits[i] = 0;
  }
  // 2^80 ULIDs in one millisecond: not on this machine.
  throw new RangeError('the random part of the ULID cannot be incremented any further');
}

/**
 * The id of the one event a record's change at `at` makes (a decision), derived rather than
 * drawn: `<prefix>_<ULID>` with `at` as its time, and as its random part the random part of
 * `recordId`'s ULID, or for an id that is not one (an `/api/v2` payment's `pay_<tx_id>`) 80 bits
 * of its SHA-256. Whichever process makes the event again (due work that ran again after its
 * process died) gives it the same id, without storing it. Unique: a ULID's random part is never
 * reused by its factory at one time (it is monotonic), and two records' differ.
 * @see issue 14 "kill -9"
 */
export function derivedId(prefix: IdPrefix, at: number, recordId: string): string {
  const random = ENDS_WITH_ULID.test(recordId) ? recordId.slice(-RANDOM_LENGTH) : hashedRandom(recordId);
  return `${prefix}_${timeChars(at)}${random}`;
}

const ENDS_WITH_ULID = /_[0-9A-HJKMNP-TV-Z]{26}$/;

/** The time (epoch ms) of a `<prefix>_<ULID>` id; undefined for an id that does not end in a ULID. */
export function timeOfId(id: string): number | undefined {
  if (!ENDS_WITH_ULID.test(id)) return undefined;
  let time = 0;
  for (const char of id.slice(-(TIME_LENGTH + RANDOM_LENGTH), -RANDOM_LENGTH)) time = time * 32 + ENCODING.indexOf(char);
  return time <= TIME_MAX ? time : undefined;
}
const derivedTime = { at: -1, chars: '', codes: Array.from({ length: TIME_LENGTH }, () => 0) };

/** The 10 time characters of a ULID at `at`; the last one is kept (decisions come in bursts within a millisecond). */
function timeChars(at: number): string {
  if (at !== derivedTime.at) {
    encodeTime(at, derivedTime.codes);
    derivedTime.chars = String.fromCharCode(...derivedTime.codes);
    derivedTime.at = at;
  }
  return derivedTime.chars;
}

/** A ULID random part (16 base-32 digits, 80 bits) from the SHA-256 of `key`. */
function hashedRandom(key: string): string {
  const digest = createHash('sha256').update(key, 'utf8').digest();
  let random = '';
  for (let i = 0; i < RANDOM_LENGTH; i++) random += ENCODING[(digest[i] as number) & 31];
  return random;
}
