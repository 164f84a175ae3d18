import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPerformancesFile } from '../../src/adapters/performances-file.ts';
import { DEFAULT_PERFORMANCES, parsePerformances, type Performance } from '../../src/core/bookings/performances.ts';

const seatCount = (p: Performance): number => p.rows.length * p.seatsPerRow;

const MINIMAL = { id: 'perf_x', title: 'Show', venue: 'Hall', startsAt: '2026-05-01T19:30:00+09:00' };

function parseError(json: unknown): string {
  try {
    parsePerformances(json);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('parsePerformances accepted the input');
}

describe('DEFAULT_PERFORMANCES', () => {
  it('has perf_001…perf_003 with the default grid and price, and a small one', () => {
    expect(DEFAULT_PERFORMANCES.map((p) => p.id)).toEqual(['perf_001', 'perf_002', 'perf_003']);
    const [first, second, small] = DEFAULT_PERFORMANCES;
    expect(first).toMatchObject({ rows: ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'], seatsPerRow: 20, priceMinor: 30000, currency: 'KRW' });
    expect(seatCount(first!)).toBe(200);
    expect(seatCount(second!)).toBe(200);
    expect(small).toMatchObject({ rows: ['A', 'B'], seatsPerRow: 10 });
    for (const p of DEFAULT_PERFORMANCES) {
      expect(p.title.length).toBeGreaterThan(0);
      expect(p.venue.length).toBeGreaterThan(0);
      expect(new Date(p.startsAt).toISOString()).toBe(p.startsAt);
    }
  });

  it('passes its own validation unchanged', () => {
    expect(parsePerformances(JSON.parse(JSON.stringify(DEFAULT_PERFORMANCES)))).toEqual(DEFAULT_PERFORMANCES);
  });
});

describe('parsePerformances', () => {
  it('fills in the default grid, price and currency and normalises startsAt to UTC with milliseconds', () => {
    expect(parsePerformances([MINIMAL])).toEqual([
      {
        id: 'perf_x',
        title: 'Show',
        venue: 'Hall',
        startsAt: '2026-05-01T10:30:00.000Z',
        rows: ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'],
        seatsPerRow: 20,
        priceMinor: 30000,
        currency: 'KRW',
      },
    ]);
  });

  it('keeps given values', () => {
    const [p] = parsePerformances([{ ...MINIMAL, rows: ['AA', 'BB'], seatsPerRow: 3, priceMinor: 1250, currency: 'USD' }]);
    expect(p).toMatchObject({ rows: ['AA', 'BB'], seatsPerRow: 3, priceMinor: 1250, currency: 'USD' });
  });

  it.each([
    [{}, 'Invalid performances: (root): must be a list (a JSON array)'],
    [[], 'Invalid performances: (root): must not be empty'],
    [[{ id: 'perf_x', venue: 'Hall', startsAt: MINIMAL.startsAt }], 'Invalid performances: /0/title: is required'],
    [[MINIMAL, { ...MINIMAL, id: 'b', seatsPerRow: 1.5 }], 'Invalid performances: /1/seatsPerRow: must be a whole number'],
    [[{ ...MINIMAL, seatsPerRow: 0 }], 'Invalid performances: /0/seatsPerRow: must be at least 1'],
    [[{ ...MINIMAL, priceMinor: 0 }], 'Invalid performances: /0/priceMinor: must be at least 1'],
    [[{ ...MINIMAL, currency: 'krw' }], 'Invalid performances: /0/currency: must be an ISO 4217 code in capitals, such as KRW or USD'],
    [[{ ...MINIMAL, rows: ['A', 'b'] }], 'Invalid performances: /0/rows/1: must be one to three capital letters (A, B, … AA)'],
    [[{ ...MINIMAL, startsAt: 'tomorrow' }], 'Invalid performances: /0/startsAt: must be an ISO 8601 date-time with its offset, such as 2026-03-01T19:00:00+09:00'],
    [[{ ...MINIMAL, seats: 20 }], 'Invalid performances: /0/seats: is not a known field'],
    [[{ ...MINIMAL, id: 'p 1' }], 'Invalid performances: /0/id: must be letters, digits, _ or -'],
    [[MINIMAL, MINIMAL], 'Invalid performances: /1/id: duplicate id perf_x'],
    [[{ ...MINIMAL, rows: ['A', 'B', 'A'] }], 'Invalid performances: /0/rows/2: duplicate row A'],
  ])('refuses %j naming the field', (json, message) => {
    expect(parseError(json)).toBe(message);
  });

  it('answers with one line', () => {
    expect(parseError([{ id: '', title: '', venue: '', startsAt: '' }])).not.toContain('\n');
  });
});

describe('loadPerformancesFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-perf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and validates a JSON file', () => {
    const path = join(dir, 'good.json');
    writeFileSync(path, JSON.stringify([MINIMAL, { ...MINIMAL, id: 'perf_y', rows: ['A'], seatsPerRow: 5 }]));
    expect(loadPerformancesFile(path).map((p) => [p.id, seatCount(p)])).toEqual([
      ['perf_x', 200],
      ['perf_y', 5],
    ]);
  });

  it('names the variable, the path and the rule', () => {
    const missing = join(dir, 'missing.json');
    expect(() => loadPerformancesFile(missing)).toThrow(`PERFORMANCES_FILE: cannot read ${missing}: ENOENT`);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '[{');
    expect(() => loadPerformancesFile(bad)).toThrow(new Error(`PERFORMANCES_FILE: ${bad} is not valid JSON: Unexpected end of input (expected a property name in double quotes or '}') at line 1, column 3`));
    // What the file holds is never printed (2026-12-05, a security review: V8's message quoted its first characters, and an .env named by mistake showed its secret).
    const secrets = join(dir, 'secrets.env');
    writeFileSync(secrets, 'WEBHOOK_SECRET=whsec_c2VjcmV0\n');
    expect(() => loadPerformancesFile(secrets)).toThrow(new Error(`PERFORMANCES_FILE: ${secrets} is not valid JSON: Unexpected token W (expected a value) at line 1, column 1`));
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify([{ ...MINIMAL, seatsPerRow: 'twenty' }]));
    expect(() => loadPerformancesFile(wrong)).toThrow(`PERFORMANCES_FILE: ${wrong}: Invalid performances: /0/seatsPerRow: must be a whole number`);
  });
});
