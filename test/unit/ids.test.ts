import { describe, expect, it } from 'vitest';
import { createIdFactory, derivedId, monotonicUlid, timeOfId } from '../../src/core/ids.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const decodeTime = (ulid: string) => [...ulid.slice(0, 10)].reduce((time, c) => time * 32 + ENCODING.indexOf(c), 0);

describe('ids: <prefix>_<ULID> (our own generator, src/core/ids.ts)', () => {
  it('is the prefix and 26 characters of Crockford base 32, the first 10 the clock time', () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0, 123));
    const ids = createIdFactory(clock);
    const id = ids('pay');
    expect(id).toMatch(/^pay_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decodeTime(id.slice(4))).toBe(clock.now());
  });

  it('encodes the time as the ULID specification does (its example: 1469918176385 → 01ARYZ6S41)', () => {
    expect(monotonicUlid()(1469918176385).slice(0, 10)).toBe('01ARYZ6S41');
    expect(monotonicUlid()(2 ** 48 - 1).slice(0, 10)).toBe('7ZZZZZZZZZ');
    expect(() => monotonicUlid()(2 ** 48)).toThrow(RangeError);
    expect(() => monotonicUlid()(1.5)).toThrow(RangeError);
  });

  it('sorts in the order made: within one millisecond, and when the clock goes back', () => {
    const ulid = monotonicUlid();
    const made = [...Array.from({ length: 5_000 }, () => ulid(1_000_000)), ...Array.from({ length: 100 }, () => ulid(999_000)), ulid(1_000_001)];
    for (let i = 1; i < made.length; i++) expect((made[i] as string) > (made[i - 1] as string)).toBe(true);
    // Within the millisecond the random part is incremented, the time kept.
    expect(new Set(made.slice(0, 5_100).map((u) => u.slice(0, 10)))).toEqual(new Set([made[0]?.slice(0, 10)]));
    expect(decodeTime(made.at(-1) as string)).toBe(1_000_001);
  });

  it('draws a fresh random part each millisecond, every character about equally often', () => {
    const ulid = monotonicUlid();
    const counts = new Map<string, number>();
    const randoms = new Set<string>();
    for (let t = 1; t <= 20_000; t++) {
      const random = ulid(t).slice(10);
      randoms.add(random);
      for (const c of random) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(randoms.size).toBe(20_000);
    const expected = (20_000 * 16) / 32;
    expect(counts.size).toBe(32);
    for (const count of counts.values()) expect(Math.abs(count - expected) / expected).toBeLessThan(0.05);
  });
});

describe('derivedId: the id of the one event a record makes at a time (issue 14 "kill -9")', () => {
  it('is <prefix>_<ULID> with that time and the record id’s random part, the same every time', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 15, 12));
    const ids = createIdFactory(clock);
    const record = ids('pay');
    const at = clock.now() + 200;
    const id = derivedId('evt', at, record);
    expect(id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(id).toBe(derivedId('evt', at, record));
    expect(id.slice(4, 14)).toBe(createIdFactory(new ManualClock(at))('evt').slice(4, 14));
    expect(id.slice(-16)).toBe(record.slice(-16));
  });

  it('differs between records and between times, and from every id the factory made at that time', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 15, 12));
    const ids = createIdFactory(clock);
    // Records and other events made in the same millisecond as the decisions (a 0 ms delay).
    const made = Array.from({ length: 1000 }, (_, i) => ids(i % 2 === 0 ? 'pay' : 'evt'));
    const records = made.filter((id) => id.startsWith('pay_'));
    const derived = records.map((id) => derivedId('evt', clock.now(), id));
    expect(new Set([...made, ...derived]).size).toBe(1500);
    expect(derivedId('evt', clock.now() + 1, records[0] as string)).not.toBe(derived[0]);
  });
});

describe('timeOfId: the time an id was made', () => {
  it('reads the time back from an id of any prefix, the largest time a ULID holds included; undefined for an id without a ULID', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 15, 12, 0, 0));
    const ids = createIdFactory(clock);
    expect(timeOfId(ids('bk'))).toBe(Date.UTC(2026, 0, 15, 12, 0, 0));
    const ulid = monotonicUlid();
    ulid(5000);
    expect(timeOfId(`evt_${ulid(1)}`)).toBe(5000); // time went back: the ULID keeps the last time
    expect(timeOfId(`bk_${monotonicUlid()(2 ** 48 - 1)}`)).toBe(2 ** 48 - 1);
    expect(timeOfId('bk_7ZZZZZZZZZ0000000000000000')).toBe(2 ** 48 - 1);
    expect(timeOfId('bk_8000000000AAAAAAAAAAAAAAAA')).toBeUndefined(); // past 48 bits
    for (const id of ['pay_tx-1', 'bk_', 'bk_01ARZ3NDEKTSV4RRFFQ69G5FA', 'bk_01ARZ3NDEKTSV4RRFFQ69G5FAVU']) expect(timeOfId(id)).toBeUndefined();
    expect(timeOfId('bk_01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBe(1469922850259);
  });
});
