import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { ruleWords } from '../rule-words.ts';

/**
 * The performance catalog: what can be booked, where its seats are and what a seat costs.
 * Given at start: `PERFORMANCES_FILE` (a JSON array, read by adapters/performances-file.ts and
 * validated here) or `DEFAULT_PERFORMANCES`.
 * @see issue 4 "Performances", ../../../shared/seeds/003_2d28ecb358825d26.txt (30,000 per seat)
 */

export interface Performance {
  id: string;
  title: string;
  venue: string;
  /** ISO 8601 UTC with milliseconds. */
  startsAt: string;
  /** Row labels, front to back: `A`…`J` by default. A seat id is the row label and the seat number: `C7`. */
  rows: string[];
  /** Seats in every row, numbered from 1. */
  seatsPerRow: number;
  /** The price of one seat in minor units of `currency` (KRW has none: 30000 is ₩30,000). */
  priceMinor: number;
  /** ISO 4217. */
  currency: string;
}

export const DEFAULT_ROWS: readonly string[] = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];
export const DEFAULT_SEATS_PER_ROW = 20;
export const DEFAULT_PRICE_MINOR = 30_000;
export const DEFAULT_CURRENCY = 'KRW';

/**
 * Three performances: two full halls of 10 rows × 20 seats (200 seats) and a small theatre of
 * 2 rows × 10 seats (20 seats) that sells out quickly. Times are evening shows in KST, given in UTC.
 */
export const DEFAULT_PERFORMANCES: readonly Performance[] = Object.freeze([
  {
    id: 'perf_001',
    title: '뮤지컬 〈오페라의 유령〉',
    venue: '블루스퀘어 신한카드홀',
    startsAt: '2026-03-14T10:00:00.000Z',
    rows: [...DEFAULT_ROWS],
    seatsPerRow: DEFAULT_SEATS_PER_ROW,
    priceMinor: DEFAULT_PRICE_MINOR,
    currency: DEFAULT_CURRENCY,
  },
  {
    id: 'perf_002',
    title: '조성진 피아노 리사이틀',
    venue: '예술의전당 콘서트홀',
    startsAt: '2026-04-02T10:30:00.000Z',
    rows: [...DEFAULT_ROWS],
    seatsPerRow: DEFAULT_SEATS_PER_ROW,
    priceMinor: DEFAULT_PRICE_MINOR,
    currency: DEFAULT_CURRENCY,
  },
  {
    id: 'perf_003',
    title: '연극 〈늘근도둑 이야기〉',
    venue: '대학로 아트원씨어터 3관',
    startsAt: '2026-02-20T11:00:00.000Z',
    rows: ['A', 'B'],
    seatsPerRow: 10,
    priceMinor: DEFAULT_PRICE_MINOR,
    currency: DEFAULT_CURRENCY,
  },
]);

/**
 * The file's shape. `rows`, `seatsPerRow`, `priceMinor` and `currency` may be left out and take
 * the defaults above. Bounds keep one catalog's seat maps small enough to hold in memory.
 */
const PerformanceFileEntry = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
    title: Type.String({ minLength: 1, maxLength: 200 }),
    venue: Type.String({ minLength: 1, maxLength: 200 }),
    startsAt: Type.String({ format: 'date-time' }),
    rows: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]{1,3}$' }), { minItems: 1, maxItems: 100 })),
    seatsPerRow: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
    priceMinor: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
  },
  { additionalProperties: false },
);

const PerformanceFile = Type.Array(PerformanceFileEntry, { minItems: 1, maxItems: 1000 });

type PerformanceFileEntry = Static<typeof PerformanceFileEntry>;

/** The patterns of the catalog's fields in words, by field (a row is an item of `rows`). */
const PATTERN_WORDS: Readonly<Record<string, string>> = {
  id: 'must be letters, digits, _ or -',
  rows: 'must be one to three capital letters (A, B, … AA)',
  currency: 'must be an ISO 4217 code in capitals, such as KRW or USD',
};

/** The field a JSON pointer names, an array's item named by the array (`/0/rows/2` → `rows`). */
function fieldOf(pointer: string): string {
  const parts = pointer.split('/').filter((part) => part !== '' && !/^\d+$/.test(part));
  return parts.at(-1) ?? '';
}

/**
 * Validates a parsed catalog and fills in defaults. Throws an Error whose one-line message names
 * the first bad field as a JSON pointer (`/1/seatsPerRow: must be a whole number`), its rule in
 * words (`ruleWords`; a pattern's from PATTERN_WORDS).
 */
export function parsePerformances(json: unknown): Performance[] {
  const errors = Value.Errors(PerformanceFile, json);
  const first = errors.find((e) => e.keyword !== 'boolean') ?? errors[0];
  if (first !== undefined) {
    let field = first.instancePath;
    let message = (first.keyword === 'pattern' ? PATTERN_WORDS[fieldOf(first.instancePath)] : undefined) ?? ruleWords(first) ?? first.message;
    if (first.keyword === 'required') {
      const missing = first.params.requiredProperties[0];
      if (missing !== undefined) {
        field = `${field}/${missing}`;
        message = 'is required';
      }
    } else if (first.keyword === 'additionalProperties') {
      const extra = first.params.additionalProperties[0];
      if (extra !== undefined) {
        field = `${field}/${extra}`;
        message = 'is not a known field';
      }
    }
    throw new Error(`Invalid performances: ${field === '' ? '(root)' : field}: ${message}`);
  }
  const entries = json as PerformanceFileEntry[];
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    if (seen.has(entry.id)) throw new Error(`Invalid performances: /${i}/id: duplicate id ${entry.id}`);
    seen.add(entry.id);
    const rows = entry.rows ?? [...DEFAULT_ROWS];
    const rowSet = new Set<string>();
    rows.forEach((row, r) => {
      if (rowSet.has(row)) throw new Error(`Invalid performances: /${i}/rows/${r}: duplicate row ${row}`);
      rowSet.add(row);
    });
    const startsAt = Date.parse(entry.startsAt);
    if (Number.isNaN(startsAt)) throw new Error(`Invalid performances: /${i}/startsAt: must be an ISO 8601 date-time`);
    return {
      id: entry.id,
      title: entry.title,
      venue: entry.venue,
      startsAt: new Date(startsAt).toISOString(),
      rows: [...rows],
      seatsPerRow: entry.seatsPerRow ?? DEFAULT_SEATS_PER_ROW,
      priceMinor: entry.priceMinor ?? DEFAULT_PRICE_MINOR,
      currency: entry.currency ?? DEFAULT_CURRENCY,
    };
  });
}

/** The id of a seat: its row label followed by its number, `C7`. */
export function seatId(row: string, number: number): string {
  return `${row}${number}`;
}

/** The catalog: what can be booked. Lookups return copies. */
export class Catalog {
  readonly #byId: ReadonlyMap<string, Performance>;

  constructor(performances: readonly Performance[]) {
    this.#byId = new Map(performances.map((p) => [p.id, p]));
  }

  all(): Performance[] {
    return [...this.#byId.values()].map(copyPerformance);
  }

  /** One performance; undefined when unknown. */
  find(id: string): Performance | undefined {
    const performance = this.#byId.get(id);
    return performance === undefined ? undefined : copyPerformance(performance);
  }
}

function copyPerformance(p: Performance): Performance {
  return { ...p, rows: [...p.rows] };
}
