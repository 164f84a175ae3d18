import type { Delivery } from '../../core/deliveries.ts';
import { MAX_MIX_WEIGHT } from '../../core/faults/mix.ts';
import { SCENARIOS } from '../../core/scenario.ts';
import { MIX_WEIGHT_FIELDS, offeredChoice } from '../forms.ts';
import { html, iso, money, query, wholeNumber, type Html } from '../html.ts';
import { csrfInput, notice, page, type PageContext } from '../layout.ts';
import { noCounts, STATUS_GROUPS, type PaymentDetail, type PaymentRow, type PaymentSource, type StatusGroup } from '../sources.ts';

/**
 * The payments view: every source's payments in one list (filters by dialect, status group and
 * id; counts by status), the create form (a native intent by scenario or card, or a /api/v2
 * payment), and one payment's detail with its state history, events, deliveries and actions.
 * @see issue 13 "Payments", "Create"
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
 * starts), and each chosen source's position (the merge goes on from there in every source). Sent
 * as base64url JSON: `{"at":…,"id":…,"p":{"<dialect>":"<store cursor>" ('': from the newest) or 0 (none left)}}`.
 */
export interface PageCursor {
  at: number;
  id: string;
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
  return Buffer.from(JSON.stringify({ at: cursor.at, id: cursor.id, p })).toString('base64url');
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
  const { at, id, p } = parsed as Record<string, unknown>;
  if (!Number.isSafeInteger(at) || (at as number) < 0 || (at as number) > MAX_TIME || typeof id !== 'string' || id === '' || id.length > 200 || typeof p !== 'object' || p === null || Array.isArray(p)) return undefined;
  const positions: Record<string, Position> = {};
  for (const [dialect, value] of Object.entries(p)) {
    const source = sources.find((s) => s.dialect === dialect);
    if (source === undefined) return undefined;
    if (value === 0) positions[dialect] = null;
    else if (value === '') positions[dialect] = undefined;
    else if (typeof value === 'string' && source.cursor.test(value)) positions[dialect] = value;
    else return undefined;
  }
  return { at: at as number, id, positions };
}

export const NOTICES: Readonly<Record<string, string>> = {
  created: 'Payment created.',
  cancel: 'Intent cancelled.',
  refund: 'Refund made.',
  confirm: 'Payment confirmed.',
  cancel_order: 'Order cancelled.',
};

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
  /** The search is a payment's exact id, found by a lookup (wherever it is among the stored ones). */
  foundById: boolean;
  /** The cursor of the next page; null on the last. */
  older: string | null;
  /** Rows this page read (a filtered page reads on until SHOWN match or READ_PER_PAGE are read). */
  read: number;
  /** The filtered page stopped after READ_PER_PAGE rows, before SHOWN matched: `older` goes on from there. */
  stopped: boolean;
}

/** What an id looks like (a search with spaces or longer than any id is not looked up). */
const ID_LIKE = /^[^\s]{1,128}$/;

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
export async function listPayments(sources: readonly PaymentSource[], filters: PaymentFilters): Promise<Listed> {
  const chosen = sources.filter((s) => filters.dialect === undefined || filters.dialect === '' || s.dialect === filters.dialect);
  const search = (filters.q ?? '').trim();
  const needle = search.toLowerCase();
  const status = filters.status === undefined || filters.status === '' ? undefined : filters.status;
  const filtered = status !== undefined || needle !== '';
  const batch = filtered ? FILTERED_BATCH : BATCH;
  // A source the cursor does not name (not chosen when it was made) starts from its newest.
  const readers: Reader[] = chosen.map((source) => {
    const position = filters.before?.positions[source.dialect];
    return { source, after: position ?? undefined, loaded: false, rows: [], cursors: [], next: null, done: position === null };
  });
  const [stored, exact] = await Promise.all([
    needle === '' ? Promise.all(chosen.map((s) => s.counts())) : undefined,
    ID_LIKE.test(search) ? Promise.all(chosen.map((s) => s.find(search))).then((found) => found.filter((r) => r !== undefined)) : [],
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
    // Found by the lookup: shown on the first page only.
    const matches = searched(row) && !foundKeys.has(`${row.dialect}/${row.id}`);
    const shown = matches && (status === undefined || row.group === status);
    if (shown && rows.length === SHOWN) {
      more = true;
      break;
    }
    next.rows.shift();
    next.after = next.cursors.shift();
    last = row;
    read++;
    if (matches && stored === undefined) counts[row.group]++;
    if (shown) rows.push(row);
    if (filtered && read >= READ_PER_PAGE) {
      stopped = rows.length < SHOWN;
      more = true;
      break;
    }
  }
  const positions = Object.fromEntries(readers.map((r) => [r.source.dialect, positionOf(r)]));
  if (more && Object.values(positions).every((p) => p === null)) more = false;
  if (stored === undefined) for (const r of exact) counts[r.group]++;
  else for (const c of stored) for (const g of STATUS_GROUPS) counts[g] += c[g];
  if (filters.before === undefined) rows.push(...exact.filter((r) => status === undefined || r.group === status));
  rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  return {
    rows,
    counts,
    countsCover: stored === undefined ? 'scanned' : 'all',
    foundById: exact.length > 0,
    older: more && last !== undefined ? encodeCursor({ at: last.createdAt, id: last.id, positions }) : null,
    read,
    stopped: stopped && more,
  };
}

function badge(group: StatusGroup, status: string): Html {
  return html`<span class="badge badge-${group}" data-status="${status}">${status}</span>`;
}

function selectOptions(values: ReadonlyArray<readonly [string, string]>, selected: string | undefined): Html[] {
  return values.map(([value, label]) => html`<option value="${value}"${value === (selected ?? '') ? html` selected` : ''}>${label}</option>`);
}

function filtersForm(sources: readonly PaymentSource[], filters: PaymentFilters): Html {
  return html`<form class="filters" method="get" action="/console/payments" data-remember="payments" role="search" aria-label="Filter payments">
  <div class="field"><label for="f-dialect">Dialect</label><select id="f-dialect" name="dialect">${selectOptions([['', 'all'], ...sources.map((s) => [s.dialect, s.label] as const)], filters.dialect)}</select></div>
  <div class="field"><label for="f-status">Status</label><select id="f-status" name="status">${selectOptions([['', 'all'], ...STATUS_GROUPS.map((g) => [g, g] as const)], filters.status)}</select></div>
  <div class="field"><label for="f-q">Id or reference</label><input id="f-q" name="q" type="search" value="${filters.q ?? ''}" maxlength="200"></div>
  <div class="field buttons"><button type="submit">Filter</button> <a href="/console/payments?dialect=&amp;status=&amp;q=" data-clear-filters="payments">Clear</a></div>
</form>`;
}

/**
 * The weights of scenario mix (forms.ts scenarioChoice reads them): one field per outcome, empty by
 * default; the hint says what empty means, the MIX setting's weights or, without MIX, nothing.
 */
function mixWeights(prefix: string, defaultMix: string | undefined): Html {
  const hint = `${prefix}-mix-hint`;
  return html`<fieldset class="weights"><legend>Mix weights (scenario mix)</legend>
      ${MIX_WEIGHT_FIELDS.map(([outcome, name]) => html`<div class="field"><label for="${prefix}-mix-${outcome}">${outcome}</label><input id="${prefix}-mix-${outcome}" name="${name}" type="number" min="0" max="${String(MAX_MIX_WEIGHT)}" step="1" inputmode="numeric" aria-describedby="${hint}"></div>`)}
      <small id="${hint}">Each payment picks an outcome with probability weight / total. ${defaultMix === undefined ? 'Needed for mix: MIX is not set.' : `Empty: the MIX setting’s ${defaultMix}.`}</small>
    </fieldset>`;
}

function createForms(ctx: PageContext, error: string | undefined, defaultMix: string | undefined): Html {
  return html`<section class="card create" aria-labelledby="create-h">
  <h2 id="create-h">Create a payment</h2>
  ${notice('error', error)}
  <form method="post" action="/console/payments/new/intent" class="stack">
    ${csrfInput(ctx)}
    <fieldset><legend>Native intent (/v1/sim)</legend>
    <div class="field"><label for="c-res">Reservation id</label><input id="c-res" name="reservation_id" required maxlength="128" autocomplete="off"></div>
    <div class="field"><label for="c-amount">Amount (minor units)</label><input id="c-amount" name="amount" type="number" min="1" required value="10000"></div>
    <div class="field"><label for="c-cur">Currency</label><input id="c-cur" name="currency" value="KRW" pattern="[A-Z]{3}" maxlength="3" required></div>
    <div class="field"><label for="c-scn">Scenario</label><select id="c-scn" name="scenario">${SCENARIOS.map((s) => html`<option value="${s}">${s}</option>`)}</select></div>
    ${mixWeights('c', defaultMix)}
    <div class="field"><label for="c-delay">Delay (ms, optional)</label><input id="c-delay" name="delay_ms" type="number" min="0" max="600000"></div>
    <details><summary>Pay by card instead (the CVV decides)</summary>
      <div class="field"><label for="c-card">Card number</label><input id="c-card" name="card_number" inputmode="numeric" maxlength="19" autocomplete="off"></div>
      <div class="field"><label for="c-cvv">CVV</label><input id="c-cvv" name="card_cvv" inputmode="numeric" maxlength="4" autocomplete="off" aria-describedby="c-cvv-hint"><small id="c-cvv-hint">last digit 0, 1 or 9 approves</small></div>
    </details>
    <div class="field"><label for="c-hook">Webhook URL (optional)</label><input id="c-hook" name="webhook_url" type="url" maxlength="2048"></div>
    <button type="submit">Create intent</button>
    </fieldset>
  </form>
  <form method="post" action="/console/payments/new/v2" class="stack">
    ${csrfInput(ctx)}
    <fieldset><legend>Payment Server v3 (/api/v2)</legend>
    <div class="field"><label for="v-tx">tx_id</label><input id="v-tx" name="tx_id" required maxlength="128" autocomplete="off"></div>
    <div class="field"><label for="v-order">Order id</label><input id="v-order" name="order_id" type="number" min="0" required value="1"></div>
    <div class="field"><label for="v-user">User id</label><input id="v-user" name="user_id" type="number" min="0" required value="1"></div>
    <div class="field"><label for="v-amount">Amount (KRW)</label><input id="v-amount" name="amount" type="number" min="1" required value="10000"></div>
    <div class="field"><label for="v-cb">Callback URL</label><input id="v-cb" name="callback_url" type="url" required maxlength="2048"></div>
    <div class="field"><label for="v-scn">Scenario</label><select id="v-scn" name="scenario"><option value="">default (V2_DEFAULT_SCENARIO)</option>${SCENARIOS.map((s) => html`<option value="${s}">${s}</option>`)}</select></div>
    ${mixWeights('v', defaultMix)}
    <button type="submit">Create payment</button>
    </fieldset>
  </form>
</section>`;
}

/** How many rows the list shows, from where, and the links to older ones and back to the newest. */
function footer(listed: Listed, filters: PaymentFilters): Html {
  const link = (cursor: string | undefined): string => `/console/payments${query({ dialect: filters.dialect, status: filters.status, q: filters.q, cursor })}`;
  const from = filters.before === undefined ? '' : html`, older than ${iso(filters.before.at)} (<code>${filters.before.id}</code>)`;
  const newest = filters.before === undefined ? '' : html` <a href="${link(undefined)}" data-page="newest">← Newest</a>`;
  const older = listed.older === null ? '' : html` <a href="${link(listed.older)}" data-page="older">Older →</a>`;
  const filtered = filters.q !== undefined || (filters.status !== undefined && filters.status !== '');
  const stopped = listed.stopped
    ? html` This page read ${wholeNumber(listed.read)} payments (at most ${wholeNumber(READ_PER_PAGE)} a page) and stopped before ${SHOWN} matched: Older goes on from where it stopped.`
    : '';
  const end = listed.older === null && filters.before !== undefined ? html` No older payments${filtered ? ' match' : ''}: this is the end of the list.` : '';
  return html`<p class="hint" data-shown="${String(listed.rows.length)}">${listed.rows.length} shown, newest first${from}${listed.foundById && filters.before === undefined ? ', with the payment whose id the search is' : ''}.${stopped}${end}${newest}${older}</p>`;
}

function table(listed: Listed, sources: readonly PaymentSource[], filters: PaymentFilters): Html {
  const label = new Map(sources.map((s) => [s.dialect, s.label]));
  const dialect = filters.dialect === undefined ? undefined : label.get(filters.dialect);
  const cover =
    listed.countsCover === 'all'
      ? html`<p class="hint" data-counts-cover="all">Counts: ${dialect === undefined ? 'every payment stored' : html`every stored payment of ${dialect}`}.</p>`
      : html`<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the ${wholeNumber(listed.read)} of ${dialect ?? 'every dialect'} this page read${listed.foundById ? ', and the one whose id it is' : ''}.</p>`;
  const counts = html`<ul class="counts" aria-label="Counts by status">${STATUS_GROUPS.map((g) => html`<li><span class="badge badge-${g}">${g}</span> <strong data-count="${g}">${listed.counts[g]}</strong></li>`)}</ul>${cover}`;
  if (listed.rows.length === 0) return html`${counts}<p>No payments match${filters.before === undefined && listed.older === null ? '' : ' on this page'}.</p>${filters.before === undefined && listed.older === null ? '' : footer(listed, filters)}`;
  return html`${counts}<div class="scroll" tabindex="0"><table class="payments">
<caption class="visually-hidden">Payments, newest first</caption>
<thead><tr><th scope="col">Id</th><th scope="col">Dialect</th><th scope="col">Reference</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
<tbody>${listed.rows.map(
    (r) => html`<tr data-id="${r.id}"><td><a href="/console/payments/${r.dialect}/${encodeURIComponent(r.id)}"><code>${r.id}</code></a></td><td>${label.get(r.dialect) ?? r.dialect}</td><td class="ref">${r.reference}</td><td class="num">${money(r.amount, r.currency)}</td><td>${badge(r.group, r.status)}</td><td><time datetime="${iso(r.createdAt)}">${iso(r.createdAt)}</time></td></tr>`,
  )}</tbody></table></div>
${footer(listed, filters)}`;
}

/** `defaultMix`: the MIX setting's weights as text (`approve:90,fail:7,delay:3`), or undefined when MIX is not set. */
export function paymentsPage(ctx: PageContext, sources: readonly PaymentSource[], filters: PaymentFilters, listed: Listed, messages: { notice?: string; error?: string; invalid?: readonly string[] }, defaultMix?: string): Html {
  return page(ctx, {
    title: 'Payments',
    active: 'payments',
    body: html`${notice('ok', messages.notice)}<div class="split">
<section class="card" aria-labelledby="list-h"><h2 id="list-h">All payments</h2>${(messages.invalid ?? []).map((text) => notice('error', text))}${filtersForm(sources, filters)}
<div id="payments-list" data-topics="payments">${table(listed, sources, filters)}</div></section>
${createForms(ctx, messages.error, defaultMix)}
</div>`,
  });
}

function attemptsTable(delivery: Delivery): Html {
  if (delivery.attempts.length === 0) return html`<p>No attempt yet.</p>`;
  return html`<div class="scroll" tabindex="0"><table class="attempts"><thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Error</th></tr></thead><tbody>${delivery.attempts.map(
    (a, i) => html`<tr><td>${i + 1}</td><td>${iso(a.at)}</td><td>${a.statusCode ?? '—'}</td><td>${Math.round(a.durationMs)} ms</td><td>${a.error ?? ''}</td></tr>`,
  )}</tbody></table></div>`;
}

export function deliveryStatus(d: Delivery): Html {
  const group = d.status === 'delivered' ? 'completed' : d.status === 'failed' ? 'failed' : 'pending';
  return html`<span class="badge badge-${group}" data-status="${d.status}">${d.status}</span>`;
}

export function detailPage(ctx: PageContext, source: PaymentSource, detail: PaymentDetail, deliveries: Delivery[], messages: { notice?: string; error?: string }): Html {
  const { row } = detail;
  const back = `/console/payments${query({ dialect: row.dialect })}`;
  return page(ctx, {
    title: `Payment ${row.id}`,
    active: 'payments',
    body: html`<p><a href="${back}">← ${source.label}</a></p>
${notice('ok', messages.notice)}${notice('error', messages.error)}
<div id="payment-detail" data-topics="payments webhooks">
<section class="card" aria-labelledby="sum-h"><h2 id="sum-h">Status: <span id="payment-status">${badge(row.group, row.status)}</span></h2>
<dl class="fields">${detail.fields.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
${detail.actions.length === 0 ? '' : html`<div class="actions">${detail.actions.map(
      (a) => html`<form method="post" action="/console/payments/${row.dialect}/${encodeURIComponent(row.id)}/${a.name}" class="inline">${csrfInput(ctx)}${(a.fields ?? []).map(
        (f) => html`<label for="a-${a.name}-${f.name}">${f.label}</label> <input id="a-${a.name}-${f.name}" name="${f.name}" type="${f.type}"${f.type === 'number' ? html` min="1"` : ''}${f.required ? html` required` : ''}${f.hint === undefined ? '' : html` placeholder="${f.hint}"`}> `,
      )}<button type="submit">${a.label}</button></form>`,
    )}</div>`}
</section>
<section class="card" aria-labelledby="hist-h"><h2 id="hist-h">State history</h2>
<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">At</th><th scope="col">Status</th><th scope="col">Event published</th><th scope="col">Note</th></tr></thead><tbody>${detail.history.map(
      (h) => html`<tr><td>${iso(h.at)}</td><td>${h.status}</td><td><code>${h.event}</code></td><td>${h.note}</td></tr>`,
    )}</tbody></table></div></section>
<section class="card" aria-labelledby="del-h"><h2 id="del-h">Webhook deliveries</h2>
${deliveries.length === 0 ? html`<p>No webhook deliveries for this payment.</p>` : deliveries.map(
      (d) => html`<article class="delivery" data-delivery="${d.id}"><h3><code>${d.type}</code> ${deliveryStatus(d)}${d.test ? html` <span class="badge">test</span>` : ''}</h3>
<p>Event <code>${d.eventId}</code> · delivery <code>${d.id}</code> · to <span class="url">${d.url}</span>${d.failureReason === null ? '' : html` · reason: <strong>${d.failureReason}</strong>`}</p>${attemptsTable(d)}</article>`,
    )}
<p><a href="/console/webhooks${query({ subject: `${detail.subject.kind}:${detail.subject.id}` })}">These deliveries in the webhook log</a></p>
</section>
</div>`,
  });
}

export { attemptsTable };
