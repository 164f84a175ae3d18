import type { Delivery } from '../../core/deliveries.ts';
import { MAX_MIX_WEIGHT } from '../../core/faults/mix.ts';
import { SCENARIOS } from '../../core/scenario.ts';
import { MIX_WEIGHT_FIELDS } from '../forms.ts';
import { html, iso, money, query, wholeNumber, type Html } from '../html.ts';
import { csrfInput, notice, page, skipToPaging, type PageContext } from '../layout.ts';
import { READ_PER_PAGE, SHOWN, type Listed, type PaymentFilters } from '../payments-list.ts';
import { deliveriesOf, STATUS_GROUPS, type PaymentDetail, type PaymentSource, type StatusGroup } from '../sources.ts';

/**
 * The payments view: every source's payments in one list (filters by dialect, status group and
 * id; counts by status; the list itself is ../payments-list.ts), the create form (a native intent by scenario or card, or a /api/v2
 * payment), and one payment's detail with its state history, events, deliveries and actions.
 * @see issue 13 "Payments", "Create"
 */

export const NOTICES: Readonly<Record<string, string>> = {
  created: 'Payment created.',
  cancel: 'Intent cancelled.',
  refund: 'Refund made.',
  confirm: 'Payment confirmed.',
  cancel_order: 'Order cancelled.',
};

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

/** The footer's word on the payment whose id the search is, when the first page shows it. */
function foundText(listed: Listed): string {
  return listed.foundById && listed.foundLeftOut.length === 0 ? ', with the payment whose id the search is' : '';
}

/** A hint when the payment whose id the search is was found but the status filter leaves it out. */
function leftOutHint(listed: Listed, filters: PaymentFilters): Html | string {
  if (listed.foundLeftOut.length === 0 || filters.before !== undefined) return '';
  return html`<p class="hint" data-found-left-out="true">The payment whose id the search is is ${listed.foundLeftOut.join(' / ')}, not ${filters.status ?? ''}: the status filter leaves it out.</p>`;
}

/** The footer's id, which the skip link before the table points at. */
const PAGING_TARGET = 'payments-pages';

/** Whether the footer has a page link (Older, or Newest on an older page). */
function paged(listed: Listed, filters: PaymentFilters): boolean {
  return listed.older !== null || filters.before !== undefined;
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
  const target = paged(listed, filters) ? html` id="${PAGING_TARGET}" tabindex="-1"` : '';
  return html`<p class="hint"${target} data-shown="${String(listed.rows.length)}">${listed.rows.length} shown, newest first${from}${foundText(listed)}.${stopped}${end}${newest}${older}</p>`;
}

function table(listed: Listed, sources: readonly PaymentSource[], filters: PaymentFilters): Html {
  const label = new Map(sources.map((s) => [s.dialect, s.label]));
  const dialect = filters.dialect === undefined ? undefined : label.get(filters.dialect);
  const cover =
    listed.countsCover === 'all'
      ? html`<p class="hint" data-counts-cover="all">Counts: ${dialect === undefined ? 'every payment stored' : html`every stored payment of ${dialect}`}.</p>`
      : html`<p class="hint" data-counts-cover="scanned">Counts: only the payments matching the search among the ${wholeNumber(listed.read)} of ${dialect ?? 'every dialect'} this page read${listed.foundById ? ', and the one whose id it is' : ''}.</p>`;
  const counts = html`<ul class="counts" aria-label="Counts by status">${STATUS_GROUPS.map((g) => html`<li><span class="badge badge-${g}">${g}</span> <strong data-count="${g}">${listed.counts[g]}</strong></li>`)}</ul>${cover}${leftOutHint(listed, filters)}`;
  if (listed.rows.length === 0) return html`${counts}<p>No payments match${filters.before === undefined && listed.older === null ? '' : ' on this page'}.</p>${filters.before === undefined && listed.older === null ? '' : footer(listed, filters)}`;
  return html`${counts}${paged(listed, filters) ? skipToPaging(PAGING_TARGET) : ''}<div class="scroll" tabindex="0"><table class="payments">
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

/** A time that may wrap after its date (`2026-12-07T` / `21:12:39.960Z`): the attempts of a delivery in the log's narrow cell. */
function wrappingIso(ms: number): Html {
  const [date, time] = iso(ms).split('T');
  return html`${date}T<wbr>${time}`;
}

function attemptsTable(delivery: Delivery): Html {
  if (delivery.attempts.length === 0) return html`<p>No attempt yet.</p>`;
  return html`<div class="scroll" tabindex="0"><table class="attempts"><thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Error</th></tr></thead><tbody>${delivery.attempts.map(
    (a, i) => html`<tr><td>${i + 1}</td><td>${wrappingIso(a.at)}</td><td>${a.statusCode ?? '—'}</td><td>${Math.round(a.durationMs)} ms</td><td>${a.error ?? ''}</td></tr>`,
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
        (f) => html`<label for="a-${a.name}-${f.name}">${f.label}</label> <input id="a-${a.name}-${f.name}" name="${f.name}" type="${f.type}"${f.type === 'number' ? html` min="1"` : ''}${f.required ? html` required` : ''}${f.hint === undefined ? '' : html` aria-describedby="a-${a.name}-${f.name}-hint"`}>${f.hint === undefined ? '' : html` <small id="a-${a.name}-${f.name}-hint">${f.hint}</small>`} `,
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
<p><a href="${deliveriesOf(detail.subject)}">These deliveries in the webhook log</a></p>
</section>
</div>`,
  });
}

export { attemptsTable };
