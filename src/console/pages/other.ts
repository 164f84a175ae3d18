import { CSRF_FIELD } from '../auth.ts';
import { html, raw, type Html } from '../html.ts';
import { notice, page, type PageContext } from '../layout.ts';
import { seriesCharts } from '../charts.ts';
import { DECISION_DIALECTS, GROUP_SECONDS, WINDOW_SECONDS, type GroupStats, type SeriesWindow } from '../series.ts';
import type { PanelPage } from '../sources.ts';

/**
 * A panel page (bookings, FluxPay): one live region per panel, refreshed on the page's topic. For a
 * refresh (`refresh`: the live feed's fetch of the page) a panel that is not live is not rendered:
 * its region, which has no topic, is not swapped.
 */
export async function panelPage(ctx: PageContext, panels: PanelPage, query: Readonly<Record<string, string | undefined>> = {}, refresh = false): Promise<Html> {
  const rendered = await Promise.all(panels.panels.map(async (p) => ({ panel: p, body: p.live === false && refresh ? html`` : await p.render(query) })));
  return page(ctx, {
    title: panels.title,
    active: panels.path,
    body: html`<div class="panels">${rendered.map(
      ({ panel, body }) =>
        html`<section class="${panel.wide === true ? 'card panel wide' : 'card panel'}" aria-labelledby="${panel.id}-h"><h2 id="${panel.id}-h">${panel.title}</h2><div id="${panel.id}"${panel.live === false ? '' : html` data-topics="${panels.topic}"`}>${body}</div></section>`,
    )}</div>`,
  });
}

function ms(value: number | null): string {
  return value === null ? '—' : String(value);
}

function rate(g: Pick<GroupStats, 'attempts' | 'succeeded'>): string {
  return g.attempts === 0 ? '—' : `${((100 * g.succeeded) / g.attempts).toFixed(1)} %`;
}

function time(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 19);
}

/**
 * The charts of the recorded window, then its text alternative: the totals, the decisions by
 * dialect, and a table of every GROUP_SECONDS interval (newest first). `labels` names each dialect.
 */
export function chartsPage(ctx: PageContext, w: SeriesWindow, labels: Readonly<Record<string, string>>): Html {
  const t = w.total;
  return page(ctx, {
    title: 'Charts',
    active: 'charts',
    body: html`<div id="charts" data-topics="payments webhooks bookings fluxpay">
<div class="charts">${seriesCharts(w)}</div>
<section class="card" aria-labelledby="charts-window-h"><h2 id="charts-window-h">Last ${WINDOW_SECONDS / 60} minutes</h2>
<p id="charts-totals">${t.approved + t.failed} decisions (${t.approved} approved, ${t.failed} failed); ${t.attempts} webhook attempts, ${t.succeeded} succeeded (${rate(t)}); attempt latency p50 ${ms(t.p50)} ms, p95 ${ms(t.p95)} ms, p99 ${ms(t.p99)} ms.</p>
<div class="scroll" tabindex="0"><table id="charts-dialects"><caption>Decisions by dialect</caption><thead><tr><th scope="col">Dialect</th><th scope="col">Approved</th><th scope="col">Failed</th></tr></thead><tbody>${DECISION_DIALECTS.map(
      (d) => html`<tr data-dialect="${d}"><th scope="row">${labels[d] ?? d}</th><td class="num">${w.byDialect[d].approved}</td><td class="num">${w.byDialect[d].failed}</td></tr>`,
    )}</tbody></table></div>
<details id="charts-table-details"><summary>Every ${GROUP_SECONDS} seconds, as a table</summary>
<div class="scroll" tabindex="0"><table id="charts-table"><caption>Decisions and webhook attempts per ${GROUP_SECONDS}-second interval, newest first (latency in ms)</caption><thead><tr><th scope="col">From (UTC)</th><th scope="col">Approved</th><th scope="col">Failed</th><th scope="col">Webhook attempts</th><th scope="col">Success</th><th scope="col">p50</th><th scope="col">p95</th><th scope="col">p99</th></tr></thead><tbody>${[...w.groups].reverse().map(
      (g) => html`<tr><th scope="row">${time(g.start)}</th><td class="num">${g.approved}</td><td class="num">${g.failed}</td><td class="num">${g.attempts}</td><td class="num">${rate(g)}</td><td class="num">${ms(g.p50)}</td><td class="num">${ms(g.p95)}</td><td class="num">${ms(g.p99)}</td></tr>`,
    )}</tbody></table></div>
</details>
</section>
</div>
<p class="hint" id="charts-scope">Counted by this process as it happened, per second, from its start: the decisions of every dialect (native intents, /api/v2, booking and FluxPay payments) and every webhook attempt, for the last ${WINDOW_SECONDS / 60} minutes; a second with none shows as zero. Latency percentiles are “at most” figures, exact below 16 ms and within 12.5 % above. With several replicas or CLUSTER_WORKERS, each process shows its own share: this one is named at the top of the page.</p>`,
  });
}

/** The login form; `csrf` is the CSRF token of the anonymous session the form is shown in. */
export function loginPage(error: string | undefined, next: string, csrf: string): Html {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · paysim console</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/assets/console.css"></head>
<body>
<main id="main" class="login">
<h1>paysim console</h1>
${notice('error', error, 'login-error')}
<form method="post" action="/console/login" class="card stack">
<input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><input type="hidden" name="next" value="${next}">
<div class="field"><label for="token">Console token</label><input id="token" name="token" type="password" required autocomplete="current-password"${
  // After a refusal the token field has the focus and says why (the page runs no script to move it).
  error === undefined ? raw(' aria-describedby="token-hint"') : raw(' autofocus aria-invalid="true" aria-describedby="login-error token-hint"')
}><small id="token-hint">The value of CONSOLE_TOKEN.</small></div>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>`;
}

/** Where an error page's link goes: back to the page a refused form was sent from, the login form, or (by default) the console's first page. */
export interface ErrorLink {
  href: string;
  label: string;
}

const HOME_LINK: ErrorLink = { href: '/console', label: 'Back to the console' };

export function errorPage(ctx: PageContext | undefined, status: number, message: string, link: ErrorLink = HOME_LINK): Html {
  const anchor = html`<p><a href="${link.href}">${link.label}</a></p>`;
  if (ctx === undefined) {
    return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error ${status} · paysim console</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/assets/console.css"></head><body><main id="main"><h1>Error ${status}</h1>${notice('error', message)}${anchor}</main></body></html>`;
  }
  return page(ctx, { title: `Error ${status}`, active: '', body: html`${notice('error', message)}${anchor}` });
}
