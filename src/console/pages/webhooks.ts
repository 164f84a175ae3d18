import type { Delivery } from '../../core/deliveries.ts';
import type { DeliveryLogStore } from '../../core/ports.ts';
import { html, iso, type Html } from '../html.ts';
import { csrfInput, notice, page, type PageContext } from '../layout.ts';
import { attemptsTable, deliveryStatus } from './payments.ts';

/**
 * The webhook delivery log: every delivery with each attempt (status, latency, error), filters
 * (failed, pending, delivered; by target URL; by subject), replay, the URLs disabled after a 410
 * with re-enable, and a form that sends a test webhook. Actions go through the dispatcher, the
 * only place that makes outbound calls.
 * @see issue 13 "Webhooks"
 */

export const WEBHOOK_FILTERS = ['failed', 'pending', 'delivered'] as const;
const SCANNED = 1000;
const SHOWN = 100;

export const NOTICES: Readonly<Record<string, string>> = {
  replayed: 'Replay queued.',
  enabled: 'URL re-enabled.',
  test_sent: 'Test webhook queued.',
  test_queue_full: 'Test webhook not sent: WEBHOOK_QUEUE_MAX deliveries already wait to start. It is in the log as failed (queue_full).',
  test_shutting_down: 'Test webhook not sent: the service is shutting down. It is in the log as failed (shutting_down).',
  test_log_full: 'Test webhook not sent: the delivery log is full of unfinished deliveries (WEBHOOK_LOG_MAX), so it was not kept.',
};

export interface WebhookFilters {
  status?: string | undefined;
  target?: string | undefined;
  subject?: string | undefined;
}

export async function listDeliveries(log: DeliveryLogStore, filters: WebhookFilters): Promise<Delivery[]> {
  const subject = filters.subject?.includes(':') === true ? { kind: filters.subject.slice(0, filters.subject.indexOf(':')), id: filters.subject.slice(filters.subject.indexOf(':') + 1) } : undefined;
  const found: Delivery[] = [];
  let cursor: string | undefined;
  let scanned = 0;
  const target = (filters.target ?? '').trim();
  while (scanned < SCANNED && found.length < SHOWN) {
    const page = await log.list({ limit: 200, cursor, subject, status: filters.status === 'failed' || filters.status === 'delivered' ? filters.status : undefined });
    scanned += page.data.length;
    for (const d of page.data) {
      if (filters.status === 'pending' && d.status !== 'pending' && d.status !== 'retrying') continue;
      if (target !== '' && !d.url.includes(target)) continue;
      found.push(d);
    }
    if (page.nextCursor === null) break;
    cursor = page.nextCursor;
  }
  return found.slice(0, SHOWN);
}

function filtersForm(filters: WebhookFilters): Html {
  const options = [['', 'all'], ...WEBHOOK_FILTERS.map((f) => [f, f === 'pending' ? 'pending or retrying' : f])] as const;
  return html`<form class="filters" method="get" action="/console/webhooks" data-remember="webhooks" role="search" aria-label="Filter deliveries">
  <div class="field"><label for="w-status">Status</label><select id="w-status" name="status">${options.map(([v, l]) => html`<option value="${v}"${v === (filters.status ?? '') ? html` selected` : ''}>${l}</option>`)}</select></div>
  <div class="field"><label for="w-target">Target URL contains</label><input id="w-target" name="target" type="search" value="${filters.target ?? ''}" maxlength="2048"></div>
  <div class="field"><label for="w-subject">Subject (kind:id)</label><input id="w-subject" name="subject" type="search" value="${filters.subject ?? ''}" maxlength="300"></div>
  <div class="field buttons"><button type="submit">Filter</button> <a href="/console/webhooks?status=&amp;target=&amp;subject=" data-clear-filters="webhooks">Clear</a></div>
</form>`;
}

function deliveryRow(ctx: PageContext, d: Delivery, back: string): Html {
  const finished = d.status === 'delivered' || d.status === 'failed';
  const last = d.attempts.at(-1);
  const subject = d.subject === null ? '' : d.subject.kind === 'intent' ? 'intent' : d.subject.kind === 'v2_payment' ? 'v2' : d.subject.kind;
  return html`<tr data-delivery="${d.id}"><td><code>${d.id}</code><br><code class="small">${d.type}</code>${d.test ? html` <span class="badge">test</span>` : ''}</td>
<td class="url">${d.url}</td>
<td>${d.subject === null ? '—' : html`<a href="/console/payments/${subject}/${encodeURIComponent(d.subject.id)}">${d.subject.id}</a>`}</td>
<td>${deliveryStatus(d)}${d.failureReason === null ? '' : html`<br><small>${d.failureReason}</small>`}${d.nextAttemptAt === null ? '' : html`<br><small>next ${iso(d.nextAttemptAt)}</small>`}</td>
<td>${last === undefined ? '—' : html`${last.statusCode ?? last.error ?? '—'} · ${Math.round(last.durationMs)} ms`}</td>
<td><details><summary>${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}</summary>${attemptsTable(d)}</details></td>
<td>${finished ? html`<form method="post" action="/console/webhooks/${encodeURIComponent(d.id)}/replay" class="inline">${csrfInput(ctx)}<input type="hidden" name="back" value="${back}"><button type="submit" aria-label="Replay ${d.id}">Replay</button></form>` : ''}</td></tr>`;
}

export function webhooksPage(
  ctx: PageContext,
  filters: WebhookFilters,
  deliveries: Delivery[],
  disabled: Array<{ url: string; disabledAt: number }>,
  back: string,
  messages: { notice?: string; error?: string },
): Html {
  return page(ctx, {
    title: 'Webhooks',
    active: 'webhooks',
    body: html`${notice('ok', messages.notice)}${notice('error', messages.error)}
<section class="card" aria-labelledby="log-h"><h2 id="log-h">Delivery log</h2>${filtersForm(filters)}
<div id="deliveries" data-topics="webhooks">${deliveries.length === 0 ? html`<p>No deliveries match.</p>` : html`<div class="scroll" tabindex="0"><table class="deliveries">
<caption class="visually-hidden">Webhook deliveries, newest first</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Target</th><th scope="col">Subject</th><th scope="col">Status</th><th scope="col">Last attempt</th><th scope="col">Attempts</th><th scope="col">Action</th></tr></thead>
<tbody>${deliveries.map((d) => deliveryRow(ctx, d, back))}</tbody></table></div>`}</div></section>
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
