import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { loadConfig } from '../../src/config.ts';
import type { LiveFeed } from '../../src/console/feed.ts';
import { CHROMIUM_MISSING, chromiumPath, inCi } from '../helpers/chromium.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

/**
 * The web console (issue 13) in a real browser: headless Chromium (Debian's package) through
 * playwright-core, against the whole service listening on 127.0.0.1 with the real clock. Every
 * request the page makes to anywhere else is blocked and reported. Each test does what a person
 * does (fills forms, clicks, watches) and asserts what the page shows, then checks the service's
 * own API agrees. Screenshots of the main pages go to docs/ (the README shows them).
 * Without chromium the suite is skipped locally and fails in CI (CI set).
 */

const TIMEOUT = 60_000;
/**
 * How long a test waits for a live change to show: generous, so a loaded machine cannot fail it.
 * The bound (a live change shows within 1 s) is measured by `make bench-console`
 * (scripts/bench-console.ts), not asserted here: wall-clock assertions of it failed on a loaded CI
 * machine (1,106 ms and 1,194 ms at load 12). What these tests prove is the mechanism: see showsLive.
 */
const LIVE_WAIT_MS = 10_000;
const XSS = '<img src=x onerror=alert(1)>';
const USER = 'user_console_1';
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
/**
 * Where the screenshots go: docs/ (what the README shows) with CONSOLE_SCREENSHOTS=docs, as
 * `make screenshots` sets it; otherwise a scratch folder, so a test run leaves the tree clean.
 */
const DOCS = process.env.CONSOLE_SCREENSHOTS === 'docs' ? new URL('../../docs/', import.meta.url) : pathToFileURL(`${mkdtempSync(join(tmpdir(), 'paysim-console-shots-'))}/`);

interface Served {
  app: FastifyInstance;
  origin: string;
  feeds: LiveFeed[];
}

async function serve(env: Record<string, string>): Promise<Served> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    WEBHOOK_SECRET: 'whsec_Y29uc29sZS10ZXN0LXNlY3JldA==',
    SHUTDOWN_TIMEOUT_MS: '0',
    DEFAULT_APPROVE_DELAY_MS: '1500',
    DEFAULT_FAIL_DELAY_MS: '300',
    DEFAULT_DELAY_DELAY_MS: '600000',
    WEBHOOK_MAX_RETRIES: '0',
    WEBHOOK_TIMEOUT_MS: '2000',
    MOCK_MIN_DELAY_MS: '0',
    MOCK_MAX_DELAY_MS: '0',
    EVENT_PROCESSING_DELAY_MS: '0',
    V2_COMPLETE_DELAY_MS: '0',
    // No load shedding: with Chromium starting next to it on a busy machine, the event loop lags and
    // an API call the test makes answered 503 "overloaded" (the flaky "confirms a pending /api/v2
    // payment", whose first call is the creation it asserts). Load shedding has tests of its own.
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  const feeds: LiveFeed[] = [];
  const app = await buildApp({ config, logger: false, onConsoleFeed: (feed) => feeds.push(feed) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { app, origin: `http://127.0.0.1:${address.port}`, feeds };
}

describe.skipIf(chromiumPath === undefined && !inCi)('the web console in Chromium', () => {
  let served: Served;
  let receiver: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  const blocked: string[] = [];
  const dialogs: string[] = [];
  /** How the pages answer a dialog (a confirmation): dismissed unless a test says otherwise. */
  let dialogAnswer: 'accept' | 'dismiss' = 'dismiss';
  const consoleErrors: string[] = [];

  async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${served.origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const textBody = await res.text();
    return { status: res.status, json: textBody === '' ? undefined : JSON.parse(textBody) };
  }

  /** Pages still open: closed after each test, so a failed test leaves no event stream holding one of Chromium's six connections per host. */
  const open = new Set<Page>();
  const contexts = new Set<BrowserContext>();
  afterEach(async () => {
    for (const page of open) await page.close().catch(() => undefined);
    open.clear();
    for (const ctx of contexts) await ctx.close().catch(() => undefined);
    contexts.clear();
  });

  /**
   * A page whose timers and Date run on Playwright's clock (in a context of its own: the clock is the
   * context's, and the other tests' pages stay on the wall clock). Time flows as usual; a test moves
   * the page's 5-second schedules on with fiveSeconds() rather than waiting for them (waited for, the
   * three tests that use them took 50 s, a quarter of this file's time).
   */
  async function clockedPage(): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.add(ctx);
    await ctx.clock.install();
    return newPage(ctx);
  }

  /**
   * Pauses a clocked page's clock 50 ms past its now, and not before `notBefore`; answers when. Asked
   * again if the page's clock ran past that time meanwhile, which Playwright refuses ("Cannot
   * fast-forward to the past": a run at load 8, the round trips between reading its now and pausing
   * it longer than 50 ms).
   */
  async function pauseSoon(page: Page, notBefore: number): Promise<number> {
    for (;;) {
      const at = Math.max(await page.evaluate<number>('Date.now()'), notBefore) + 50;
      try {
        await page.clock.pauseAt(at);
        return at;
      } catch (error) {
        if (!String(error).includes('Cannot fast-forward to the past')) throw error;
      }
    }
  }

  /** Moves a clocked page's clock on by the 5-second refresh's interval (SLOW_POLL_MS): its timers due meanwhile fire, once each. */
  async function fiveSeconds(page: Page): Promise<void> {
    await page.clock.fastForward(5000);
  }

  async function newPage(ctx: BrowserContext = context): Promise<Page> {
    const page = await ctx.newPage();
    open.add(page);
    page.setDefaultTimeout(15_000);
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void (dialogAnswer === 'accept' ? dialog.accept() : dialog.dismiss());
    });
    page.on('console', (message) => {
      // The refusals some tests provoke (403, 409, 422): Chromium reports each answer's status (its network
      // log, as for any 4xx); nothing else may be reported, htmx's 'Response Status Error Code' included.
      if (message.type() === 'error' && !/^Failed to load resource: the server responded with a status of (403|409|422) /.test(message.text())) consoleErrors.push(message.text());
    });
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      blocked.push(url.href);
      return route.abort('blockedbyclient');
    });
    return page;
  }

  /** Marks the document: a reload or a navigation drops the mark. */
  async function mark(page: Page): Promise<void> {
    await page.evaluate('window.consoleTestMark = 1');
  }

  async function stillMarked(page: Page): Promise<boolean> {
    return page.evaluate<boolean>('window.consoleTestMark === 1');
  }

  /** Makes the page hidden (another tab, a minimised window) or shown again, as the browser tells a page. */
  async function setHidden(page: Page, hidden: boolean): Promise<void> {
    await page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${String(hidden)} }); document.dispatchEvent(new Event('visibilitychange'))`);
  }

  /**
   * The page's spacing of refreshes after two of its last three said to take 150 ms to make:
   * COST_FACTOR (20) × 150 ms (assets/console.js; one slow refresh alone does not space them).
   */
  const SPACING = 20 * 150;

  /**
   * Counts, in the page, from before its own scripts, the changes its event stream tells
   * (`window.consoleTestChanges`, counted before the page's own listener runs, in the same dispatch),
   * the refreshes it starts (`window.consoleTestRefreshes`, as its fetch is called), and notes every
   * state its live status is given (`window.consoleTestStates`): no round trip to this process
   * between what the page does and what a test reads.
   */
  const OBSERVE_PAGE = `(() => {
    window.consoleTestChanges = 0;
    window.consoleTestRefreshes = 0;
    window.consoleTestStates = [];
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('change', () => { window.consoleTestChanges += 1; });
      }
    };
    const nativeFetch = window.fetch;
    window.fetch = (input, init) => {
      if (new Headers(init?.headers).get('x-console-refresh') === '1') window.consoleTestRefreshes += 1;
      return nativeFetch(input, init);
    };
    new MutationObserver((records) => {
      for (const r of records) if (r.target.id === 'live-status') window.consoleTestStates.push(r.target.dataset.state);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
  })()`;

  /**
   * The Payments page's refreshes said to have taken 150 ms to make (as one reading thousands of
   * payments under load may), or, given `claims`, the first ones said to have taken those (`app;dur=…`)
   * and the rest 150 ms: when each began, and the Server-Timing the service really sent.
   */
  async function slowPaymentRefreshes(page: Page, claims: string[] = []): Promise<{ starts: number[]; timings: string[] }> {
    const starts: number[] = [];
    const timings: string[] = [];
    await page.route('**/console/payments*', async (route) => {
      if (route.request().headers()['x-console-refresh'] !== '1') return route.fallback();
      starts.push(Date.now());
      const claimed = claims.shift() ?? '150.0';
      const response = await route.fetch();
      timings.push(response.headers()['server-timing'] ?? '');
      return route.fulfill({ response, headers: { ...response.headers(), 'server-timing': `app;dur=${claimed}` } });
    });
    return { starts, timings };
  }

  /**
   * The Payments page opened with its refreshes said to be slow (`slowPaymentRefreshes(page, claims)`)
   * and observed (OBSERVE_PAGE), once live and its first refresh (the stream's hello's) made; answers
   * how many refreshes it has made so far.
   */
  async function openSlowPayments(page: Page, claims: string[] = []): Promise<() => Promise<number>> {
    await slowPaymentRefreshes(page, claims);
    await page.addInitScript(OBSERVE_PAGE);
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`);
    await live(page);
    const refreshed = (): Promise<number> => page.evaluate<number>('Number(document.body.dataset.refreshed ?? 0)');
    await expect.poll(refreshed, { timeout: 5000 }).toBeGreaterThan(0);
    return refreshed;
  }

  /** What the page's event stream has told and its status has been so far (a page opened after addInitScript(OBSERVE_PAGE)). */
  async function liveSoFar(page: Page): Promise<{ changes: number; states: number }> {
    return page.evaluate<{ changes: number; states: number }>('({ changes: window.consoleTestChanges, states: window.consoleTestStates.length })');
  }

  /**
   * Waits (LIVE_WAIT_MS) for `shown` and proves it came through the live path since `since`: the page was
   * not reloaded, its event stream told a change, and its status stayed Live throughout, so no fallback
   * ran (the 1-second polling of a closed stream says 'polling', a failed refresh's 5-second retry says
   * 'error', and the page has no `data-poll` region): only a change the stream told can have brought it.
   * How fast (the issue's 1 s) is `make bench-console`'s figure, not an assertion here.
   */
  async function showsLive(page: Page, shown: Locator, since: { changes: number; states: number }): Promise<void> {
    await shown.waitFor({ timeout: LIVE_WAIT_MS });
    const seen = await page.evaluate<{ told: boolean; states: string[]; now: string | undefined; marked: boolean }>(
      `({ told: window.consoleTestChanges > ${since.changes}, states: window.consoleTestStates.slice(${since.states}).filter((s) => s !== 'live'), now: document.getElementById('live-status')?.dataset.state, marked: window.consoleTestMark === 1 })`,
    );
    expect(seen).toEqual({ told: true, states: [], now: 'live', marked: true });
  }

  async function live(page: Page): Promise<void> {
    await expect.poll(() => page.locator('#live-status').getAttribute('data-state'), { timeout: 5000 }).toBe('live');
  }

  async function axe(page: Page): Promise<Array<{ id: string; impact: string; nodes: number }>> {
    await page.evaluate(AXE_SOURCE); // through the DevTools protocol: the page's CSP does not apply
    const violations = await page.evaluate<Array<{ id: string; impact: string; nodes: number }>>(
      "axe.run({ resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))",
    );
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  }

  beforeAll(async () => {
    if (chromiumPath === undefined) throw new Error(CHROMIUM_MISSING);
    receiver = await startReceiver();
    const launching = chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'], timeout: TIMEOUT });
    [served, browser] = await Promise.all([serve({}), launching]);
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await served?.app.close();
    await receiver?.close();
  }, TIMEOUT);

  it('creates a native intent from the form and shows it turn APPROVED live, without a reload', async () => {
    const page = await newPage();
    await page.addInitScript(OBSERVE_PAGE);
    await page.goto(`${served.origin}/console`);
    expect(page.url()).toBe(`${served.origin}/console/payments`);
    await live(page);
    await page.getByLabel('Reservation id').fill('R-console-1');
    await page.getByLabel('Amount (minor units)').fill('45000');
    await page.getByRole('group', { name: 'Native intent (/v1/sim)' }).getByLabel('Scenario').selectOption('approve');
    await page.getByRole('button', { name: 'Create intent' }).click();

    await page.waitForURL(/\/console\/payments\/intent\/pay_[0-9A-Z]{26}\?notice=created$/);
    const id = /\/(pay_[0-9A-Z]{26})\?/.exec(page.url())?.[1] as string;
    await expect.poll(() => page.locator('#payment-status [data-status]').innerText()).toBe('PENDING');
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Payment created.');
    await mark(page);
    // The intent is decided 1.5 s after creation; the page shows it through its event stream (how soon: `make bench-console`).
    const since = await liveSoFar(page);
    await showsLive(page, page.locator('#payment-status [data-status="APPROVED"]'), since);
    expect(((await api('GET', `/v1/sim/intents/${id}`)).json as { status: string }).status).toBe('APPROVED');
    expect(await stillMarked(page)).toBe(true);
    const history = await page.locator('#hist-h + .scroll table tbody tr').allInnerTexts();
    expect(history.map((row) => row.split('\t').slice(1, 3))).toEqual([
      ['PENDING', 'payment.created'],
      ['APPROVED', 'payment.approved'],
    ]);
    // The list shows it too, with its reference and amount.
    await page.getByRole('link', { name: /Native intents/ }).click();
    const row = page.locator(`tr[data-id="${id}"]`);
    await expect.poll(() => row.locator('td').allInnerTexts()).toEqual([id, 'Native intents (/v1/sim)', 'R-console-1', '45,000 KRW', 'APPROVED', expect.stringMatching(/^\d{4}-/)]);
    await page.screenshot({ path: new URL('console-payment.png', DOCS).pathname, fullPage: false });
    await page.close();
  }, TIMEOUT);

  it('creates an intent decided by scenario mix with the weights of the form (MIX not set), and says in its own words when weights are missing', async () => {
    const errorsBefore = consoleErrors.length;
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments`);
    const form = page.getByRole('group', { name: 'Native intent (/v1/sim)' });
    await form.getByLabel('Reservation id').fill('R-console-mix');
    await form.getByLabel('Scenario').selectOption('mix');
    await form.getByRole('button', { name: 'Create intent' }).click();
    await expect.poll(() => page.locator('.notice-error').innerText()).toBe('Scenario mix needs weights: give approve, fail or delay a weight (MIX is not set, so there are no default weights).');
    // The page stays, with what was typed, and the error (just above the form) has the focus.
    expect([new URL(page.url()).pathname, await form.getByLabel('Reservation id').inputValue(), await form.getByLabel('Scenario').inputValue()]).toEqual(['/console/payments', 'R-console-mix', 'mix']);
    expect(await page.evaluate<string[]>("[document.activeElement?.className, document.activeElement?.getAttribute('role'), document.activeElement?.nextElementSibling?.tagName]")).toEqual(['notice notice-error form-error', 'alert', 'FORM']);
    expect(((await api('GET', '/v1/sim/intents')).json as { data: Array<{ reservation_id: string }> }).data.filter((i) => i.reservation_id === 'R-console-mix')).toEqual([]);

    await page.goto(`${served.origin}/console/payments`);
    await form.getByLabel('Reservation id').fill('R-console-mix');
    await form.getByLabel('Scenario').selectOption('mix');
    const weights = form.getByRole('group', { name: 'Mix weights (scenario mix)' });
    expect(await weights.locator('small').innerText()).toBe('Each payment picks an outcome with probability weight / total. Needed for mix: MIX is not set.');
    await weights.getByLabel('approve').fill('0');
    await weights.getByLabel('fail').fill('1');
    await form.getByRole('button', { name: 'Create intent' }).click();
    await page.waitForURL(/\/console\/payments\/intent\/pay_[0-9A-Z]{26}\?notice=created$/);
    const id = /\/(pay_[0-9A-Z]{26})\?/.exec(page.url())?.[1] as string;
    await page.locator('#payment-status [data-status="FAILED"]').waitFor({ timeout: 3000 });
    expect((await api('GET', `/v1/sim/intents/${id}`)).json).toMatchObject({ reservation_id: 'R-console-mix', scenario: 'mix', status: 'FAILED' });
    await page.close();
    // The refused form is an answer like any other: Chromium's network log has its status, and nothing
    // else is in the console (htmx logged 'Response Status Error Code 400 from /console/payments/new/intent').
    expect(consoleErrors.splice(errorsBefore)).toEqual(['Failed to load resource: the server responded with a status of 400 (Bad Request)']);
  }, TIMEOUT);

  it('shows payments made through the API in the decisions chart live, without a reload', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/charts`);
    await live(page);
    await mark(page);
    const intentRow = page.locator('#charts-dialects tr[data-dialect="intent"] td');
    const counts = async (): Promise<number[]> => (await intentRow.allInnerTexts()).map(Number);
    const [approvedBefore, failedBefore] = await counts();
    // The table of every interval, opened, stays open through the refreshes (focus moved off it, so it is refreshed).
    await page.getByText('Every 10 seconds, as a table').click();
    await page.locator('h1').click();
    /** The last second of the failed line above zero (its y below the baseline, 192), or -1. */
    const lastFailedSecond = (): Promise<number> =>
      page.evaluate<number>("(document.querySelector('#chart-decisions path.line-failed')?.getAttribute('d') ?? '').split(' ').map((p) => Number(p.slice(1).split(',')[1])).findLastIndex((y) => y < 192)");
    for (const scenario of ['fail', 'fail', 'approve']) {
      const made = await api('POST', '/v1/sim/intent', { reservation_id: `R-chart-${scenario}`, amount: 500, scenario });
      expect(made.status).toBe(200);
    }
    // Declined 0.3 s after creation, approved 1.5 s after: both show without a reload.
    await expect.poll(counts, { timeout: 5000 }).toEqual([approvedBefore, (failedBefore as number) + 2]);
    // The two declines are in the chart, within the last seconds of the window (600 points).
    expect(await lastFailedSecond()).toBeGreaterThanOrEqual(595);
    await expect.poll(counts, { timeout: 5000 }).toEqual([(approvedBefore as number) + 1, (failedBefore as number) + 2]);
    expect(await page.locator('#chart-decisions figcaption').innerText()).toMatch(/^Decisions per second by outcome \(last 10 minutes, \d+ decisions\)$/);
    expect(await page.locator('#charts-table-details').getAttribute('open')).toBe('');
    expect(await page.locator('#charts-table tbody tr').count()).toBe(60);
    expect(await stillMarked(page)).toBe(true);
    expect(blocked).toEqual([]);
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, TIMEOUT);

  it('lists a payment made through the API live, without a reload, and the pause switch holds updates back', async () => {
    const page = await newPage();
    await page.addInitScript(OBSERVE_PAGE);
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`);
    await live(page);
    await mark(page);
    const since = await liveSoFar(page);
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-live-list', amount: 1200, scenario: 'fail' });
    expect(made.status).toBe(200);
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    // Through the event stream (how soon, against the 1 s: `make bench-console`).
    await showsLive(page, page.locator(`tr[data-id="${id}"]`), since);
    await page.locator(`tr[data-id="${id}"] [data-status="FAILED"]`).waitFor({ timeout: 2000 });

    await page.getByLabel('Pause').check();
    await expect.poll(() => page.locator('#live-status').innerText()).toBe('Paused');
    const paused = await api('POST', '/v1/sim/intent', { reservation_id: 'R-while-paused', amount: 1300, scenario: 'fail' });
    const pausedId = (paused.json as { payment_intent_id: string }).payment_intent_id;
    await page.waitForTimeout(1200);
    expect(await page.locator(`tr[data-id="${pausedId}"]`).count()).toBe(0);
    await page.getByLabel('Pause').uncheck(); // live again: catches up at once
    await page.locator(`tr[data-id="${pausedId}"]`).waitFor({ timeout: 3000 });
    expect(await stillMarked(page)).toBe(true);

    // The original console's 5-second refresh, remembered across pages and reloads.
    await page.getByLabel('Updates').selectOption('5s');
    await expect.poll(() => page.locator('#live-status').innerText()).toBe('Refreshing every 5 s');
    await page.reload();
    await expect.poll(() => page.locator('#live-status').innerText()).toBe('Refreshing every 5 s');
    expect(await page.getByLabel('Updates').inputValue()).toBe('5s');
    await page.getByLabel('Updates').selectOption('live');
    await live(page);
    await page.close();
  }, TIMEOUT);

  it('refreshes nothing while the page is hidden, and catches up once when it shows again (a user test: hidden tabs refreshed as often as shown ones)', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`);
    await live(page);
    // The refresh the stream's hello starts (what changed before it connected) ends first: counted,
    // it was a refresh of a shown page (a CI run counted it when it began just after live(page)).
    await expect.poll(() => page.evaluate<string | undefined>('document.body.dataset.refreshed'), { timeout: 5000 }).toBeDefined();
    await setHidden(page, true);
    let refreshes = 0;
    page.on('request', (request) => {
      if (request.headers()['x-console-refresh'] === '1') refreshes += 1;
    });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const made = await api('POST', '/v1/sim/intent', { reservation_id: `R-hidden-${String(n)}`, amount: 100, scenario: 'fail' });
      ids.push((made.json as { payment_intent_id: string }).payment_intent_id);
      await page.waitForTimeout(400);
    }
    expect(refreshes).toBe(0);
    expect(await page.locator(`tr[data-id="${ids[0] as string}"]`).count()).toBe(0);
    await setHidden(page, false);
    for (const id of ids) await page.locator(`tr[data-id="${id}"] [data-status="FAILED"]`).waitFor({ timeout: 3000 });
    expect(refreshes).toBe(1);
    await page.close();
  }, TIMEOUT);

  it('refreshes a page that is slow to make less often: at least 20 times as long apart as the service says its recent ones took to make (a user test: filtered pages refreshed four times a second raised the API\'s p99 4–5×)', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`);
    await live(page);
    const { starts, timings } = await slowPaymentRefreshes(page);
    // A change every 200 ms, for 6 s at most: without the rule, a refresh every ~200 ms. It stops once
    // the third refresh has begun, the first one spaced (about 3.4 s in).
    for (let n = 0; n < 30 && starts.length < 3; n++) {
      await api('POST', '/v1/sim/intent', { reservation_id: `R-slow-page-${String(n)}`, amount: 100, scenario: 'fail' });
      await page.waitForTimeout(200);
    }
    // The first slow one alone does not space them (see the cold service's test below); from the second on, each does.
    expect(starts.length).toBeGreaterThanOrEqual(3);
    for (let i = 2; i < starts.length; i++) expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(SPACING);
    for (const timing of timings) expect(timing).toMatch(/^app;dur=\d+\.\d$/);
    await page.close();
  }, TIMEOUT);

  it('a refresh that comes due after the page was hidden waits for it to show again (a review: it still ran, hidden)', async () => {
    // The page's clock, paused once the last refresh below is made: the refresh due SPACING after it is
    // moved past, not waited for (3.5 s a run), and cannot come due before the page is hidden however
    // slow this machine is.
    const page = await clockedPage();
    // Every refresh of this page said to take 150 ms to make, its first (the stream's hello's) too: each
    // comes due SPACING after the last one ended, whatever this machine's real make time. (Counted from a
    // real first refresh, the one after a change waited 20× its cost, up to 5 s, on a slow CI VM, as long
    // as the old test's poll: it saw none.)
    const refreshed = await openSlowPayments(page);
    // A second slow refresh (one alone does not space them): a change, and its refresh made.
    const first = await refreshed();
    await api('POST', '/v1/sim/intent', { reservation_id: 'R-due-before', amount: 100, scenario: 'delay' });
    await expect.poll(refreshed, { timeout: 5000 }).toBeGreaterThan(first);
    const seen = await page.evaluate<{ changes: number; refreshes: number }>('({ changes: window.consoleTestChanges, refreshes: window.consoleTestRefreshes })');
    // A change told while shown, the last refresh just made: a refresh is due SPACING after that one ended, on a timer.
    const last = await refreshed();
    const due = last + SPACING;
    await pauseSoon(page, last);
    const later = await api('POST', '/v1/sim/intent', { reservation_id: 'R-due', amount: 100, scenario: 'delay' });
    const laterId = (later.json as { payment_intent_id: string }).payment_intent_id;
    await expect.poll(() => page.evaluate<number>('window.consoleTestChanges'), { timeout: 5000 }).toBeGreaterThan(seen.changes);
    // Hidden before it comes due, no other refresh made meanwhile (else this test would check nothing), then kept hidden until well after.
    expect(await page.evaluate<[boolean, number]>(`[Date.now() < ${String(due)}, Number(document.body.dataset.refreshed)]`)).toEqual([true, last]);
    await setHidden(page, true);
    await page.clock.runFor(SPACING + 500);
    expect(await page.evaluate<number>('Date.now()')).toBeGreaterThan(due + 500);
    expect(await page.evaluate<number>('window.consoleTestRefreshes')).toBe(seen.refreshes);
    expect(await page.locator(`tr[data-id="${laterId}"]`).count()).toBe(0);
    // Time flows again (a refresh due at once is a timer too), then the page shows.
    await page.clock.resume();
    await setHidden(page, false);
    await page.locator(`tr[data-id="${laterId}"]`).waitFor({ timeout: 3000 });
    expect(await page.evaluate<number>('window.consoleTestRefreshes')).toBe(seen.refreshes + 1);
    await page.close();
  }, TIMEOUT);

  it('a single slow refresh (a cold service\'s first render) does not space the next ones out: a change after it is fetched at once; a second slow one does space them (a fresh service\'s first changes showed 1.4–3 s late)', async () => {
    // The page's clock, paused once its first refresh is made: what comes due is moved on, not waited for.
    const page = await clockedPage();
    // The stream's hello's refresh said to take 250 ms (×20: the 5 s cap), then the next one too.
    const refreshed = await openSlowPayments(page, ['250.0', '250.0']);
    const first = await refreshed();
    const pausedAt = await pauseSoon(page, first);
    // Spaced by that one refresh, the next would be due 5 s after it: after the 200 ms moved on below.
    expect(pausedAt + 200).toBeLessThan(first + 5000);
    const count = (): Promise<{ changes: number; refreshes: number }> => page.evaluate<{ changes: number; refreshes: number }>('({ changes: window.consoleTestChanges, refreshes: window.consoleTestRefreshes })');
    const before = await count();
    expect(before.refreshes).toBe(1);
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-after-slow-first', amount: 100, scenario: 'delay' });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    await expect.poll(async () => (await count()).changes, { timeout: 5000 }).toBeGreaterThan(before.changes);
    await page.clock.runFor(200); // MIN_GAP_MS
    await expect.poll(async () => (await count()).refreshes, { timeout: 5000 }).toBe(2);
    await page.locator(`tr[data-id="${id}"]`).waitFor({ timeout: 5000 });
    // That refresh said 250 ms as well: two slow of the last three, the next change waits 5 s (20 × 250 ms, the cap).
    await expect.poll(refreshed, { timeout: 5000 }).toBeGreaterThan(first);
    const second = await refreshed();
    const seen = await count();
    const next = await api('POST', '/v1/sim/intent', { reservation_id: 'R-after-slow-second', amount: 100, scenario: 'delay' });
    const nextId = (next.json as { payment_intent_id: string }).payment_intent_id;
    await expect.poll(async () => (await count()).changes, { timeout: 5000 }).toBeGreaterThan(seen.changes);
    await page.clock.runFor(4000);
    expect([await page.evaluate<number>('Date.now()') < second + 5000, (await count()).refreshes, await page.locator(`tr[data-id="${nextId}"]`).count()]).toEqual([true, 2, 0]);
    await page.clock.runFor(1100);
    await page.locator(`tr[data-id="${nextId}"]`).waitFor({ timeout: 5000 });
    expect((await count()).refreshes).toBe(3);
    await page.close();
  }, TIMEOUT);

  it('a form refused on a page whose address holds the last notice keeps the refresh on its way (a review: it was dropped, the page stale while saying Live)', async () => {
    const errorsBefore = consoleErrors.length;
    const page = await newPage();
    await page.goto(`${served.origin}/console/webhooks?notice=test_sent#main`);
    await live(page);
    let started!: () => void;
    const refreshing = new Promise<void>((resolve) => (started = resolve));
    await page.route('**/console/webhooks*', async (route) => {
      if (route.request().headers()['x-console-refresh'] !== '1') return route.fallback();
      const response = await route.fetch();
      started();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return route.fulfill({ response });
    });
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-refused-under-notice', amount: 100, scenario: 'fail', webhook_url: 'http://127.0.0.1:9/closed' });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    await refreshing;
    await page.locator('#t-intent').fill('pay_nonexistent');
    await page.locator('#t-url').fill('http://127.0.0.1:9/x');
    await page.getByRole('button', { name: 'Send test webhook' }).click();
    await expect.poll(() => page.locator('.form-error').count(), { timeout: 5000 }).toBe(1);
    // The notice leaves the address, the rest of it stays (the skip link's #main: a review).
    expect(page.url()).toBe(`${served.origin}/console/webhooks#main`);
    await expect.poll(() => page.locator('#deliveries').innerText(), { timeout: 6000 }).toContain(id);
    // The refusal's 404 is the only error the browser logged (Chromium's network log of its status; htmx logs none).
    expect(consoleErrors.splice(errorsBefore).filter((m) => !/^Failed to load resource: the server responded with a status of 404 /.test(m))).toEqual([]);
    await page.close();
  }, TIMEOUT);

  it('says when a 5-second refresh fails (the store away: 503), keeps the rows it has, retries, and clears the notice when a refresh succeeds', async () => {
    const errorsBefore = consoleErrors.length;
    const page = await clockedPage();
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    await page.getByLabel('Updates').selectOption('5s');
    const status = page.locator('#live-status');
    await expect.poll(() => status.innerText()).toBe('Refreshing every 5 s');
    await mark(page);
    const before = await api('POST', '/v1/sim/intent', { reservation_id: 'R-before-outage', amount: 100, scenario: 'delay' });
    const beforeId = (before.json as { payment_intent_id: string }).payment_intent_id;
    await fiveSeconds(page);
    await page.locator(`tr[data-id="${beforeId}"]`).waitFor({ timeout: 5000 });
    // The intents store answers as a Redis store does while Redis is away.
    const store = served.app.core.stores.intents;
    const { list } = store;
    store.list = () => Promise.reject(new StoreUnavailableError());
    try {
      await fiveSeconds(page);
      await expect.poll(() => status.getAttribute('data-state'), { timeout: 5000, interval: 100 }).toBe('error');
      expect(await status.innerText()).toBe('Refresh failed: error 503 · The store is unavailable; retry shortly. Retrying every 5 s.');
      expect([await status.getAttribute('role'), await status.getAttribute('aria-live')]).toEqual(['status', 'polite']);
      // What it showed stays, under the notice; still the same document.
      expect(await page.locator(`tr[data-id="${beforeId}"]`).count()).toBe(1);
      expect(await stillMarked(page)).toBe(true);
      // It keeps trying on its schedule, and keeps saying so.
      const refreshed = Number(await page.evaluate<string>('document.body.dataset.refreshed'));
      await fiveSeconds(page);
      await expect.poll(async () => Number(await page.evaluate<string>('document.body.dataset.refreshed')), { timeout: 5000, interval: 100 }).toBeGreaterThan(refreshed);
      expect(await status.getAttribute('data-state')).toBe('error');
    } finally {
      store.list = list;
    }
    const after = await api('POST', '/v1/sim/intent', { reservation_id: 'R-after-outage', amount: 100, scenario: 'delay' });
    const afterId = (after.json as { payment_intent_id: string }).payment_intent_id;
    await fiveSeconds(page);
    await expect.poll(() => status.getAttribute('data-state'), { timeout: 5000, interval: 100 }).toBe('slow');
    expect(await status.innerText()).toBe('Refreshing every 5 s');
    expect(await page.locator(`tr[data-id="${afterId}"]`).count()).toBe(1);
    expect(await stillMarked(page)).toBe(true);
    expect((await axe(page)).length).toBe(0);
    await page.getByLabel('Updates').selectOption('live');
    await live(page);
    await page.close();
    // The browser reports the 503 answers it got; nothing else.
    expect(consoleErrors.splice(errorsBefore).filter((m) => !/status of 503/.test(m))).toEqual([]);
  }, TIMEOUT);

  it('live: says the store is away as soon as the feed says so, with nothing published to refresh on, and is Live again once it is back (before, "Live" through the outage)', async () => {
    const errorsBefore = consoleErrors.length;
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    await live(page);
    // The stream's hello came and its refresh is done (a refresh of its own during the outage would say it without the feed).
    await expect.poll(() => page.evaluate<string | undefined>('document.body.dataset.refreshed'), { timeout: 5000 }).toBeDefined();
    const status = page.locator('#live-status');
    // Redis away as the service sees it: /readyz's check fails and the stores answer 503. Nothing is published meanwhile.
    const store = served.app.core.stores.intents;
    const { list } = store;
    const { storeUnavailable } = served.app;
    store.list = () => Promise.reject(new StoreUnavailableError());
    served.app.storeUnavailable = () => 'the connection closed';
    try {
      await expect.poll(() => status.getAttribute('data-state'), { timeout: 4000, interval: 100 }).toBe('error');
      expect(await status.innerText()).toBe('Refresh failed: error 503 · The store is unavailable; retry shortly. Retrying every 5 s.');
    } finally {
      store.list = list;
      served.app.storeUnavailable = storeUnavailable;
    }
    // Back: Live within the feed's check, not at the next 5-second retry or the next change.
    const back = Date.now();
    await live(page);
    expect(Date.now() - back).toBeLessThan(4000);
    expect(await status.innerText()).toBe('Live');
    await page.close();
    expect(consoleErrors.splice(errorsBefore).filter((m) => !/status of 503/.test(m))).toEqual([]);
  }, TIMEOUT);

  it('names the process that answered the last refresh: one answered by another worker (a new connection under CLUSTER_WORKERS) swaps its figures in, and its name with them (a review)', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    await live(page);
    await expect.poll(() => page.evaluate<string | undefined>('document.body.dataset.refreshed'), { timeout: 5000 }).toBeDefined();
    const header = page.locator('#served-by');
    expect(await header.innerText()).toBe(`served by ${hostname()}, process ${String(process.pid)}`);
    // The refreshes answered as another worker would answer them.
    await page.route('**/console/payments*', async (route) => {
      if (route.request().headers()['x-console-refresh'] !== '1') return route.fallback();
      const response = await route.fetch();
      const body = (await response.text()).replace(/(<span class="served-by" id="served-by">)[^<]*/, '$1served by other-host, process 4242 (worker 2)');
      return route.fulfill({ response, body });
    });
    await api('POST', '/v1/sim/intent', { reservation_id: 'R-served-by', amount: 100, scenario: 'delay' });
    await expect.poll(() => header.innerText(), { timeout: 5000 }).toBe('served by other-host, process 4242 (worker 2)');
    await page.close();
  }, TIMEOUT);

  it('says Connecting… until its event stream opens, not Live (before, the green of live with the words Connecting…)', async () => {
    const page = await newPage();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/console/events', async (route) => {
      await held;
      return route.continue();
    });
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    const status = page.locator('#live-status');
    expect([await status.innerText(), await status.getAttribute('data-state')]).toEqual(['Connecting…', 'connecting']);
    release();
    await expect.poll(() => status.getAttribute('data-state'), { timeout: 5000 }).toBe('live');
    expect(await status.innerText()).toBe('Live');
    await page.close();
  }, TIMEOUT);

  it('falls back to polling every second when the browser has no event stream', async () => {
    const page = await newPage();
    await page.addInitScript('delete window.EventSource'); // before the page's own scripts; the CSP does not apply
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    await expect.poll(() => page.locator('#live-status').innerText()).toBe('Polling every second (no event stream)');
    await mark(page);
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-polled', amount: 300, scenario: 'fail' });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    await page.locator(`tr[data-id="${id}"]`).waitFor({ timeout: 2500 });
    expect(await stillMarked(page)).toBe(true);
    await page.close();
  }, TIMEOUT);

  it('remembers the filters: a bare visit to the page applies the last ones', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`); // no filter: forgets what earlier tests used
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByLabel('Id or reference').fill('R-live');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(`${served.origin}/console/payments?dialect=&status=failed&q=R-live`);
    // Wait for the filtered list itself, not only for the URL.
    await expect.poll(() => page.locator('table.payments td.ref').allInnerTexts()).toEqual(['R-live-list']);
    expect(await page.locator('[data-count="failed"]').innerText()).toBe('1');
    await page.goto(`${served.origin}/console/payments`);
    await page.waitForURL(`${served.origin}/console/payments?status=failed&q=R-live`);
    expect(await page.getByLabel('Status', { exact: true }).inputValue()).toBe('failed');
    await page.getByRole('link', { name: 'Clear' }).click();
    await page.waitForURL(`${served.origin}/console/payments?dialect=&status=&q=`);
    await page.goto(`${served.origin}/console/payments`);
    expect(page.url()).toBe(`${served.origin}/console/payments`);
    await page.close();
  }, TIMEOUT);

  it('pages a search through Older and back through Newest, each link a whole page of its own', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 105; i++) {
      const made = await api('POST', '/v1/sim/intent', { reservation_id: `R-paged-${String(i).padStart(3, '0')}`, amount: 100 + i, scenario: 'approve' });
      expect(made.status).toBe(200);
      ids.push((made.json as { payment_intent_id: string }).payment_intent_id);
    }
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=R-paged`);
    const listed = () => page.locator('table.payments tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-id')));
    // Newest first: the last 100 made, then the 5 before them.
    await expect.poll(listed).toEqual(ids.slice(5).reverse());
    expect(await page.locator('[data-counts-cover="scanned"]').count()).toBe(1);
    // By keyboard (a user test: Older was the 117th Tab stop, behind every row's link): the skip
    // link before the table comes within the first 30 Tab stops, shows while focused, and the next
    // Tab after it is Older, which Enter follows.
    const focused = () => page.evaluate<{ className: string; page: string | null; id: string }>("({ className: document.activeElement.className, page: document.activeElement.getAttribute('data-page'), id: document.activeElement.id })");
    let stops = 0;
    while (stops < 30 && (await focused()).className !== 'skip-inline') {
      await page.keyboard.press('Tab');
      stops += 1;
    }
    expect((await focused()).className).toBe('skip-inline');
    const box = await page.locator('a.skip-inline').boundingBox();
    expect(box !== null && box.x >= 0 && box.width > 0).toBe(true);
    await page.keyboard.press('Enter');
    await expect.poll(focused).toEqual({ className: 'hint', page: null, id: 'payments-pages' });
    await page.keyboard.press('Tab');
    expect(await focused()).toEqual({ className: '', page: 'older', id: '' });
    await page.keyboard.press('Enter');
    await page.waitForURL(/cursor=/);
    await expect.poll(listed).toEqual(ids.slice(0, 5).reverse());
    expect(await page.locator('p.hint[data-shown="5"]').innerText()).toContain('No older payments match: this is the end of the list.');
    expect(await page.getByRole('link', { name: 'Older →' }).count()).toBe(0);
    await page.getByRole('link', { name: '← Newest' }).click();
    await page.waitForURL((url) => !url.search.includes('cursor='));
    await expect.poll(listed).toEqual(ids.slice(5).reverse());
    // Forgets the remembered search, so later tests' bare visits list every payment.
    await page.getByRole('link', { name: 'Clear' }).click();
    await page.waitForURL(`${served.origin}/console/payments?dialect=&status=&q=`);
    await page.close();
  }, TIMEOUT);

  it('shows a failing receiver’s delivery as failed, and delivered after a replay once it recovers', async () => {
    receiver.respond(() => ({ status: 500, body: 'down' }));
    const page = await newPage();
    await page.goto(`${served.origin}/console/webhooks?status=&target=${encodeURIComponent(receiver.origin)}&subject=`);
    await live(page);
    await mark(page);
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-hook', amount: 5000, scenario: 'fail', webhook_url: receiver.url('/hooks') });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    const row = page.locator('table.deliveries tbody tr').filter({ hasText: id });
    await row.locator('[data-status="failed"]').waitFor({ timeout: 5000 });
    expect(await row.locator('td').nth(4).innerText()).toMatch(/^500 · \d+ ms$/);
    await row.getByText('1 attempt').click();
    expect((await row.locator('.attempts tbody tr td').allInnerTexts()).slice(2, 3)).toEqual(['500']);

    receiver.respond(() => ({ status: 200, body: 'ok' }));
    await row.getByRole('button', { name: /^Replay whd_/ }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Replay queued.');
    const again = page.locator('table.deliveries tbody tr').filter({ hasText: id });
    await again.locator('[data-status="delivered"]').waitFor({ timeout: 5000 });
    expect(await again.locator('td').nth(4).innerText()).toMatch(/^200 · \d+ ms$/);
    expect(receiver.requests.filter((r) => r.url === '/hooks').length).toBe(2);
    // The API's log says the same.
    const log = await api('GET', `/v1/sim/webhooks/deliveries?payment_intent_id=${id}`);
    expect((log.json as { data: Array<{ status: string; attempts: unknown[] }> }).data.map((d) => [d.status, d.attempts.length])).toEqual([['delivered', 2]]);
    await page.screenshot({ path: new URL('console-webhooks.png', DOCS).pathname });
    await page.close();
  }, TIMEOUT);

  it('keeps a delivery’s Replay on the screen at 1280 px when its attempts are opened, and nothing scrolls sideways: they wrap within their cell (h77c: the opened table pushed it off; then the log still scrolled sideways)', async () => {
    const url = 'http://127.0.0.1:9/a/rather/long/path/for/a/receiver/that/is/not/listening/at/all?tenant=acme-corporation';
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-wide-attempts', amount: 100, scenario: 'fail', webhook_url: url });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    const page = await newPage();
    await page.goto(`${served.origin}/console/webhooks?status=&target=${encodeURIComponent(url)}&subject=`);
    const row = page.locator('table.deliveries tbody tr').filter({ hasText: id });
    await expect.poll(async () => { await page.reload(); return row.locator('[data-status="failed"]').count(); }, { timeout: 5000 }).toBe(1);
    await row.getByText(/^\d+ attempts?$/).click();
    expect(await row.locator('.attempts tbody tr td').last().innerText()).toMatch(/ECONNREFUSED/);
    const replay = row.getByRole('button', { name: /^Replay whd_/ });
    const box = await replay.boundingBox();
    expect((box?.x ?? Infinity) + (box?.width ?? 0)).toBeLessThanOrEqual(await page.evaluate<number>('document.documentElement.clientWidth'));
    // Nothing scrolls sideways at 1280×800 with the attempts opened: neither the page, nor the log's
    // table, nor the attempts' own box (before, the log's table did: 1,307 px in 1,218).
    const sideways = `[document.documentElement, ...document.querySelectorAll('#deliveries .scroll')].filter((e) => e.scrollWidth > e.clientWidth).map((e) => e.tagName + '.' + e.className + ' ' + String(e.scrollWidth) + '>' + String(e.clientWidth))`;
    expect(await page.evaluate<string[]>(sideways)).toEqual([]);
    expect(await page.locator('#deliveries .attempts').evaluate((e) => e.getBoundingClientRect().width > 0)).toBe(true);
    await page.close();
  }, TIMEOUT);

  it('re-enables a URL disabled by a 410 and sends a test webhook from the form', async () => {
    receiver.respond((r) => (r.url === '/gone' ? { status: 410 } : { status: 200 }));
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-gone', amount: 700, scenario: 'fail', webhook_url: receiver.url('/gone') });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    await expect.poll(async () => ((await api('GET', '/v1/sim/webhooks/disabled-urls')).json as { data: unknown[] }).data.length, { timeout: 5000 }).toBe(1);
    const page = await newPage();
    await page.goto(`${served.origin}/console/webhooks?status=&target=&subject=`);
    await page.getByRole('button', { name: `Re-enable ${receiver.url('/gone')}` }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('URL re-enabled.');
    expect(await page.locator('#disabled-urls').innerText()).toContain('No URL is disabled.');
    expect((await api('GET', '/v1/sim/webhooks/disabled-urls')).json).toEqual({ data: [] });

    const before = receiver.requests.length;
    await page.getByLabel('Payment intent id').fill(id);
    await page.getByLabel('Event').selectOption('payment.approved');
    await page.getByLabel('Receiver URL').fill(receiver.url('/test-send'));
    await page.getByRole('button', { name: 'Send test webhook' }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Test webhook queued.');
    const [sent] = (await receiver.waitFor(before + 1)).slice(before);
    expect(sent?.url).toBe('/test-send');
    expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({ type: 'payment.approved', payment_intent_id: id, reservation_id: 'R-gone', status: 'APPROVED' });
    await page.locator('table.deliveries tbody tr').filter({ hasText: receiver.url('/test-send') }).getByText('test', { exact: true }).waitFor();
    await page.close();
  }, TIMEOUT);

  it('confirms a pending /api/v2 payment', async () => {
    // Approved, but its payment.completed callback fails (and is not retried): it stays PENDING.
    receiver.respond((r) => (r.url === '/v2-down' ? { status: 503 } : { status: 200 }));
    const made = await api('POST', '/api/v2/payments', { tx_id: 'tx-console-1', order_id: 7, user_id: 3, amount: 32000, callback_url: receiver.url('/v2-down') }, { 'x-sim-scenario': 'approve' });
    expect(made.json).toEqual({ ok: true, tx_id: 'tx-console-1', status: 'PENDING', payment_id: 'pay_tx-console-1' });
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments?dialect=v2&status=pending&q=`);
    await page.getByRole('link', { name: 'pay_tx-console-1' }).click();
    // Wait for what the page shows, not only for its URL (htmx pushes the URL just before it swaps the page in).
    await page.locator('#payment-status [data-status="PENDING"]').waitFor();
    expect(page.url()).toBe(`${served.origin}/console/payments/v2/pay_tx-console-1`);
    await page.getByRole('button', { name: 'Confirm payment' }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Payment confirmed.');
    expect(page.url()).toBe(`${served.origin}/console/payments/v2/pay_tx-console-1?notice=confirm`);
    expect(await page.locator('#payment-status [data-status]').innerText()).toBe('PAYMENT_COMPLETED');
    expect(await page.getByRole('button', { name: 'Confirm payment' }).count()).toBe(0);
    // Polled: read while htmx swaps the region in, a field's innerText has no line break yet (not laid out).
    await expect.poll(async () => (await page.locator('dl.fields div').allInnerTexts()).find((f) => f.startsWith('Confirmed'))).toMatch(/^Confirmed\n\d{4}-.*Z \(manual\)$/);
    const stored = await api('GET', '/api/v2/payments/pay_tx-console-1');
    expect(stored.json).toMatchObject({ payment_id: 'pay_tx-console-1', status: 'PAYMENT_COMPLETED' });
    await page.close();
  }, TIMEOUT);

  it('cancels a pending intent and refunds part of an approved one, through the state machine', async () => {
    const pending = await api('POST', '/v1/sim/intent', { reservation_id: 'R-cancel', amount: 900, scenario: 'delay' });
    const pendingId = (pending.json as { payment_intent_id: string }).payment_intent_id;
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments/intent/${pendingId}`);
    await page.getByRole('button', { name: 'Cancel intent' }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Intent cancelled.');
    expect(await page.locator('#payment-status [data-status]').innerText()).toBe('CANCELLED');
    expect(((await api('GET', `/v1/sim/intents/${pendingId}`)).json as { status: string }).status).toBe('CANCELLED');

    const approved = await api('POST', '/v1/sim/intent', { reservation_id: 'R-refund', amount: 10000, currency: 'EUR', card: { number: '4242424242424242', cvv: '100' } });
    const approvedId = (approved.json as { payment_intent_id: string }).payment_intent_id;
    await expect.poll(async () => ((await api('GET', `/v1/sim/intents/${approvedId}`)).json as { status: string }).status, { timeout: 5000 }).toBe('APPROVED');
    await page.goto(`${served.origin}/console/payments/intent/${approvedId}`);
    await page.getByLabel('Refund amount (minor units)').fill('2500');
    await page.getByRole('button', { name: 'Refund' }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Refund made.');
    // After an action its notice has the focus (not the page's start).
    await expect.poll(() => page.evaluate<string>('document.activeElement?.className')).toBe('notice notice-ok');
    expect(await page.locator('#payment-status [data-status]').innerText()).toBe('PARTIALLY_REFUNDED');
    expect(((await api('GET', `/v1/sim/intents/${approvedId}`)).json as { refunded_amount: number }).refunded_amount).toBe(2500);
    // More than is left: the service refuses, the page says why, nothing changes.
    await page.getByLabel('Refund amount (minor units)').fill('9000');
    await page.getByRole('button', { name: 'Refund' }).click();
    await expect.poll(() => page.locator('.notice-error').innerText()).toBe(`A refund of 9000 exceeds the 7500 left to refund on ${approvedId}.`);
    expect(await page.getByLabel('Refund amount (minor units)').inputValue()).toBe('9000');
    // The last action's notice is gone, from the page and its address (a user test: "Refund made." stayed beside the refusal).
    expect(await page.locator('.notice-ok').count()).toBe(0);
    expect(new URL(page.url()).searchParams.has('notice')).toBe(false);
    // What an empty amount does is said beside the field, not only as a placeholder (a user test: it refunds all that is left).
    expect(await page.getByRole('spinbutton', { name: 'Refund amount (minor units)' }).getAttribute('aria-describedby')).toBe('a-refund-amount-hint');
    expect(await page.locator('#a-refund-amount-hint').innerText()).toBe('empty: all that is left (7500, 75.00 EUR)');
    // Sent again, refused again: one error line, not two.
    await page.getByRole('button', { name: 'Refund' }).click();
    await expect.poll(() => page.locator('.notice-error').count()).toBe(1);
    expect(((await api('GET', `/v1/sim/intents/${approvedId}`)).json as { refunded_amount: number }).refunded_amount).toBe(2500);
    await page.close();
  }, TIMEOUT);

  it('shows seats booked through the API as held with their time left, then reserved after payment', async () => {
    const page = await newPage();
    await page.goto(`${served.origin}/console/bookings`);
    await live(page);
    await mark(page);
    const booked = await api('POST', '/bookings', { performanceId: 'perf_002', quantity: 2, paymentMethod: 'CREDIT_CARD' }, { 'x-user-id': USER });
    expect(booked.status).toBe(201);
    const { bookingId, seatIds: seats } = booked.json as { bookingId: string; seatIds: string[] };
    const map = page.locator('table.seatmap[data-performance="perf_002"]');
    for (const seat of seats) {
      const cell = map.locator(`td[data-seat="${seat}"]`);
      await expect.poll(() => cell.getAttribute('data-status'), { timeout: LIVE_WAIT_MS }).toBe('held');
      expect(await cell.locator('[data-until]').innerText()).toMatch(/^(10:00|9:5\d)$/); // SEAT_HOLD_MS is 10 minutes
      expect(await cell.getAttribute('title')).toMatch(new RegExp(`^${seat} held by ${bookingId}, (10:00|9:5\\d) left$`));
    }
    // A moment later the time left has counted down on screen, in the title and in the name a screen
    // reader reads, alike (before 2026-12-07 the last two kept the time of the last refresh).
    const firstCell = map.locator(`td[data-seat="${seats[0]}"]`);
    const shownFirst = await firstCell.locator('[data-until]').innerText();
    await expect.poll(() => firstCell.locator('[data-until]').innerText(), { timeout: 3000 }).not.toBe(shownFirst);
    const read = await firstCell.evaluate((td) => [td.querySelector('[data-until]')?.textContent, td.getAttribute('title'), td.querySelector('.visually-hidden')?.textContent]);
    expect(read).toEqual([read[0], `${seats[0]} held by ${bookingId}, ${read[0]} left`, `${seats[0]} held by ${bookingId}, ${read[0]} left`]);
    // The recent bookings list it, whoever booked it.
    const recentRow = page.locator(`#recent-bookings tr[data-booking="${bookingId}"]`);
    expect((await recentRow.locator('td').allInnerTexts()).slice(1, 7)).toEqual([USER, 'perf_002', seats.join(', '), expect.stringMatching(/ KRW$/), 'pending', 'PENDING']);
    const paid = await api('POST', '/payments/execute', { bookingId, paymentMethodToken: 'tok_visa', cvv: '100' }, { 'x-user-id': USER });
    expect(paid.status).toBe(200);
    for (const seat of seats) await expect.poll(() => map.locator(`td[data-seat="${seat}"]`).getAttribute('data-status'), { timeout: 3000 }).toBe('reserved');
    await expect.poll(() => recentRow.locator('[data-status]').getAttribute('data-status'), { timeout: 3000 }).toBe('confirmed');
    expect((await recentRow.locator('td').allInnerTexts())[6]).toBe('SUCCESS');
    await expect.poll(() => page.locator('#inbox').innerText()).toContain(bookingId);
    await expect.poll(() => page.locator('#ledger .imbalance').getAttribute('data-imbalance')).toBe('0');
    const ledgerRows = await page.locator('#ledger table tbody tr').allInnerTexts();
    expect(ledgerRows.length).toBe(2);
    expect(await stillMarked(page)).toBe(true);
    await page.screenshot({ path: new URL('console-bookings.png', DOCS).pathname });
    await page.close();
  }, TIMEOUT);

  it('shows a FluxPay order appear and turn PAID live, and a credit charge and a waiting room draining on the FluxPay page', async () => {
    const fp = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
      const res = await api('POST', path, body);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return (res.json as { result: Record<string, unknown> }).result;
    };
    const pay = async (order: Record<string, unknown>): Promise<void> => {
      const payment = await fp('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123' } });
      await fp('/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount });
    };
    const page = await newPage();
    await page.addInitScript(OBSERVE_PAGE);
    await page.goto(`${served.origin}/console/payments?dialect=fluxpay&status=&q=`);
    await live(page);
    await mark(page);
    const created = await liveSoFar(page);
    const order = await fp('/api/v1/orders', { userId: 'user_fp_console', serviceId: 'ai-writer', orderName: 'Console report', amount: 15000 });
    const id = order.orderId as string;
    const row = page.locator(`tr[data-id="${id}"]`);
    // Each shows through the event stream (how soon, against the 1 s: `make bench-console`).
    await showsLive(page, row.locator('[data-status="PENDING"]'), created);
    const paid = await liveSoFar(page);
    await pay(order);
    await showsLive(page, row.locator('[data-status="PAID"]'), paid);
    expect(await stillMarked(page)).toBe(true);
    expect(await row.locator('td').allInnerTexts()).toEqual([id, 'FluxPay orders (/api/v1/orders)', 'user_fp_console · Console report', '15,000 KRW', 'PAID', expect.stringMatching(/^\d{4}-/)]);

    // The FluxPay page: a credit charge shows as the user's balance, live.
    await page.goto(`${served.origin}/console/fluxpay`);
    await live(page);
    await mark(page);
    const charge = await fp('/api/v1/orders', { userId: 'user_fp_credits', serviceId: 'ai-writer', orderName: '25 credits', amount: 250, metadata: { kind: 'CREDIT_CHARGE', credits: 25 } });
    await pay(charge);
    await fp('/api/v1/credits/charge', { userId: 'user_fp_credits', orderId: charge.orderId });
    const balance = page.locator('#fluxpay-credits tr[data-user="user_fp_credits"] [data-balance]');
    await balance.waitFor({ timeout: 2000 });
    expect(await balance.innerText()).toBe('25');
    expect(await stillMarked(page)).toBe(true);
    // The reconciliation runs when asked (a link), not with the live updates (it reads every record).
    const reconciliation = page.locator('#fluxpay-reconciliation');
    expect(await reconciliation.locator('[data-mismatches]').count()).toBe(0);
    await reconciliation.locator('a[data-reconcile]').click();
    await reconciliation.locator('[data-mismatches]').waitFor({ timeout: 5000 });
    expect(await reconciliation.locator('[data-mismatches]').getAttribute('data-mismatches')).toBe('0');
    // Its result has the focus (so it is in view and read first), and the address no longer asks for
    // it, so a reload or Back does not run it again (a user test: 5,000 px down, unannounced; Back ran it again).
    await page.waitForURL(`${served.origin}/console/fluxpay`, { timeout: 5000 });
    expect(await page.evaluate<string>('document.activeElement?.id')).toBe('fluxpay-reconciliation');
    // In view: its top inside the window, as far up as the page scrolls (a review: htmx's scroll to the top of a boosted page left it at 899 of 800 px).
    const inView = "(() => { const top = document.getElementById('fluxpay-reconciliation').getBoundingClientRect().top; return top >= 0 && top < window.innerHeight - 100; })()";
    await expect.poll(() => page.evaluate<boolean>(inView), { timeout: 2000 }).toBe(true);
    await live(page);
    await mark(page);
    expect(await page.locator('#fluxpay-outbox [data-status="PUBLISHED"]').count()).toBeGreaterThanOrEqual(4);

    // A waiting room admitting 2 a second: the panel follows each admission live until the queue is empty.
    const room = await api('PUT', '/api/v1/waiting-rooms/console-sale', { admitPerSecond: 2, admissionTtlSeconds: 600, protectedServiceIds: ['image-studio'] });
    expect(room.status).toBe(201);
    for (const userId of ['wr_user_1', 'wr_user_2', 'wr_user_3']) await fp('/api/v1/waiting-rooms/console-sale/enter', { userId });
    const roomRow = page.locator('#fluxpay-waiting-rooms tr[data-room="console-sale"]');
    await expect.poll(() => roomRow.locator('[data-admitted]').getAttribute('data-admitted'), { timeout: 5000 }).toBe('3');
    expect(await roomRow.locator('td').allInnerTexts()).toEqual(['console-sale', 'admitting', '0', '3', '2/s', '3', 'image-studio', '—']);
    expect(await stillMarked(page)).toBe(true);

    // A billing subscription: its panel takes a row of its own, so at 1400 px every column shows
    // without scrolling (before, beside another panel, Next charge and Latest invoice were behind a scrollbar).
    const sub = await fp('/api/v1/subscriptions', { userId: 'user_fp_billing', planId: 'basic-monthly', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } });
    const subRow = page.locator(`#fluxpay-billing tr[data-billing-subscription="${String(sub.subscriptionId)}"]`);
    await subRow.waitFor({ timeout: 5000 });
    await page.setViewportSize({ width: 1400, height: 900 });
    expect(await page.locator('#fluxpay-billing .scroll').evaluate((e) => [e.scrollWidth <= e.clientWidth, e.getBoundingClientRect().width > 1000])).toEqual([true, true]);
    await page.setViewportSize({ width: 1280, height: 800 });
    // At 1280×800 every table of the page shows whole, a subscriber's long URL included: the outbox,
    // the webhook subscriptions and the waiting rooms take rows of their own (h77c: beside other
    // panels, Status, Occurred, Published, Events and Next admission were behind scrollbars).
    const subscriber = await fp('/api/v1/webhook-subscriptions', { url: 'http://127.0.0.1:9/a/rather/long/path/for/the/receiver/of/fluxpay/events?tenant=acme-corporation', events: ['payment.approved', 'payment.failed', 'order.cancelled'] });
    // (No event tells the page of a new subscription: it is read again.)
    await page.reload();
    await page.locator(`#fluxpay-subscriptions tr[data-subscription="${String(subscriber.subscriptionId)}"]`).waitFor({ timeout: 5000 });
    const overflowing = "[...document.querySelectorAll('main .scroll')].filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.parentElement.closest('[id]').id)";
    expect(await page.evaluate<string[]>(overflowing)).toEqual([]);
    // Gone again, so that no later test's events are sent to it.
    expect((await api('DELETE', `/api/v1/webhook-subscriptions/${String(subscriber.subscriptionId)}`)).status).toBe(200);
    await page.screenshot({ path: new URL('console-fluxpay.png', DOCS).pathname, fullPage: true });
    expect(await axe(page)).toEqual([]);
    await page.close();
  }, TIMEOUT);

  it('shows an XSS payload in a reservation_id as text: no script runs, and the CSP forbids inline scripts', async () => {
    const made = await api('POST', '/v1/sim/intent', { reservation_id: XSS, amount: 100, scenario: 'approve', metadata: { note: '"><script>alert(2)</script>' } });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    const page = await newPage();
    const response = await page.goto(`${served.origin}/console/payments?dialect=intent&status=&q=`);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.locator(`tr[data-id="${id}"] td.ref`).innerText()).toBe(XSS);
    expect(await page.locator('main img').count()).toBe(0);
    await page.goto(`${served.origin}/console/payments/intent/${id}`);
    await page.locator('#payment-status [data-status="APPROVED"]').waitFor({ timeout: 5000 }); // after its live refresh
    // Polled: read while htmx swaps the region in, a field's innerText has no line break yet (not laid out).
    await expect
      .poll(async () => {
        const fields = await page.locator('dl.fields div').allInnerTexts();
        return [fields[0], fields.at(-1)];
      })
      .toEqual([`Reservation id\n${XSS}`, 'metadata.note\n"><script>alert(2)</script>']);
    expect(await page.locator('main img, main script').count()).toBe(0);
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
    await page.close();
  }, TIMEOUT);

  it('refuses a state change without the CSRF token or from another origin, and nothing changes', async () => {
    const made = await api('POST', '/v1/sim/intent', { reservation_id: 'R-csrf', amount: 100, scenario: 'delay' });
    const id = (made.json as { payment_intent_id: string }).payment_intent_id;
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments/intent/${id}`);
    const token = await page.locator('meta[name="csrf-token"]').getAttribute('content');
    expect(token).toMatch(/^[\w-]{43}$/);
    const post = (body: string, headers: Record<string, string> = {}) =>
      page.evaluate(
        async ({ url, body, headers }) => {
          const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
          return { status: res.status, redirected: res.redirected, text: await res.text() };
        },
        { url: `/console/payments/intent/${id}/cancel`, body, headers },
      );
    const missing = await post('');
    expect(missing.status).toBe(403);
    expect(missing.text).toContain('Refused: the form’s CSRF token is missing or wrong.');
    expect((await post('_csrf=forged')).status).toBe(403);
    // Another site's form: the browser says where it came from.
    const otherOrigin = await fetch(`${served.origin}/console/payments/intent/${id}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example', cookie: (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ') },
      body: `_csrf=${token}`,
      redirect: 'manual',
    });
    expect(otherOrigin.status).toBe(403);
    expect(((await api('GET', `/v1/sim/intents/${id}`)).json as { status: string }).status).toBe('PENDING');
    // The page's own token works.
    const accepted = await post(`_csrf=${encodeURIComponent(token as string)}`);
    expect([accepted.status, accepted.redirected]).toEqual([200, true]);
    expect(accepted.text).toContain('Intent cancelled.');
    expect(((await api('GET', `/v1/sim/intents/${id}`)).json as { status: string }).status).toBe('CANCELLED');
    await page.close();
  }, TIMEOUT);

  it('lists fault rules, shows a hit within the 5-second refresh, and switches a rule off and on by click and keyboard without a reload', async () => {
    const made = await api('POST', '/v1/sim/rules', { name: XSS, match: { dialect: 'native', route: '/v1/sim/intent', headers: { 'x-test-case': 'console-rules' } }, action: { type: 'error', status: 503 } });
    expect(made.status).toBe(201);
    const id = (made.json as { id: string }).id;
    const shaped = () => fetch(`${served.origin}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-case': 'console-rules' }, body: JSON.stringify({ reservation_id: 'R-rules', amount: 1000 }) }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      });
    const page = await clockedPage();
    await page.goto(`${served.origin}/console/rules`);
    await live(page);
    await mark(page);
    const row = page.locator(`tr[data-rule="${id}"]`);
    expect(await row.locator('td').first().innerText()).toBe(`${id}\n${XSS}\nrequest`);
    expect(await row.getAttribute('data-hits')).toBe('0');
    expect({ violations: await axe(page) }).toEqual({ violations: [] });
    // A hit is not on the live stream: the region's 5-second refresh brings it.
    expect(await shaped()).toBe(503);
    await fiveSeconds(page);
    await expect.poll(() => row.getAttribute('data-hits'), { timeout: 5000 }).toBe('1');
    // Unchanged, the region is left as it is: not replaced at each 5-second refresh (an accessibility
    // review: a screen reader reading it was moved every 5 s).
    await page.evaluate("window.rulesNode = document.getElementById('rules')");
    // Two refreshes later (the 5-second one among them), the same node.
    for (let i = 0; i < 2; i++) {
      const refreshedAt = await page.evaluate<string>('document.body.dataset.refreshed ?? ""');
      await fiveSeconds(page);
      await expect.poll(() => page.evaluate<string>('document.body.dataset.refreshed ?? ""'), { timeout: 5000 }).not.toBe(refreshedAt);
    }
    expect(await page.evaluate<boolean>("window.rulesNode === document.getElementById('rules')")).toBe(true);

    await page.getByRole('button', { name: `Switch off ${id}` }).click();
    await expect.poll(() => page.locator(`tr[data-rule="${id}"]`).getAttribute('data-enabled')).toBe('false');
    expect(await page.locator('.notice-ok').innerText()).toBe('Rule switched off.');
    expect(await page.locator(`tr[data-rule="${id}"] .rule-state`).innerText()).toBe('off');
    expect(await stillMarked(page)).toBe(true);
    expect((await api('GET', `/v1/sim/rules/${id}`)).json).toMatchObject({ id, enabled: false, hits: 1 });
    expect(await shaped()).toBe(200);

    // By keyboard: focus the switch, Enter.
    await page.getByRole('button', { name: `Switch on ${id}` }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator(`tr[data-rule="${id}"]`).getAttribute('data-enabled')).toBe('true');
    expect(await page.locator('.notice-ok').innerText()).toBe('Rule switched on.');
    expect(await stillMarked(page)).toBe(true);
    expect((await api('GET', `/v1/sim/rules/${id}`)).json).toMatchObject({ enabled: true });
    expect({ violations: await axe(page) }).toEqual({ violations: [] });

    // Deleting asks first (2026-12-06, a user test: one click deleted a rule): cancelled, the rule stays.
    const asked = `Delete fault rule ${id}? It stops applying at once, and its counts go with it.`;
    await page.getByRole('button', { name: `Delete ${id}` }).click();
    await expect.poll(() => dialogs).toEqual([asked]);
    expect((await api('GET', `/v1/sim/rules/${id}`)).status).toBe(200);
    expect(await page.locator(`tr[data-rule="${id}"]`).count()).toBe(1);
    dialogAnswer = 'accept';
    try {
      await page.getByRole('button', { name: `Delete ${id}` }).click();
      await expect.poll(() => page.locator('.notice-ok').innerText()).toBe('Rule deleted.');
    } finally {
      dialogAnswer = 'dismiss';
    }
    expect(await page.locator('#rules').innerText()).toBe('No fault rules. Create one with POST /v1/sim/rules (or load them at start with FAULTS_FILE).');
    expect((await api('GET', `/v1/sim/rules/${id}`)).status).toBe(404);
    expect(dialogs).toEqual([asked, asked]);
    await page.close();
  }, TIMEOUT);

  it('has no serious or critical axe violation on any page, at desktop and phone widths (390 and 320 px), and works by keyboard', async () => {
    const page = await newPage();
    const intents = (await api('GET', '/v1/sim/intents?limit=1')).json as { data: Array<{ payment_intent_id: string }> };
    const pages = ['/console/payments', `/console/payments/intent/${intents.data[0]?.payment_intent_id}`, '/console/payments/v2/pay_tx-console-1', '/console/webhooks', '/console/bookings', '/console/fluxpay', '/console/rules', '/console/charts'];
    for (const width of [1280, 390, 320]) {
      await page.setViewportSize({ width, height: width === 1280 ? 800 : 844 });
      for (const path of pages) {
        await page.goto(`${served.origin}${path}`);
        expect({ path, width, violations: await axe(page) }).toEqual({ path, width, violations: [] });
        // Nothing wider than the screen but the tables' own scroll boxes.
        const overflow = await page.evaluate<string[]>(
          "document.documentElement.scrollWidth > window.innerWidth ? [...document.querySelectorAll('main *')].filter((e) => !e.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth).map((e) => e.tagName + '.' + e.className) : []",
        );
        expect({ path, width, overflow }).toEqual({ path, width, overflow: [] });
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${served.origin}/console/payments`);
    await page.screenshot({ path: new URL('console-payments.png', DOCS).pathname });
    await page.goto(`${served.origin}/console/charts`);
    await page.screenshot({ path: new URL('console-charts.png', DOCS).pathname });
    // Keyboard: the skip link comes first and is visible when focused; the focus ring is drawn.
    await page.goto(`${served.origin}/console/payments`);
    await page.keyboard.press('Tab');
    const skip = page.getByRole('link', { name: 'Skip to content' });
    expect(await page.evaluate<string>('document.activeElement.textContent')).toBe('Skip to content');
    expect(await skip.evaluate((el) => el.getBoundingClientRect().left >= 0)).toBe(true);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle');
    expect(outline).toBe('solid');
    // On the dark header the ring is white (the page's blue was 2.82:1 there: WCAG 1.4.11).
    expect(await page.evaluate<string[]>("[document.activeElement.closest('header.top') !== null, getComputedStyle(document.activeElement).outlineColor]")).toEqual([true, 'rgb(255, 255, 255)']);
    // A link followed without a page load: the new page's heading has the focus (it was left on the body).
    await page.getByRole('navigation').getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForURL(/\/console\/webhooks$/);
    await expect.poll(() => page.evaluate<string>("document.activeElement.tagName + ' ' + document.activeElement.textContent")).toBe('H1 Webhooks');
    await page.goto(`${served.origin}/console/payments`);
    // Creating a payment by keyboard alone: focus the field, type, Enter submits.
    await page.getByLabel('Reservation id').focus();
    await page.keyboard.type('R-keyboard');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/payments\/intent\/pay_/);
    expect(await page.locator('dl.fields div').first().innerText()).toBe('Reservation id\nR-keyboard');
    await page.close();
  }, TIMEOUT);

  it('subscribes to the event bus only while a page is open', async () => {
    const [feed] = served.feeds;
    expect(feed).toBeDefined();
    await expect.poll(() => feed?.subscribed, { timeout: 5000 }).toBe(false);
    const page = await newPage();
    await page.goto(`${served.origin}/console/payments`);
    await live(page);
    await expect.poll(() => feed?.clients).toBe(1);
    expect(feed?.subscribed).toBe(true);
    await page.close();
    await expect.poll(() => feed?.subscribed, { timeout: 5000 }).toBe(false);
    expect(blocked).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, TIMEOUT);
});

describe.skipIf(chromiumPath === undefined && !inCi)('the web console with CONSOLE_TOKEN, in Chromium', () => {
  const TOKEN = 'console-token-for-tests';
  let served: Served;
  let browser: Browser;

  beforeAll(async () => {
    if (chromiumPath === undefined) throw new Error(CHROMIUM_MISSING);
    [served, browser] = await Promise.all([serve({ CONSOLE_TOKEN: TOKEN }), chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'], timeout: TIMEOUT })]);
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await served?.app.close();
  }, TIMEOUT);

  it('asks for the token, refuses a wrong one, and logs in with an HttpOnly SameSite cookie', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${served.origin}/console/webhooks`);
    expect(page.url()).toBe(`${served.origin}/console/login?next=%2Fconsole%2Fwebhooks`);
    expect(await page.locator('main').innerText()).not.toContain('Delivery log');
    // The feed and the actions need the session too.
    expect((await fetch(`${served.origin}/console/events`)).status).toBe(401);
    expect((await fetch(`${served.origin}/console/payments`, { redirect: 'manual' })).status).toBe(303);

    await page.getByLabel('Console token').fill('wrong-token-123');
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.locator('.notice-error').innerText()).toBe('Wrong token.');
    // The token field has the focus, marked invalid and described by the refusal (the page runs no script).
    expect(await page.evaluate<string[]>("[document.activeElement.id, document.activeElement.getAttribute('aria-invalid'), document.activeElement.getAttribute('aria-describedby')]")).toEqual(['token', 'true', 'login-error token-hint']);
    // Only the form's anonymous session (level 0): it opens no page.
    expect((await context.cookies()).map((c) => [c.name, /^[\w-]+\.0\.[\w-]+$/.test(c.value)])).toEqual([[expect.stringMatching(/^paysim_console_[\w-]{8}$/), true]]);
    expect((await axe(page)).length).toBe(0);
    // The right token without the form's CSRF token (a login forged from elsewhere) is refused.
    const forged = await page.evaluate(async (token) => {
      const res = await fetch('/console/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
      return { status: res.status, text: await res.text() };
    }, TOKEN);
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('Refused: the form’s CSRF token is missing or wrong.');
    expect((await context.cookies()).map((c) => /\.0\./.test(c.value))).toEqual([true]);

    await page.getByLabel('Console token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${served.origin}/console/webhooks`);
    expect(await page.locator('h1').innerText()).toBe('Webhooks');
    const cookies = await context.cookies();
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path }))).toEqual([{ name: expect.stringMatching(/^paysim_console_[\w-]{8}$/), httpOnly: true, sameSite: 'Strict', path: '/console' }]);
    expect(cookies[0]?.value).not.toContain(TOKEN);
    expect(await page.content()).not.toContain(TOKEN);
    expect(await page.evaluate<string>('document.cookie')).toBe('');
    await expect.poll(() => page.locator('#live-status').getAttribute('data-state'), { timeout: 5000 }).toBe('live');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${served.origin}/console/login`);
    await page.goto(`${served.origin}/console/payments`);
    expect(page.url()).toBe(`${served.origin}/console/login?next=%2Fconsole%2Fpayments`);
    await context.close();

    async function axe(p: Page): Promise<unknown[]> {
      await p.evaluate(AXE_SOURCE);
      const found = await p.evaluate<Array<{ id: string; impact: string }>>('axe.run().then((r) => r.violations)');
      return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    }
  }, TIMEOUT);

  it('says when the session ended under an open page (its refresh sent to the login form), with a link to log in again', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.clock.install(); // the 5-second refresh moved on, not waited for
    const page = await context.newPage();
    await page.goto(`${served.origin}/console/payments?dialect=&status=&q=`);
    await page.getByLabel('Console token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${served.origin}/console/payments?dialect=&status=&q=`);
    await page.getByLabel('Updates').selectOption('5s');
    const status = page.locator('#live-status');
    await expect.poll(() => status.innerText()).toBe('Refreshing every 5 s');
    // The session cookie gone (as after a log out elsewhere, or an expiry): the next refresh is sent to the login form.
    await context.clearCookies();
    await page.clock.fastForward(5000);
    await expect.poll(() => status.getAttribute('data-state'), { timeout: 5000, interval: 100 }).toBe('error');
    expect(await status.innerText()).toBe('Session ended: log in again');
    const link = status.getByRole('link', { name: 'log in again' });
    expect(await link.getAttribute('href')).toBe('/console/login?next=%2Fconsole%2Fpayments%3Fdialect%3D%26status%3D%26q%3D');
    expect(await page.locator('h1').innerText()).toBe('Payments');
    await link.click();
    await page.getByLabel('Console token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${served.origin}/console/payments?dialect=&status=&q=`);
    await expect.poll(() => status.innerText()).toBe('Refreshing every 5 s');
    await context.close();
  }, TIMEOUT);

  it('a form sent after the session ended: the 401 page’s Log in link logs in again and comes back to the form’s page, live again (reviews: 403, the page’s old CSRF token sent; the address bar held the POST path; polling until a reload)', async () => {
    const made = await fetch(`${served.origin}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reservation_id: 'R-ended', amount: 100, scenario: 'delay', delay_ms: 600_000 }) });
    const id = ((await made.json()) as { payment_intent_id: string }).payment_intent_id;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const detail = `${served.origin}/console/payments/intent/${id}`;
    await page.goto(detail);
    await page.getByLabel('Console token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(detail);
    // Each wait below is for a page load or a stream's first event: 5 s, not vitest's 1 s default (a
    // run at load 6-8 failed on the first of them).
    await expect.poll(() => page.locator('#live-status').innerText(), { timeout: 5000 }).toBe('Live');
    // The session ends under the open page (a log-out in another tab: its event stream ends too), then its form is sent.
    const other = await context.newPage();
    await other.goto(`${served.origin}/console/webhooks`);
    await other.getByRole('button', { name: 'Log out' }).click();
    await other.waitForURL(`${served.origin}/console/login`);
    await other.close();
    // Its stream's reconnect is refused (401): the browser gives it up, and the page polls.
    await expect.poll(() => page.locator('#live-status').innerText(), { timeout: 10_000 }).toMatch(/^(Polling every second \(event stream closed\)|Session ended: log in again)$/);
    await page.getByRole('button', { name: 'Cancel intent' }).click();
    await expect.poll(() => page.locator('h1').innerText(), { timeout: 5000 }).toBe('Error 401');
    expect(page.url()).toBe(detail);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByLabel('Console token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.locator('h1').innerText(), { timeout: 5000 }).toBe(`Payment ${id}`);
    expect(page.url()).toBe(detail);
    // Live again, not polling every second until a reload (a review).
    await expect.poll(() => page.locator('#live-status').innerText(), { timeout: 5000 }).toBe('Live');
    // Logged in again, the form works: the intent is cancelled.
    await page.getByRole('button', { name: 'Cancel intent' }).click();
    await expect.poll(() => page.locator('.notice-ok').innerText(), { timeout: 5000 }).toBe('Intent cancelled.');
    await context.close();
  }, TIMEOUT);
});
