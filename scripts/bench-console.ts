import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { findChromium } from '../test/helpers/chromium.ts';
import { createBench, loadAverage, machine, percentile, positiveInt, runBench, startServer, StartError, table, type ServerChild as Service } from './bench-support.ts';

/**
 * `make bench-console`: how long a change takes to show in the web console (issue 13: "a live
 * change shows within 1 s"). The bound is measured here and printed, never asserted in the test
 * suite (test/browser/console.test.ts proves the live path itself): a wall-clock assertion there
 * failed on a loaded CI machine (1,106 ms and 1,194 ms at load 12).
 *
 * The service runs in a child process (`node src/server.ts`, STORE=memory, LOG_LEVEL=warn, on a
 * free port of 127.0.0.1) with DEFAULT_APPROVE_DELAY_MS=APPROVE_MS and no load shedding (with
 * Chromium next to it the event loop lags and an API call could be answered 503 "overloaded",
 * which is not what is measured). Headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core, every request outside 127.0.0.1 blocked) opens two pages, both live (their
 * event stream open): the payments list, and one intent's page.
 *
 * First WARM_UP payments and page renders (see warmUp). Then, for each of BENCH_CHANGES changes
 * (default 50), one after the other, APPROVE_MS + SETTLE_MS
 * apart so that the pages settle (their refreshes are spaced by at least 200 ms):
 * - **created**: POST /v1/sim/intent (scenario approve); from the API's answer to the row
 *   `tr[data-id=<id>]` being in the list page;
 * - **decided**: the intent's page is opened (and live) before its decision; from the decision
 *   (the intent's `decided_at`, read from GET /v1/sim/intents/{id} afterwards) to its status
 *   APPROVED being in that page. An intent decided before its page was live is not a sample (its
 *   page was loaded, not changed live); the report says how many.
 * The times are read in the page: a MutationObserver notes (Date.now()) when each appears in the
 * DOM, so the bench's own polling adds nothing; the service, the page and this script share the
 * machine's clock. It is the time to the DOM, before the browser paints it.
 *
 * Prints p50, p95, p99 and max of each against the 1 s bound, the number of samples, the load
 * average before and after, and the machine. Exits 1 when a change never shows (TIMEOUT_MS) or
 * no sample could be taken. Bounded: sampling stops after BENCH_SECONDS (default 90) with the
 * samples taken so far.
 * Run: `make bench-console`.
 */

const CHANGES = positiveInt('BENCH_CHANGES', 50);
const BUDGET_MS = positiveInt('BENCH_SECONDS', 90) * 1000;
/** The issue's bound. */
const BOUND_MS = 1000;
/** Long enough for the intent's page to load and go live between creation and decision. */
const APPROVE_MS = 1000;
const SETTLE_MS = 300;
/** A change not shown by then never will be: the page's refreshes are at most 5 s apart. */
const TIMEOUT_MS = 10_000;
const WARM_UP = 20;

const bench = createBench('bench-console');

/**
 * Before the page's scripts: notes when each payment row (by id) and each status of the payment
 * page first appear in the DOM, in `window.benchSeen`.
 */
const OBSERVE = `(() => {
  const seen = (window.benchSeen = {});
  const note = () => {
    const now = Date.now();
    for (const row of document.querySelectorAll('tr[data-id]')) seen[row.dataset.id] ??= now;
    for (const status of document.querySelectorAll('#payment-status [data-status]')) seen['status:' + status.dataset.status] ??= now;
  };
  new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-id', 'data-status'] });
})()`;

function startService(): Promise<Service> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STORE: 'memory',
    LOG_LEVEL: 'warn',
    WEBHOOK_SECRET: 'whsec_YmVuY2gtY29uc29sZS13ZWJob29rLXNlY3JldA==',
    DEFAULT_APPROVE_DELAY_MS: String(APPROVE_MS),
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    CONSOLE_ENABLED: 'true',
  };
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'SERVICE_AUTH_TOKEN', 'MIX', 'FAULTS_ENABLED']) delete env[name];
  return startServer(bench, 'the service', ['src/server.ts'], env);
}

async function openPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.addInitScript(OBSERVE);
  await page.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort('blockedbyclient')));
  return page;
}

async function goLive(page: Page, url: string): Promise<void> {
  await page.goto(url);
  // Functions, not strings, for waitForFunction: the console's CSP forbids eval, and a string predicate is one.
  await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { dataset: Record<string, string> } | null } }).document.getElementById('live-status')?.dataset.state === 'live', undefined, {
    timeout: TIMEOUT_MS,
    polling: 50,
  });
}

/** When `key` first appeared in `page` (page's Date.now()); a StartError after TIMEOUT_MS. */
async function seenAt(page: Page, key: string, what: string): Promise<number> {
  try {
    const handle = await page.waitForFunction((k) => (globalThis as unknown as { benchSeen: Record<string, number> }).benchSeen[k], key, { timeout: TIMEOUT_MS, polling: 50 });
    return (await handle.jsonValue()) as number;
  } catch {
    throw new StartError(`the page never showed ${what} (waited ${TIMEOUT_MS} ms)`);
  }
}

/**
 * A few payments and page renders before the pages open: what is measured is a warm service. A cold
 * one's first renders take 70–150 ms against 2–7 once warm (JIT, the first rows' markup), which adds
 * to its first changes' times (it no longer spaces the page's next refreshes: one slow refresh alone
 * does not, spacingCost in assets/console.js).
 */
async function warmUp(service: Service): Promise<void> {
  for (let i = 1; i <= WARM_UP; i++) {
    const made = await api<{ payment_intent_id: string }>(service, 'POST', '/v1/sim/intent', { reservation_id: `R-bench-console-warm-up-${i}`, amount: 1000, scenario: 'approve' });
    for (const path of ['/console/payments?dialect=&status=&q=', `/console/payments/intent/${made.payment_intent_id}`]) {
      const response = await fetch(`${service.url}${path}`, { headers: { 'x-console-refresh': '1' }, signal: AbortSignal.timeout(10_000) });
      await response.text();
      if (!response.ok) throw new StartError(`GET ${path} answered ${response.status}`);
    }
  }
}

async function api<T>(service: Service, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${service.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new StartError(`${method} ${path} answered ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

function row(name: string, samples: number[]): string[] {
  const sorted = Float64Array.from(samples).sort();
  const over = samples.filter((ms) => ms >= BOUND_MS).length;
  const ms = (p: number) => String(Math.round(percentile(sorted, p)));
  return [name, String(samples.length), ms(50), ms(95), ms(99), ms(100), over === 0 ? 'within' : `over (${over} of ${samples.length})`];
}

async function main(): Promise<number> {
  const chromiumPath = findChromium();
  if (chromiumPath === undefined) throw new StartError('chromium is not installed (apt-get install -y --no-install-recommends chromium)');
  const loadBefore = loadAverage();
  bench.progress('starting the service and Chromium');
  const [service, browser] = await Promise.all([startService(), chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'], timeout: 60_000 })]);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const list = await openPage(context);
    const single = await openPage(context);
    await warmUp(service);
    await goLive(list, `${service.url}/console/payments?dialect=&status=&q=`);

    const created: number[] = [];
    const decided: number[] = [];
    let late = 0;
    const stopAt = Date.now() + BUDGET_MS;
    for (let i = 1; i <= CHANGES && Date.now() < stopAt; i++) {
      bench.signal.throwIfAborted();
      const made = await api<{ payment_intent_id: string }>(service, 'POST', '/v1/sim/intent', { reservation_id: `R-bench-console-${i}`, amount: 1000 + i, scenario: 'approve' });
      const answered = Date.now();
      const id = made.payment_intent_id;
      const rowSeen = await seenAt(list, id, `payment ${id} in the list`);
      await goLive(single, `${service.url}/console/payments/intent/${id}`);
      created.push(rowSeen - answered);
      const loadedDecided = await single.evaluate<boolean>("window.benchSeen['status:APPROVED'] !== undefined");
      const statusSeen = await seenAt(single, 'status:APPROVED', `payment ${id} APPROVED on its page`);
      const intent = await api<{ status: string; decided_at: string | null }>(service, 'GET', `/v1/sim/intents/${id}`);
      if (intent.status !== 'APPROVED' || intent.decided_at === null) throw new StartError(`payment ${id} is ${intent.status} (decided_at ${intent.decided_at})`);
      if (loadedDecided) late += 1;
      else decided.push(statusSeen - Date.parse(intent.decided_at));
      if (i % 10 === 0) bench.progress(`${i} changes`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
    if (created.length === 0 || decided.length === 0) throw new StartError(`no sample taken (${created.length} created, ${decided.length} decided, ${late} decided before their page was live)`);

    process.stdout.write(`A live change to the console's pages, from the API's answer or the decision to the change in the page's DOM (ms); the issue's bound: ${BOUND_MS} ms\n\n`);
    process.stdout.write(
      `${table(
        ['change', 'samples', 'p50', 'p95', 'p99', 'max', `vs ${BOUND_MS / 1000} s`],
        [row('created: row in the payments list', created), row("decided: status on the intent's page", decided)],
        (column) => column >= 1 && column <= 5,
      )}\n\n`,
    );
    if (late > 0) process.stdout.write(`${late} intents were decided before their page was live: not counted\n`);
    process.stdout.write(`load average (1 / 5 / 15 min): before ${loadBefore}, after ${loadAverage()}\nmachine: ${machine()}\n`);
    return 0;
  } finally {
    await browser.close().catch(() => undefined);
  }
}

await runBench(bench, main);
