import { CSRF_FIELD } from '../auth.ts';
import { html, type Html } from '../html.ts';
import { notice, page, type PageContext } from '../layout.ts';
import { MAX_DELIVERIES_SCANNED } from '../charts.ts';
import { DECISION_SCAN, type PanelPage } from '../sources.ts';

/** A panel page (bookings, FluxPay): one live region per panel, refreshed on the page's topic. */
export async function panelPage(ctx: PageContext, panels: PanelPage, query: Readonly<Record<string, string | undefined>> = {}): Promise<Html> {
  const rendered = await Promise.all(panels.panels.map(async (p) => ({ panel: p, body: await p.render(query) })));
  return page(ctx, {
    title: panels.title,
    active: panels.path,
    body: html`<div class="panels">${rendered.map(
      ({ panel, body }) => html`<section class="card panel" aria-labelledby="${panel.id}-h"><h2 id="${panel.id}-h">${panel.title}</h2><div id="${panel.id}" data-topics="${panels.topic}">${body}</div></section>`,
    )}</div>`,
  });
}

export function chartsPage(ctx: PageContext, charts: Html[]): Html {
  return page(ctx, {
    title: 'Charts',
    active: 'charts',
    body: html`<div id="charts" class="charts" data-topics="payments webhooks bookings fluxpay">${charts}</div>
<p class="hint" id="charts-scope">Drawn when the page loads, from what the stores keep: the decisions of at most the newest ${DECISION_SCAN.toLocaleString('en-US')} payments of each dialect (FluxPay: all it keeps), and at most ${MAX_DELIVERIES_SCANNED.toLocaleString('en-US')} webhook deliveries changed in the window. Under heavier load than that the charts undercount.</p>`,
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
${notice('error', error)}
<form method="post" action="/console/login" class="card stack">
<input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><input type="hidden" name="next" value="${next}">
<div class="field"><label for="token">Console token</label><input id="token" name="token" type="password" required autocomplete="current-password" aria-describedby="token-hint"><small id="token-hint">The value of CONSOLE_TOKEN.</small></div>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>`;
}

export function errorPage(ctx: PageContext | undefined, status: number, message: string): Html {
  if (ctx === undefined) {
    return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error ${status} · paysim console</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/assets/console.css"></head><body><main id="main"><h1>Error ${status}</h1>${notice('error', message)}<p><a href="/console">Back to the console</a></p></main></body></html>`;
  }
  return page(ctx, { title: `Error ${status}`, active: '', body: html`${notice('error', message)}<p><a href="/console">Back to the console</a></p>` });
}
