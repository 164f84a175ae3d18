import { html, raw, type Html } from './html.ts';
import { CSRF_FIELD } from './auth.ts';

/**
 * The page frame every console page shares: navigation, the live controls (status, pause, refresh
 * mode), the CSRF token for scripts, and the assets, all from this service (no CDN).
 * Regions marked `data-topics` are refreshed by assets/console.js when the live feed names one of
 * their topics: it fetches the page again and swaps just that region (htmx's `select`).
 */

export interface PageContext {
  csrf: string;
  /** Whether CONSOLE_TOKEN is set (shows the log-out button). */
  loggedIn: boolean;
  /** Navigation entries: path under /console and label. */
  nav: ReadonlyArray<readonly [string, string]>;
  /**
   * The process that served the page: its host name (in Compose and Kubernetes, the container's or
   * the pod's) and process id. Behind a load balancer each replica (and each CLUSTER_WORKERS worker)
   * shows its own process's figures (the charts), and this says whose; a worker's number is the one
   * its log lines carry (`worker`).
   */
  servedBy: { host: string; pid: number; worker?: number | undefined };
}

/**
 * htmx without inline styles or eval (the CSP allows neither), and 4xx/5xx answers shown rather than
 * dropped. A refusal (4xx: a refused form, whose error console.js puts above it, or a page not found)
 * is the service's answer, swapped like any other; as an error, htmx logged each one to the browser's
 * console ("Response Status Error Code 422 from …") while the page showed it as meant. A 5xx stays an error.
 * @see https://htmx.org/docs/#response-handling
 */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  historyCacheSize: 0,
  responseHandling: [
    { code: '204', swap: false },
    { code: '[234]..', swap: true },
    { code: '5..', swap: true, error: true },
  ],
});

export function csrfInput(ctx: PageContext): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrf}">`;
}

function servedBy(ctx: PageContext): string {
  const { host, pid, worker } = ctx.servedBy;
  return `${host}, process ${String(pid)}${worker === undefined ? '' : ` (worker ${String(worker)})`}`;
}

export function page(ctx: PageContext, options: { title: string; active: string; body: Html }): Html {
  const { title, active, body } = options;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<meta name="csrf-token" content="${ctx.csrf}">
<title>${title} · paysim console</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/htmx.min.js" defer></script>
<script src="/console/assets/console.js" defer></script>
</head>
<body hx-boost="true">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <p class="brand"><a href="/console">paysim console</a> <span class="served-by" id="served-by">served by ${servedBy(ctx)}</span></p>
  <nav aria-label="Console pages"><ul>${ctx.nav.map(([path, label]) => html`<li><a href="/console/${path}"${path === active ? raw(' aria-current="page"') : ''}>${label}</a></li>`)}</ul></nav>
  <div class="live-controls" hx-boost="false">
    <span id="live-status" class="live-status" role="status" aria-live="polite">Live updates need JavaScript</span>
    <label class="switch"><input type="checkbox" id="pause"> Pause</label>
    <label for="refresh-mode">Updates</label>
    <select id="refresh-mode"><option value="live">live (SSE)</option><option value="5s">every 5 s</option></select>
    ${ctx.loggedIn ? html`<form method="post" action="/console/logout" class="inline">${csrfInput(ctx)}<button type="submit">Log out</button></form>` : ''}
  </div>
</header>
<main id="main" tabindex="-1">
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

/** A notice (success) or error line above a page's content. */
export function notice(kind: 'ok' | 'error', text: string | undefined, id?: string): Html {
  if (text === undefined) return html``;
  return html`<p class="notice notice-${kind}" role="${kind === 'error' ? 'alert' : 'status'}"${id === undefined ? raw('') : html` id="${id}"`}>${text}</p>`;
}

/**
 * A link past a long list to the paragraph with its page links (Older, Newest), shown only while it
 * has the focus: with a hundred rows of links and buttons, keyboard users would otherwise tab
 * through every one of them to reach Older. The target paragraph has `id` and `tabindex="-1"`.
 */
export function skipToPaging(target: string): Html {
  return html`<a class="skip-inline" href="#${target}">Skip to the page links (Older, Newest)</a>`;
}
