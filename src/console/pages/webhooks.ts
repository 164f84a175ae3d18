import type { Delivery, Subject } from '../../core/deliveries.ts';
import type { DeliveryLogStore, Page } from '../../core/ports.ts';
import { html, iso, query, type Html } from '../html.ts';
import { offeredChoice } from '../forms.ts';
import { csrfInput, notice, page, skipToPaging, type PageContext } from '../layout.ts';
import { attemptsTable, deliveryStatus } from './payments.ts';
import { deliveriesOf } from '../sources.ts';
import { BOOKING_SUBJECT } from '../sources/bookings.ts';
import { INTENT_SUBJECT } from '../sources/native.ts';
import { V2_SUBJECT } from '../sources/v2.ts';

/**
 * The webhook delivery log: every delivery with each attempt (status, latency, error), filters
 * (failed, pending, delivered; by target URL; by subject), replay, the URLs disabled after a 410
 * with re-enable, and a form that sends a test webhook. Actions go through the dispatcher, the
 * only place that makes outbound calls.
 * @see issue 13 "Webhooks"
 */

export const WEBHOOK_FILTERS = ['failed', 'pending', 'delivered'] as const;
/** Deliveries a page shows at most. */
export const SHOWN = 100;
/** Deliveries the console looks at for one page (those the store hands back for the status and subject chosen) before it stops and offers to continue. */
export const SCAN_BUDGET = 5000;
/** Store reads for one page at most (each read's own walk is bounded by the store: SCAN_BUDGET in src/adapters/memory/id-list.ts). */
const MAX_READS = 20;
const BATCH = 500;
const CURSOR = /^whd_[0-9A-HJKMNP-TV-Z]{26}$/;

export const NOTICES: Readonly<Record<string, string>> = {
  replayed: 'Replay queued.',
  enabled: 'URL re-enabled.',
  test_sent: 'Test webhook queued.',
  test_queue_full: 'Test webhook not sent: WEBHOOK_QUEUE_MAX deliveries already wait to start. It is in the log as failed (queue_full).',
  test_shutting_down: 'Test webhook not sent: the service is shutting down. It is in the log as failed (shutting_down).',
  test_log_full: 'Test webhook not sent: the delivery log is full of unfinished deliveries (WEBHOOK_LOG_MAX), so it was not kept.',
};

export interface WebhookFilters {
  status?: (typeof WEBHOOK_FILTERS)[number] | undefined;
  target?: string | undefined;
  subject?: Subject | undefined;
  /** Deliveries older than this one (exclusive): a later page, or a search continued. */
  cursor?: string | undefined;
}

/** The filters of the page's query string; a value that is not one the page offers is left out and said in `invalid`. */
export function readWebhookFilters(q: Readonly<Record<string, string | undefined>>, subjectKinds: readonly string[]): { filters: WebhookFilters; invalid: string[]; form: Record<string, string> } {
  const invalid: string[] = [];
  const filters: WebhookFilters = {};
  const status = offeredChoice('Status', q.status, WEBHOOK_FILTERS, invalid);
  if (status !== undefined) filters.status = status;
  const target = (q.target ?? '').trim().slice(0, 2048);
  if (target !== '') filters.target = target;
  const subject = (q.subject ?? '').trim().slice(0, 300);
  const colon = subject.indexOf(':');
  if (subject !== '') {
    const kind = subject.slice(0, Math.max(0, colon));
    if (colon > 0 && colon < subject.length - 1 && subjectKinds.includes(kind)) filters.subject = { kind, id: subject.slice(colon + 1) };
    else invalid.push(`Subject “${subject}” is not kind:id with a kind of ${subjectKinds.join(', ')}: not applied.`);
  }
  const cursor = (q.cursor ?? '').trim();
  if (cursor !== '') {
    if (CURSOR.test(cursor)) filters.cursor = cursor;
    else invalid.push(`Cursor “${cursor.slice(0, 100)}” is invalid (a delivery id, whd_ and 26 characters, from an Older link): showing the newest deliveries.`);
  }
  return { filters, invalid, form: { status: filters.status ?? '', target: filters.target ?? '', subject: filters.subject === undefined ? '' : subject } };
}

export interface DeliveryPage {
  deliveries: Delivery[];
  /** Deliveries looked at (handed back by the store for the status and subject chosen, then checked against the target). */
  looked: number;
  /** Where the page stopped: older deliveries are on a next page (`full`) or were not searched (`budget`); null at the log's end. */
  next: { cursor: string; why: 'full' | 'budget' } | null;
}

/**
 * One newest-first page of the log from the filters' cursor. The status and the subject are the
 * store's own query (its indexes); "pending or retrying" merges the store's two status queries;
 * the target URL, which no store indexes, is checked here on each delivery the store hands back.
 * At most SCAN_BUDGET deliveries looked at and MAX_READS reads: when either runs out before the
 * page is full, `next` says where the search stopped so the page can offer to continue there.
 */
export async function listDeliveries(log: DeliveryLogStore, filters: WebhookFilters): Promise<DeliveryPage> {
  const { subject } = filters;
  const read = async (cursor: string | undefined): Promise<Page<Delivery>> => {
    if (filters.status !== 'pending') return log.list({ limit: BATCH, cursor, subject, status: filters.status });
    const parts = await Promise.all((['pending', 'retrying'] as const).map((status) => log.list({ limit: BATCH, cursor, subject, status })));
    return mergedPage(parts);
  };
  const target = filters.target ?? '';
  const found: Delivery[] = [];
  let cursor = filters.cursor;
  let looked = 0;
  for (let reads = 0; ; reads++) {
    if (reads === MAX_READS || looked >= SCAN_BUDGET) return { deliveries: found, looked, next: { cursor: cursor as string, why: 'budget' } };
    const page = await read(cursor);
    for (const d of page.data) {
      looked++;
      if (target !== '' && !d.url.includes(target)) continue;
      found.push(d);
      if (found.length === SHOWN) return { deliveries: found, looked, next: d === page.data.at(-1) && page.nextCursor === null ? null : { cursor: d.id, why: 'full' } };
    }
    if (page.nextCursor === null) return { deliveries: found, looked, next: null };
    cursor = page.nextCursor;
  }
}

/**
 * Two newest-first pages read from the same cursor, as one: each covers everything from the
 * cursor down to its `nextCursor` (a full page's last id, or where the store's walk stopped), so
 * the union is exact down to the higher of the two; what either holds below it is read again
 * from there.
 */
export function mergedPage(parts: ReadonlyArray<Page<Delivery>>): Page<Delivery> {
  const bound = parts.reduce((b, p) => (p.nextCursor !== null && p.nextCursor > b ? p.nextCursor : b), '');
  const data = parts.flatMap((p) => p.data.filter((d) => d.id >= bound)).sort((a, b) => (a.id < b.id ? 1 : -1));
  return { data, nextCursor: bound === '' ? null : bound };
}

function filtersForm(filters: Readonly<Record<string, string>>): Html {
  const options = [['', 'all'], ...WEBHOOK_FILTERS.map((f) => [f, f === 'pending' ? 'pending or retrying' : f])] as const;
  return html`<form class="filters" method="get" action="/console/webhooks" data-remember="webhooks" role="search" aria-label="Filter deliveries">
  <div class="field"><label for="w-status">Status</label><select id="w-status" name="status">${options.map(([v, l]) => html`<option value="${v}"${v === filters.status ? html` selected` : ''}>${l}</option>`)}</select></div>
  <div class="field"><label for="w-target">Target URL contains</label><input id="w-target" name="target" type="search" value="${filters.target}" maxlength="2048"></div>
  <div class="field"><label for="w-subject">Subject (kind:id)</label><input id="w-subject" name="subject" type="search" value="${filters.subject}" maxlength="300"></div>
  <div class="field buttons"><button type="submit">Filter</button> <a href="/console/webhooks?status=&amp;target=&amp;subject=" data-clear-filters="webhooks">Clear</a></div>
</form>`;
}

function deliveryRow(ctx: PageContext, d: Delivery, back: string): Html {
  const finished = d.status === 'delivered' || d.status === 'failed';
  const last = d.attempts.at(-1);
  return html`<tr data-delivery="${d.id}"><td><code>${d.id}</code><br><code class="small">${d.type}</code>${d.test ? html` <span class="badge">test</span>` : ''}</td>
<td class="url">${d.url}</td>
<td class="ref">${d.subject === null ? '—' : html`<a href="${subjectHref(d.subject)}">${d.subject.id}</a>`}</td>
<td>${deliveryStatus(d)}${d.failureReason === null ? '' : html`<br><small>${d.failureReason}</small>`}${d.nextAttemptAt === null ? '' : html`<br><small>next ${iso(d.nextAttemptAt)}</small>`}</td>
<td>${last === undefined ? '—' : html`${last.statusCode ?? last.error ?? '—'} · ${Math.round(last.durationMs)} ms`}</td>
<td>${finished ? html`<form method="post" action="/console/webhooks/${encodeURIComponent(d.id)}/replay" class="inline">${csrfInput(ctx)}<input type="hidden" name="back" value="${back}"><button type="submit" aria-label="Replay ${d.id}">Replay</button></form>` : ''}</td>
<td><details><summary>${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}</summary>${attemptsTable(d)}</details></td></tr>`;
}

/** The payment page of each subject kind that names a payment (the console's payment sources). */
const PAYMENT_PAGE_OF: Readonly<Record<string, string>> = { [INTENT_SUBJECT]: 'intent', [V2_SUBJECT]: 'v2', [BOOKING_SUBJECT]: 'booking' };

/** Where a delivery's subject leads: its payment's page; a FluxPay event (whose order the delivery does not name) to its own deliveries, as the FluxPay page's outbox links it. */
function subjectHref(subject: Subject): string {
  const page = PAYMENT_PAGE_OF[subject.kind];
  return page === undefined ? deliveriesOf(subject) : `/console/payments/${page}/${encodeURIComponent(subject.id)}`;
}

/** The footer's id, which the skip link before the table points at. */
const PAGING_TARGET = 'deliveries-pages';

/** Whether the footer has a page link (Older, continue the search, or Newest on an older page). */
function paged(filters: WebhookFilters, listed: DeliveryPage): boolean {
  return filters.cursor !== undefined || listed.next !== null;
}

/** What the list says under its table: how many it shows, and where the next page or the rest of the search starts. */
function listFooter(form: Readonly<Record<string, string>>, filters: WebhookFilters, listed: DeliveryPage, total: number): Html {
  const link = (cursor: string | undefined): string => `/console/webhooks${query({ ...form, cursor })}`;
  const newest = filters.cursor === undefined ? html`` : html` <a href="${link(undefined)}" data-page="newest">← Newest</a>`;
  const filtered = filters.status !== undefined || filters.subject !== undefined || filters.target !== undefined;
  const where = filters.cursor === undefined ? 'newest first' : html`newest first, older than <code>${filters.cursor}</code>`;
  const target = paged(filters, listed) ? html` id="${PAGING_TARGET}" tabindex="-1"` : '';
  const shown = html`<p class="hint"${target} data-shown="${String(listed.deliveries.length)}">${listed.deliveries.length} ${listed.deliveries.length === 1 ? 'delivery' : 'deliveries'} shown, ${where}${filtered ? ' (filtered)' : ''}; ${total} in the log.${newest}${
    listed.next?.why === 'full' ? html` <a href="${link(listed.next.cursor)}" data-page="older">Older →</a>` : ''
  }</p>`;
  if (listed.next?.why !== 'budget') return shown;
  const scope = filters.status !== undefined || filters.subject !== undefined ? ' of that status and subject' : '';
  return html`${shown}<p class="notice" role="status" data-search-stopped="${listed.next.cursor}">Looked at the ${filters.cursor === undefined ? 'newest ' : ''}${listed.looked} deliveries${scope}${
    filters.cursor === undefined ? '' : ' older than the cursor'
  } and stopped, back to <code>${listed.next.cursor}</code>; ${listed.deliveries.length} matched. Older deliveries were not searched: <a href="${link(listed.next.cursor)}" data-page="continue">continue the search →</a></p>`;
}

export function webhooksPage(
  ctx: PageContext,
  view: { form: Readonly<Record<string, string>>; filters: WebhookFilters; invalid: readonly string[]; listed: DeliveryPage; total: number },
  disabled: Array<{ url: string; disabledAt: number }>,
  back: string,
  messages: { notice?: string; error?: string },
): Html {
  const { form, filters, invalid, listed, total } = view;
  const deliveries = listed.deliveries;
  return page(ctx, {
    title: 'Webhooks',
    active: 'webhooks',
    body: html`${notice('ok', messages.notice)}${notice('error', messages.error)}
<section class="card" aria-labelledby="log-h"><h2 id="log-h">Delivery log</h2>${invalid.map((text) => notice('error', text))}${filtersForm(form)}
<div id="deliveries" data-topics="webhooks">${deliveries.length === 0 ? html`<p>No deliveries match${filters.cursor === undefined ? '' : ' on this page'}.</p>` : html`${paged(filters, listed) ? skipToPaging(PAGING_TARGET) : ''}<div class="scroll" tabindex="0"><table class="deliveries">
<caption class="visually-hidden">Webhook deliveries, newest first</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Target</th><th scope="col">Subject</th><th scope="col">Status</th><th scope="col">Last attempt</th><th scope="col">Action</th><th scope="col">Attempts</th></tr></thead>
<tbody>${deliveries.map((d) => deliveryRow(ctx, d, back))}</tbody></table></div>`}${listFooter(form, filters, listed, total)}</div></section>
<div class="split">
<section class="card" aria-labelledby="dis-h"><h2 id="dis-h">Disabled URLs</h2>
<div id="disabled-urls" data-topics="webhooks">${disabled.length === 0 ? html`<p>No URL is disabled. A receiver that answers 410 Gone is disabled until re-enabled here (or until WEBHOOK_MAX_DISABLED_URLS later ones push it out).</p>` : html`<ul class="disabled">${disabled.map(
      (u) => html`<li><span class="url">${u.url}</span> <small>since ${iso(u.disabledAt)}</small> <form method="post" action="/console/webhooks/enable" class="inline">${csrfInput(ctx)}<input type="hidden" name="url" value="${u.url}"><button type="submit" aria-label="Re-enable ${u.url}">Re-enable</button></form></li>`,
    )}</ul>`}</div></section>
<section class="card" aria-labelledby="test-h"><h2 id="test-h">Send a test webhook</h2>
<form method="post" action="/console/webhooks/test" class="stack">${csrfInput(ctx)}
<div class="field"><label for="t-intent">Payment intent id</label><input id="t-intent" name="payment_intent_id" required maxlength="64" autocomplete="off" aria-describedby="t-intent-hint"><small id="t-intent-hint">sent as if this native intent had just been decided</small></div>
<div class="field"><label for="t-type">Event</label><select id="t-type" name="type"><option value="payment.approved">payment.approved</option><option value="payment.failed">payment.failed</option></select></div>
<div class="field"><label for="t-url">Receiver URL</label><input id="t-url" name="webhook_url" type="url" required maxlength="2048"></div>
<button type="submit">Send test webhook</button></form></section>
</div>`,
  });
}
