import { offeredChoice } from './forms.ts';
import { noCounts, STATUS_GROUPS, type PaymentRow, type PaymentSource, type StatusGroup } from './sources.ts';

/**
 * The Payments page's list (pages/payments.ts renders it): every chosen source's payments merged
 * newest first, with the filters of the page's query string and the Older link's cursor, which
 * keeps each source's place in its store's own order.
 */

/** Rows shown. */
export const SHOWN = 100;
/** Rows a page of a filtered list (a status or a search) reads at most, over every source, before it stops and links on from there. */
export const READ_PER_PAGE = 5000;
/** Rows read from a source at a time: a page without a filter needs SHOWN (and one more, to know there are older ones); a filtered one reads more at a time. */
const BATCH = SHOWN + 1;
const FILTERED_BATCH = 500;

/** Where a source's list goes on: after its store's cursor (undefined: from the newest); null: none left. */
type Position = string | undefined | null;

/**
 * An Older link's cursor: the creation time and id of the last payment read (to say where the page
 * starts), the time the first page was read (`since`: a payment created after it is not on the
 * older pages, though a source the pages have not reached yet still lists it first), and each
 * chosen source's position (the merge goes on from there in every source). Sent as base64url JSON:
 * `{"at":…,"id":…,"t":…,"p":{"<dialect>":"<store cursor>" ('': from the newest) or 0 (none left)}}`.
 */
export interface PageCursor {
  at: number;
  id: string;
  since: number;
  positions: Readonly<Record<string, Position>>;
}

export interface PaymentFilters {
  dialect?: string | undefined;
  status?: string | undefined;
  q?: string | undefined;
  /** Payments listed after these (an Older link's `cursor`). */
  before?: PageCursor | undefined;
}

const MAX_CURSOR = 4000;
/** The latest time a Date holds (ms): a cursor's `at` past it could not be shown (toISOString throws). */
const MAX_TIME = 8.64e15;

function encodeCursor(cursor: PageCursor): string {
  const p = Object.fromEntries(Object.entries(cursor.positions).map(([dialect, at]) => [dialect, at === null ? 0 : (at ?? '')]));
  return Buffer.from(JSON.stringify({ at: cursor.at, id: cursor.id, t: cursor.since, p })).toString('base64url');
}

/** The cursor `given` names, checked against the sources (their store cursors' shapes); undefined when it is not one. */
function decodeCursor(sources: readonly PaymentSource[], given: string): PageCursor | undefined {
  if (given.length > MAX_CURSOR || !/^[\w-]+$/.test(given)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(given, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { at, id, t, p } = parsed as Record<string, unknown>;
  const time = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_TIME;
  if (!time(at) || !time(t) || typeof id !== 'string' || id === '' || id.length > 200 || typeof p !== 'object' || p === null || Array.isArray(p)) return undefined;
  const positions: Record<string, Position> = {};
  for (const [dialect, value] of Object.entries(p)) {
    const source = sources.find((s) => s.dialect === dialect);
    if (source === undefined) return undefined;
    if (value === 0) positions[dialect] = null;
    else if (value === '') positions[dialect] = undefined;
    else if (typeof value === 'string' && source.cursor.test(value)) positions[dialect] = value;
    else return undefined;
  }
  return { at, id, since: t, positions };
}

/** The filters of the page's query string; a dialect or status the page does not offer is left out and said in `invalid` (`all` is the empty choice). */
export function readPaymentFilters(sources: readonly PaymentSource[], q: Readonly<Record<string, string | undefined>>): { filters: PaymentFilters; invalid: string[] } {
  const invalid: string[] = [];
  const dialect = offeredChoice('Dialect', q.dialect, sources.map((s) => s.dialect), invalid);
  const status = offeredChoice('Status', q.status, STATUS_GROUPS, invalid);
  const search = (q.q ?? '').trim().slice(0, 200);
  const given = (q.cursor ?? '').trim();
  const before = given === '' ? undefined : decodeCursor(sources, given);
  if (given !== '' && before === undefined) invalid.push(`Cursor “${given.slice(0, 100)}” is invalid (an Older link’s): showing the newest payments.`);
  return { filters: { dialect, status, q: search === '' ? undefined : search, before }, invalid };
}

export interface Listed {
  rows: PaymentRow[];
  counts: Record<StatusGroup, number>;
  /** What the counts cover: every stored payment (of the chosen dialect), or only those this page read that match the search. */
  countsCover: 'all' | 'scanned';
  /** The search is a payment's exact id, found by a lookup (wherever it is among the stored ones); on the first page only, which alone shows and counts it. */
  foundById: boolean;
  /** The statuses of the payments found by id that the status filter leaves out (so not shown). */
  foundLeftOut: StatusGroup[];
  /** The cursor of the next page; null on the last. */
  older: string | null;
  /** Rows this page read (a filtered page reads on until SHOWN match or READ_PER_PAGE are read). */
  read: number;
  /** The filtered page stopped after READ_PER_PAGE rows, before SHOWN matched: `older` goes on from there. */
  stopped: boolean;
}

/** What an id looks like (a search with spaces or longer than any id is not looked up). */
const ID_LIKE = /^[^\s]{1,128}$/;

/** A ULID-keyed id as typed, in any case (`pay_01m9…`): its prefix lower-case, its ULID upper-case, as ids are made. */
const ULID_ID = /^([A-Za-z]+)_([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26})$/;

/** The ids a search is looked up as: as typed, and a ULID-keyed id in the case ids are made in. */
function idForms(search: string): string[] {
  const ulid = ULID_ID.exec(search);
  const made = ulid === null ? search : `${(ulid[1] as string).toLowerCase()}_${(ulid[2] as string).toUpperCase()}`;
  return made === search ? [search] : [search, made];
}

/** The payments found by id, each once. */
function distinctFound(found: ReadonlyArray<PaymentRow | undefined>): PaymentRow[] {
  const byKey = new Map<string, PaymentRow>();
  for (const row of found) if (row !== undefined) byKey.set(`${row.dialect}/${row.id}`, row);
  return [...byKey.values()];
}

/** One source's list as the merge reads it: the rows of its current store page not taken yet. */
interface Reader {
  source: PaymentSource;
  /** The cursor after the last row taken (undefined: none taken, from the newest). */
  after: string | undefined;
  /** Whether a store page has been read (`rows`, `cursors`, `next`). */
  loaded: boolean;
  /** The rows of that page not taken yet, and their cursors. */
  rows: PaymentRow[];
  cursors: string[];
  /** The store page's nextCursor. */
  next: string | null;
  /** No rows left. */
  done: boolean;
}

const newer = (a: PaymentRow, b: PaymentRow): boolean => a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);

/** Reads the reader's next store page once it has taken every row of the one it has. */
async function fill(reader: Reader, batch: number): Promise<void> {
  // A store page may be empty and still have a next one (a store's walk cut short, over evicted
  // entries): read on from where it stopped until there are rows or none are left. Each read moves
  // on (its walk's budget), and a memory store's evicted entries are fewer than half of its list;
  // stopping after a few reads left the merge with no row of this source and ended the list there.
  while (reader.rows.length === 0 && !reader.done) {
    if (reader.loaded && reader.next === null) {
      reader.done = true;
      return;
    }
    const asked = reader.loaded ? (reader.next as string) : reader.after;
    const page = await reader.source.list({ limit: batch, cursor: asked });
    // An empty page that does not move on (a store's fault): nothing more from this source, never a loop in the request.
    if (page.data.length === 0 && page.nextCursor === asked) {
      reader.done = true;
      return;
    }
    reader.loaded = true;
    reader.rows = [...page.data];
    reader.cursors = [...page.cursors];
    reader.next = page.nextCursor;
    // An empty page with a next one: the reader is past it.
    if (page.data.length === 0 && page.nextCursor !== null) reader.after = page.nextCursor;
  }
}

/** Where the reader goes on after the rows it has taken. */
function positionOf(reader: Reader): Position {
  if (reader.done || (reader.loaded && reader.rows.length === 0 && reader.next === null)) return null;
  return reader.after;
}

/** The next page's cursor: its label the last payment read here (or, when this page only skipped newer ones, the one the page began after). */
function olderCursor(last: PaymentRow | undefined, before: PageCursor | undefined, since: number, positions: Record<string, Position>): string | null {
  const from = last === undefined ? before : { at: last.createdAt, id: last.id };
  return from === undefined ? null : encodeCursor({ at: from.at, id: from.id, since, positions });
}

/**
 * The list pages through every stored payment of the chosen dialects, newest first: each source's
 * store is read in pages from where the previous page stopped in it (the cursor keeps one position
 * per source), and the sources' rows are merged by (createdAt, id). A page without a filter shows
 * SHOWN; with a status or a search, it reads on until SHOWN match or READ_PER_PAGE rows are read,
 * then links on from where it stopped. The counts are exact over everything stored (the sources'
 * kept counts) unless a search narrows them, which no store can count: then they are over the
 * rows this page read, and the page says so. A search that is a payment's exact id (in any
 * dialect: pay_…, bk_…, an /api/v2 id, a FluxPay orderId or paymentKey) finds it by a lookup,
 * however old it is: it is shown on the first page (and not again on later ones).
 */
export async function listPayments(sources: readonly PaymentSource[], filters: PaymentFilters, now: number): Promise<Listed> {
  const chosen = sources.filter((s) => filters.dialect === undefined || filters.dialect === '' || s.dialect === filters.dialect);
  const search = (filters.q ?? '').trim();
  const needle = search.toLowerCase();
  const status = filters.status === undefined || filters.status === '' ? undefined : filters.status;
  const filtered = status !== undefined || needle !== '';
  const batch = filtered ? FILTERED_BATCH : BATCH;
  // The older pages list what there was when the first one was read.
  const since = filters.before?.since;
  // A source the cursor does not name (not chosen when it was made) starts from its newest.
  const readers: Reader[] = chosen.map((source) => {
    const position = filters.before?.positions[source.dialect];
    return { source, after: position ?? undefined, loaded: false, rows: [], cursors: [], next: null, done: position === null };
  });
  const [stored, exact] = await Promise.all([
    needle === '' ? Promise.all(chosen.map((s) => s.counts())) : undefined,
    ID_LIKE.test(search) ? Promise.all(idForms(search).flatMap((id) => chosen.map((s) => s.find(id)))).then(distinctFound) : [],
  ]);
  const foundKeys = new Set(exact.map((r) => `${r.dialect}/${r.id}`));
  const searched = (r: PaymentRow): boolean => needle === '' || r.id.toLowerCase().includes(needle) || r.reference.toLowerCase().includes(needle);
  const counts = noCounts();
  const rows: PaymentRow[] = [];
  let last: PaymentRow | undefined;
  let read = 0;
  let more = false;
  let stopped = false;
  for (;;) {
    await Promise.all(readers.map((r) => fill(r, batch)));
    let next: Reader | undefined;
    for (const r of readers) if (r.rows.length > 0 && (next === undefined || newer(r.rows[0] as PaymentRow, next.rows[0] as PaymentRow))) next = r;
    if (next === undefined) break;
    const row = next.rows[0] as PaymentRow;
    // Made after the first page was read (in a source the pages had not reached): passed over, not an older payment.
    const madeSince = since !== undefined && row.createdAt > since;
    // Found by the lookup: shown on the first page only.
    const matches = !madeSince && searched(row) && !foundKeys.has(`${row.dialect}/${row.id}`);
    const shown = matches && (status === undefined || row.group === status);
    if (shown && rows.length === SHOWN) {
      more = true;
      break;
    }
    next.rows.shift();
    next.after = next.cursors.shift();
    read++;
    if (!madeSince) last = row;
    if (matches && stored === undefined) counts[row.group]++;
    if (shown) rows.push(row);
    // Only a filtered page, or one passing over what was made since, can read this many (an unfiltered one shows each row it takes).
    if (read >= READ_PER_PAGE) {
      stopped = rows.length < SHOWN;
      more = true;
      break;
    }
  }
  const positions = Object.fromEntries(readers.map((r) => [r.source.dialect, positionOf(r)]));
  if (more && Object.values(positions).every((p) => p === null)) more = false;
  // The payment found by id is shown and counted on the first page only (an older page still
  // looks it up, so that its scan passes over it rather than showing it again).
  const firstPage = filters.before === undefined;
  if (stored !== undefined) for (const c of stored) for (const g of STATUS_GROUPS) counts[g] += c[g];
  else if (firstPage) for (const r of exact) counts[r.group]++;
  const exactShown = exact.filter((r) => status === undefined || r.group === status);
  if (firstPage) rows.push(...exactShown);
  const foundLeftOut = exactShown.length > 0 ? [] : [...new Set(exact.map((r) => r.group))];
  rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  return {
    rows,
    counts,
    countsCover: stored === undefined ? 'scanned' : 'all',
    foundById: exact.length > 0 && firstPage,
    foundLeftOut,
    older: more ? olderCursor(last, filters.before, since ?? now, positions) : null,
    read,
    stopped: stopped && more,
  };
}
