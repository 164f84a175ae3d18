import type { BodyCondition, FaultRule, HeaderCondition, StoredFaultRule } from '../../core/faults/model.ts';
import { actionJson } from '../../core/faults/view.ts';
import { windowEndedAt } from '../../core/faults/validation.ts';
import { html, iso, type Html } from '../html.ts';
import { csrfInput, notice, page, type PageContext } from '../layout.ts';

/**
 * The fault rules of the default namespace (issue 15, "Load-test controls"): every rule in
 * creation order (the order they apply in) with what it matches, its action, whether it is on,
 * its counters and its last hit, a switch per rule and a delete. The actions go through
 * FaultRuleService.setEnabled and the same delete as `DELETE /v1/sim/rules/{id}` (its metric
 * series goes with it), never the store. Rule ids, names, header values and URL prefixes come
 * from clients: every one is text, escaped by the template.
 *
 * Live: rule changes and hits are not told on the event bus, so the region is marked `data-poll`
 * and assets/console.js refreshes it every 5 seconds (and the page shows a switch at once, since
 * the form's answer is the page).
 * @see issue 15 "Load-test controls"
 */

export const NOTICES: Readonly<Record<string, string>> = {
  switched_on: 'Rule switched on.',
  switched_off: 'Rule switched off.',
  deleted: 'Rule deleted.',
};

function quoted(value: unknown): string {
  return JSON.stringify(value);
}

function headerText(name: string, condition: HeaderCondition): string {
  return condition.kind === 'equals' ? `header ${name} = ${quoted(condition.value)}` : `header ${name} starts with ${quoted(condition.prefix)}`;
}

const RANGE_SIGNS = { gte: '≥', gt: '>', lte: '≤', lt: '<' } as const;

function bodyText(field: string, condition: BodyCondition): string {
  switch (condition.kind) {
    case 'equals':
      return `body ${field} = ${quoted(condition.value)}`;
    case 'prefix':
      return `body ${field} starts with ${quoted(condition.prefix)}`;
    case 'range':
      return `body ${field} ${(Object.keys(RANGE_SIGNS) as Array<keyof typeof RANGE_SIGNS>)
        .filter((key) => condition[key] !== undefined)
        .map((key) => `${RANGE_SIGNS[key]} ${condition[key]}`)
        .join(' and ')}`;
  }
}

/** What a rule matches, as lines of text. */
export function matchLines(rule: FaultRule): string[] {
  if (rule.target === 'webhook') return [rule.match.urlPrefix === null ? 'every webhook delivery' : `webhooks to URLs starting with ${rule.match.urlPrefix}`];
  const { dialect, method, route, headers, body } = rule.match;
  const lines = [
    ...(dialect === null ? [] : [`dialect ${dialect}`]),
    ...(method === null ? [] : [`method ${method}`]),
    ...(route === null ? [] : [`route ${route}`]),
    ...Object.entries(headers).map(([name, c]) => headerText(name, c)),
    ...Object.entries(body).map(([field, c]) => bodyText(field, c)),
  ];
  return lines.length === 0 ? ['every request'] : lines;
}

/** When a matching request or delivery applies the rule: probability, count, window. */
export function appliesLines(stored: StoredFaultRule): string[] {
  const { rule, hits } = stored;
  const lines = [`probability ${rule.probability}`];
  if (rule.count !== null) lines.push(`first ${rule.count} (${Math.max(0, rule.count - hits)} left)`);
  if (rule.window.from !== null) lines.push(`from ${iso(rule.window.from)}`);
  if (rule.window.until !== null) lines.push(`until ${iso(rule.window.until)}`);
  return lines;
}

/** The action and its parameters, as the API shows them: `error: status 429, retry_after_seconds 1`. */
export function actionText(rule: FaultRule): string {
  const { type, params, ...rest } = actionJson(rule.action);
  const entries = [...Object.entries(rest), ...Object.entries((params ?? {}) as Record<string, unknown>)].filter(([, v]) => v !== null);
  return entries.length === 0 ? String(type) : `${String(type)}: ${entries.map(([k, v]) => `${k} ${String(v)}`).join(', ')}`;
}

function lines(texts: string[]): Html {
  return html`${texts.map((t, i) => html`${i === 0 ? '' : html`<br>`}${t}`)}`;
}

function ruleRow(ctx: PageContext, stored: StoredFaultRule, now: number): Html {
  const { rule } = stored;
  const id = encodeURIComponent(rule.id);
  // A rule whose window has ended never applies again, on or off: it cannot be switched on (the service refuses it).
  const ended = windowEndedAt(rule, now) !== undefined;
  const badge = rule.enabled ? html`<span class="badge badge-completed">on</span>` : html`<span class="badge badge-cancelled">off</span>`;
  const state = ended ? html`${badge}<br><small>window ended</small>` : badge;
  const switchForm = ended && !rule.enabled
    ? html``
    : html`<form method="post" action="/console/rules/${id}/enabled" class="inline">${csrfInput(ctx)}<input type="hidden" name="enabled" value="${rule.enabled ? 'false' : 'true'}"><button type="submit" aria-label="${rule.enabled ? 'Switch off' : 'Switch on'} ${rule.id}">${rule.enabled ? 'Switch off' : 'Switch on'}</button></form>`;
  return html`<tr data-rule="${rule.id}" data-enabled="${String(rule.enabled)}" data-hits="${String(stored.hits)}" data-matched="${String(stored.matched)}">
<td><code>${rule.id}</code>${rule.name === null ? '' : html`<br>${rule.name}`}<br><small>${rule.target}</small></td>
<td class="rule-match">${lines(matchLines(rule))}</td>
<td>${lines(appliesLines(stored))}</td>
<td class="rule-action">${actionText(rule)}</td>
<td class="rule-state">${state}</td>
<td class="num">${stored.hits}</td>
<td class="num">${stored.matched}</td>
<td>${stored.lastHitAt === null ? '—' : iso(stored.lastHitAt)}</td>
<td>${switchForm}<form method="post" action="/console/rules/${id}/delete" class="inline" hx-confirm="Delete fault rule ${rule.id}? It stops applying at once, and its counts go with it.">${csrfInput(ctx)}<button type="submit" aria-label="Delete ${rule.id}">Delete</button></form></td></tr>`;
}

/** `now`: the app's clock, for the rules whose window has ended. */
export function rulesPage(ctx: PageContext, rules: StoredFaultRule[], messages: { notice?: string }, now: number): Html {
  return page(ctx, {
    title: 'Rules',
    active: 'rules',
    body: html`${notice('ok', messages.notice)}
<section class="card" aria-labelledby="rules-h"><h2 id="rules-h">Fault rules</h2>
<div id="rules" data-topics="rules" data-poll="true">${
      rules.length === 0
        ? html`<p>No fault rules. Create one with <code>POST /v1/sim/rules</code> (or load them at start with <code>FAULTS_FILE</code>).</p>`
        : html`<div class="scroll" tabindex="0"><table class="rules">
<caption class="visually-hidden">Fault rules of the default namespace, in the order they apply</caption>
<thead><tr><th scope="col">Rule</th><th scope="col">Matches</th><th scope="col">Applies</th><th scope="col">Action</th><th scope="col">State</th><th scope="col">Hits</th><th scope="col">Matched</th><th scope="col">Last hit</th><th scope="col">Controls</th></tr></thead>
<tbody>${rules.map((r) => ruleRow(ctx, r, now))}</tbody></table></div>`
    }</div></section>
<p class="hint">Rules apply in this order; the first applying rule of each kind (latency, outcome, answer) wins. <strong>Hits</strong> counts matches the rule applied to, <strong>Matched</strong> every match of its filters inside its window. Refreshed every 5 seconds (hits and rule changes are not on the live stream).</p>`,
  });
}
