import type { Subject } from '../core/deliveries.ts';
import { DomainError } from '../core/errors.ts';
import type { DomainEvent } from '../core/events.ts';
import type { Page } from '../core/ports.ts';
import { query, type Html } from './html.ts';

/**
 * What the console shows is assembled from sources, one per dialect or domain, so a new dialect
 * plugs in by adding one object to a list (src/console/index.ts), without touching the pages:
 * - a `PaymentSource` puts its payments into the one payments view (list, counts, filters, detail,
 *   actions; the decisions chart counts from the bus instead, src/console/series.ts);
 * - a `Panel` is one box of a panel page (the bookings page: seat maps, inbox, ledger);
 * - both say which bus events concern them (`topic`), so the live feed knows what to refresh.
 * Sources read and act through the same core services as the APIs, never around a state machine.
 * @see issue 13 "What it shows and does"
 */

/** The statuses every dialect's payment is grouped into, for the filters and the counts (document 001: pending / completed / failed). */
export const STATUS_GROUPS = ['pending', 'completed', 'failed', 'cancelled', 'refunded'] as const;
export type StatusGroup = (typeof STATUS_GROUPS)[number];

/** Refresh topics: a live region lists the topics it shows; the feed names the topics an event touched. */
export type Topic = 'payments' | 'webhooks' | 'bookings' | (string & {});

export interface PaymentRow {
  /** The source's `dialect`. */
  dialect: string;
  id: string;
  /** What the client called it: reservation id, order id, booking's user. */
  reference: string;
  amount: number;
  currency: string;
  /** The dialect's own status word. */
  status: string;
  group: StatusGroup;
  createdAt: number;
  updatedAt: number;
}

export interface HistoryEntry {
  at: number;
  status: string;
  note: string;
  /** The bus event the change published. */
  event: string;
}

/** A state-changing action on one payment: a form posted to `/console/payments/<dialect>/<id>/<name>`. */
export interface PaymentAction {
  name: string;
  label: string;
  /** Optional inputs (e.g. a refund's amount). */
  fields?: ReadonlyArray<{ name: string; label: string; type: 'number' | 'text'; required: boolean; hint?: string }>;
}

export interface PaymentDetail {
  row: PaymentRow;
  /** Label and value, shown as a definition list. */
  fields: ReadonlyArray<readonly [string, string]>;
  /** Derived from the record's own timestamps, oldest first. */
  history: HistoryEntry[];
  /** Its webhook deliveries are those of this subject. */
  subject: Subject;
  /** Actions allowed in its current state (the service still guards each). */
  actions: PaymentAction[];
}

export interface PaymentSource {
  /** Short, URL-safe: `intent`, `v2`, `booking`, `fluxpay`. */
  dialect: string;
  /** Shown in the dialect filter and the list. */
  label: string;
  /**
   * A page of its payments in its store's own order, newest first (creation order: by id for the
   * ULID-keyed stores, by creation sequence for /api/v2), after `cursor` (undefined: from the
   * newest). The payments list merges these pages.
   */
  list(query: { limit: number; cursor?: string | undefined }): Promise<RowPage>;
  /** What a cursor of its store looks like: one from an Older link is checked against it before the store sees it. */
  cursor: RegExp;
  /** Every stored payment of this source by status group: exact, from counts the store keeps (no scan). */
  counts(): Promise<Record<StatusGroup, number>>;
  get(id: string): Promise<PaymentDetail | undefined>;
  /** The row of the payment with exactly this id (or another id it is known by, as a FluxPay paymentKey), however old: one lookup, for the search. */
  find(id: string): Promise<PaymentRow | undefined>;
  /** Runs an action through the dialect's service; the message to show, or throws a DomainError. */
  act?(id: string, action: string, input: Readonly<Record<string, string>>): Promise<string>;
  /** Whether a bus event changes what this source lists. */
  concerns(event: DomainEvent): boolean;
}

/** One box of a panel page. `render` reads its data and returns its inner HTML; `query` is the page's query string (a panel's own paging). */
export interface Panel {
  id: string;
  title: string;
  /** A table too wide for half the page: the panel takes a row of its own. */
  wide?: boolean;
  /**
   * false: not refreshed by the live feed. Rendered when the page is loaded, never for a refresh
   * (assets/console.js fetches the whole page for one), and its region is never swapped: for a
   * panel whose read is costly, which a refresh up to five times a second would repeat.
   */
  live?: false;
  render(query?: Readonly<Record<string, string | undefined>>): Promise<Html>;
}

export interface PanelPage {
  /** `/console/<path>` */
  path: string;
  title: string;
  topic: Topic;
  panels: Panel[];
  /** Whether a bus event changes what this page shows. */
  concerns(event: DomainEvent): boolean;
}

/** `undefined` when `error` says the record does not exist (NOT_FOUND); any other error (the store away) is rethrown, for the console's error page. */
export function absentIfNotFound(error: unknown): undefined {
  if (error instanceof DomainError && error.code === 'NOT_FOUND') return undefined;
  throw error;
}

/** A cursor of the stores that list by id: the id, `<prefix>_<ULID>`. */
export function ulidCursor(prefix: string): RegExp {
  return new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`);
}

/** A page of a source's rows, with each row's own cursor (a list from it goes on after that row; the id where the store pages by id). */
export interface RowPage extends Page<PaymentRow> {
  cursors: readonly string[];
}

/** A page of a store that pages by id as a page of rows. */
export function rowsOf<T>(page: Page<T>, row: (record: T) => PaymentRow): RowPage {
  const data = page.data.map(row);
  return { data, cursors: data.map((r) => r.id), nextCursor: page.nextCursor };
}

/** Counts by status group, all 0. */
export function noCounts(): Record<StatusGroup, number> {
  return Object.fromEntries(STATUS_GROUPS.map((g) => [g, 0])) as Record<StatusGroup, number>;
}

/** Counts by a dialect's own statuses, summed into status groups. */
export function groupCounts<S extends string>(byStatus: Readonly<Record<S, number>>, groups: Readonly<Record<S, StatusGroup>>): Record<StatusGroup, number> {
  const counts = noCounts();
  for (const status of Object.keys(groups) as S[]) counts[groups[status]] += byStatus[status];
  return counts;
}

/** The Webhooks page listing the deliveries of `subject` (its subject filter). */
export function deliveriesOf(subject: Subject): string {
  return `/console/webhooks${query({ subject: `${subject.kind}:${subject.id}` })}`;
}
