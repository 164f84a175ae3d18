import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/**
 * The console's Rules page (issue 15, "Load-test controls") on the server: the default
 * namespace's fault rules as the API lists them, a switch and a delete per rule going through the
 * same service as the API (a switched-off rule stops shaping requests; a deleted one loses its
 * metric series), CSRF on both, and every client-given value shown as text.
 */

const XSS = '<img src=x onerror=alert(1)>';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.app.close();
});

interface Row {
  attrs: Record<string, string>;
  cells: string[];
}

function text(markup: string): string {
  return markup
    .replace(/<br>/g, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .trim();
}

/** The rows of the rules table: their data attributes and the text of each cell. */
function rows(body: string): Row[] {
  return [...body.matchAll(/<tr data-rule="[^"]*"[^>]*>[^]*?<\/tr>/g)].map(([tr]) => ({
    attrs: Object.fromEntries([...tr.slice(0, tr.indexOf('>')).matchAll(/ data-([\w-]+)="([^"]*)"/g)].map((m) => [m[1], text(m[2] as string)])),
    cells: [...tr.matchAll(/<td[^>]*>([^]*?)<\/td>/g)].map((m) => text(m[1] as string)),
  }));
}

async function createRule(body: unknown): Promise<{ id: string }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: body as object });
  expect([res.statusCode, res.json()]).toEqual([201, expect.anything()]);
  return res.json();
}

async function rulesPage(cookie?: string) {
  const res = await t.app.inject({ method: 'GET', url: '/console/rules', headers: cookie === undefined ? {} : { cookie } });
  expect([res.statusCode, res.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
  return res;
}

/** A console session: its cookie and the CSRF token of the page's forms. */
async function session(): Promise<{ cookie: string; csrf: string }> {
  const res = await rulesPage();
  const cookie = String(res.headers['set-cookie']).split(';', 1)[0] as string;
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(res.body)?.[1] as string;
  expect(csrf).toMatch(/^[\w-]{43}$/);
  return { cookie, csrf };
}

const intent = (amount: number, testCase = 'console') =>
  t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_console_rules', amount }, headers: { 'x-test-case': testCase } });
const apiRule = async (id: string) => (await t.app.inject({ method: 'GET', url: `/v1/sim/rules/${id}` })).json();

describe('the console’s Rules page', () => {
  it('says how to create a rule when there is none', async () => {
    const res = await rulesPage();
    expect(res.body).toContain('<nav aria-label="Console pages"><ul><li><a href="/console/payments">Payments</a></li><li><a href="/console/webhooks">Webhooks</a></li><li><a href="/console/bookings">Bookings</a></li><li><a href="/console/fluxpay">FluxPay</a></li><li><a href="/console/rules" aria-current="page">Rules</a></li>');
    expect(/<div id="rules"[^>]*>([^]*?)<\/div><\/section>/.exec(res.body)?.slice(0, 2)).toEqual([
      expect.any(String),
      '<p>No fault rules. Create one with <code>POST /v1/sim/rules</code> (or load them at start with <code>FAULTS_FILE</code>).</p>',
    ]);
    expect(rows(res.body)).toEqual([]);
  });

  it('lists the rules in creation order with what they match, their action, state and counters', async () => {
    const a = await createRule({
      name: 'console 503',
      match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent', headers: { 'X-Test-Case': 'console' }, body: { amount: { gte: 1000, lt: 5000 } } },
      count: 3,
      action: { type: 'error', status: 429 },
    });
    const b = await createRule({ match: { url_prefix: 'http://127.0.0.1:9/' }, window: { from: 1000, until: 60_000 }, action: { type: 'drop_attempts', n: 2 } });
    const c = await createRule({ probability: 0.25, match: { headers: { 'x-other': { prefix: 'load-' } }, body: { 'card.number': '4000' } }, action: { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } } });
    // One request the first rule applies to, one its filters do not match.
    expect((await intent(2000)).statusCode).toBe(429);
    expect((await intent(9000)).statusCode).toBe(200);
    const hitAt = new Date(t.clock.now()).toISOString();

    const res = await rulesPage();
    expect(res.body).toContain('<div id="rules" data-topics="rules" data-poll="true">');
    const listed = rows(res.body);
    expect(listed.map((r) => r.attrs)).toEqual([
      { rule: a.id, enabled: 'true', hits: '1', matched: '1' },
      { rule: b.id, enabled: 'true', hits: '0', matched: '0' },
      { rule: c.id, enabled: 'true', hits: '0', matched: '0' },
    ]);
    expect(listed.map((r) => r.cells)).toEqual([
      [
        `${a.id}\nconsole 503\nrequest`,
        'dialect native\nmethod POST\nroute /v1/sim/intent\nheader x-test-case = "console"\nbody amount ≥ 1000 and < 5000',
        'probability 1\nfirst 3 (2 left)',
        'error: status 429, retry_after_seconds 1',
        'on',
        '1',
        '1',
        hitAt,
        'Switch offDelete',
      ],
      [
        `${b.id}\nwebhook`,
        'webhooks to URLs starting with http://127.0.0.1:9/',
        `probability 1\nfrom ${new Date(t.clock.now() + 1000).toISOString()}\nuntil ${new Date(t.clock.now() + 60_000).toISOString()}`,
        'drop_attempts: n 2',
        'on',
        '0',
        '0',
        '—',
        'Switch offDelete',
      ],
      [`${c.id}\nrequest`, 'header x-other starts with "load-"\nbody card.number = "4000"', 'probability 0.25', 'latency: distribution lognormal, p50 200, p99 2000', 'on', '0', '0', '—', 'Switch offDelete'],
    ]);
    expect(res.body).toContain(`<button type="submit" aria-label="Switch off ${a.id}">Switch off</button>`);
    expect(res.body).toContain(`<button type="submit" aria-label="Delete ${a.id}">Delete</button>`);
  });

  it('switches a rule off and on through the form with its CSRF token: the API agrees and requests are shaped accordingly', async () => {
    const rule = await createRule({ match: { dialect: 'native', route: '/v1/sim/intent', headers: { 'x-test-case': 'console' } }, action: { type: 'error', status: 503 } });
    const shaped = await intent(1500);
    expect([shaped.statusCode, shaped.headers['x-sim-rule']]).toEqual([503, rule.id]);
    const { cookie, csrf } = await session();

    const off = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/enabled`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=false` });
    expect([off.statusCode, off.headers.location]).toEqual([303, '/console/rules?notice=switched_off']);
    expect(await apiRule(rule.id)).toMatchObject({ id: rule.id, enabled: false, hits: 1, matched: 1 });
    const passed = await intent(1500);
    expect([passed.statusCode, passed.headers['x-sim-rule']]).toEqual([200, undefined]);
    const page = await t.app.inject({ method: 'GET', url: '/console/rules?notice=switched_off', headers: { cookie } });
    expect(page.body).toContain('<p class="notice notice-ok" role="status">Rule switched off.</p>');
    expect(rows(page.body).map((r) => [r.attrs, r.cells[4], r.cells[8]])).toEqual([[{ rule: rule.id, enabled: 'false', hits: '1', matched: '1' }, 'off', 'Switch onDelete']]);

    const on = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/enabled`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=true` });
    expect([on.statusCode, on.headers.location]).toEqual([303, '/console/rules?notice=switched_on']);
    expect(await apiRule(rule.id)).toMatchObject({ enabled: true });
    expect((await intent(1500)).statusCode).toBe(503);

    // A missing or bad `enabled`, or a rule that does not exist: refused, nothing changes.
    const bad = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/enabled`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=maybe` });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('enabled must be one of true, false');
    const missing = await t.app.inject({ method: 'POST', url: '/console/rules/rule_nope/enabled', headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=false` });
    expect(missing.statusCode).toBe(404);
    expect(missing.body).toContain('Fault rule rule_nope does not exist.');
    expect(await apiRule(rule.id)).toMatchObject({ enabled: true });
  });

  it('a rule whose window has ended is marked so, can be switched off, and is not switched on again (409, nothing changed): it would never apply', async () => {
    const rule = await createRule({ match: { dialect: 'native', headers: { 'x-test-case': 'console' } }, window: { until: 60_000 }, action: { type: 'error', status: 503 } });
    const endsAt = new Date(t.clock.now() + 60_000).toISOString();
    const { cookie, csrf } = await session();
    const shown = async () => rows((await rulesPage(cookie)).body).map((r) => [r.attrs.enabled, r.cells[4], r.cells[8]]);
    expect(await shown()).toEqual([['true', 'on', 'Switch offDelete']]);
    await t.clock.advance(60_000);
    expect((await intent(1500)).statusCode).toBe(200);
    expect(await shown()).toEqual([['true', 'on\nwindow ended', 'Switch offDelete']]);
    const off = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/enabled`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=false` });
    expect([off.statusCode, off.headers.location]).toEqual([303, '/console/rules?notice=switched_off']);
    // Off, it offers no switch on; a form sent anyway is refused, and the rule stays off.
    expect(await shown()).toEqual([['false', 'off\nwindow ended', 'Delete']]);
    const on = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/enabled`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}&enabled=true` });
    expect(on.statusCode).toBe(409);
    expect(on.body).toContain(`Rule ${rule.id}&#39;s window ended at ${endsAt}: switched on, it would never apply again. Create a rule with a window that has not ended instead.`);
    expect(await apiRule(rule.id)).toMatchObject({ id: rule.id, enabled: false });
  });

  it('refuses a switch or a delete without the CSRF token, or with another session’s, and changes nothing', async () => {
    const rule = await createRule({ match: { dialect: 'native' }, action: { type: 'error', status: 503 } });
    const { cookie, csrf } = await session();
    const other = await session();
    const attempts = [
      { url: `/console/rules/${rule.id}/enabled`, payload: 'enabled=false', cookie },
      { url: `/console/rules/${rule.id}/enabled`, payload: `_csrf=${other.csrf}&enabled=false`, cookie },
      { url: `/console/rules/${rule.id}/delete`, payload: '', cookie },
      { url: `/console/rules/${rule.id}/delete`, payload: `_csrf=${csrf}`, cookie: other.cookie },
    ];
    for (const attempt of attempts) {
      const res = await t.app.inject({ method: 'POST', url: attempt.url, headers: { ...FORM, cookie: attempt.cookie }, payload: attempt.payload });
      expect([attempt.url, res.statusCode]).toEqual([attempt.url, 403]);
      expect(res.body).toContain('Refused: the form’s CSRF token is missing or wrong.');
    }
    expect(await apiRule(rule.id)).toMatchObject({ id: rule.id, enabled: true });
    expect((await intent(1500)).statusCode).toBe(503);
  });

  it('deletes a rule as DELETE /v1/sim/rules/{id} does: gone from the API, its metric series removed', async () => {
    const kept = await createRule({ match: { dialect: 'native', headers: { 'x-test-case': 'kept' } }, action: { type: 'error', status: 502 } });
    const rule = await createRule({ match: { dialect: 'native', headers: { 'x-test-case': 'console' } }, action: { type: 'error', status: 503 } });
    expect((await intent(1500)).statusCode).toBe(503);
    expect((await intent(1500, 'kept')).statusCode).toBe(502);
    const series = async () => ((await t.app.inject({ method: 'GET', url: '/metrics' })).body.match(/^fault_rule_hits_total\{.*$/gm) ?? []).sort();
    expect(await series()).toEqual([`fault_rule_hits_total{rule_id="${kept.id}",action="error",sim_namespace="default"} 1`, `fault_rule_hits_total{rule_id="${rule.id}",action="error",sim_namespace="default"} 1`].sort());
    const { cookie, csrf } = await session();

    const res = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/delete`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}` });
    expect([res.statusCode, res.headers.location]).toEqual([303, '/console/rules?notice=deleted']);
    expect((await t.app.inject({ method: 'GET', url: `/v1/sim/rules/${rule.id}` })).statusCode).toBe(404);
    expect(await series()).toEqual([`fault_rule_hits_total{rule_id="${kept.id}",action="error",sim_namespace="default"} 1`]);
    expect((await intent(1500)).statusCode).toBe(200);
    expect(rows((await rulesPage(cookie)).body).map((r) => r.attrs.rule)).toEqual([kept.id]);
    const again = await t.app.inject({ method: 'POST', url: `/console/rules/${rule.id}/delete`, headers: { ...FORM, cookie }, payload: `_csrf=${csrf}` });
    expect(again.statusCode).toBe(404);
  });

  it('shows client-given names, header values and URL prefixes as text', async () => {
    const rule = await createRule({ name: XSS, match: { headers: { 'x-test-case': XSS, 'x-prefix': { prefix: `"${XSS}` } }, body: { note: XSS } }, action: { type: 'outcome', failure_code: 'card_declined' } });
    const hook = await createRule({ match: { url_prefix: 'http://127.0.0.1:9/hook?a=1&b="2"' }, action: { type: 'duplicate' } });
    const res = await rulesPage();
    expect(res.body).not.toContain('<img');
    expect(res.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(res.body).toContain('http://127.0.0.1:9/hook?a=1&amp;b=&quot;2&quot;');
    expect(rows(res.body).map((r) => r.cells.slice(0, 4))).toEqual([
      [`${rule.id}\n${XSS}\nrequest`, `header x-test-case = "${XSS}"\nheader x-prefix starts with "\\"${XSS}"\nbody note = "${XSS}"`, 'probability 1', 'outcome: failure_code card_declined'],
      [`${hook.id}\nwebhook`, 'webhooks to URLs starting with http://127.0.0.1:9/hook?a=1&b="2"', 'probability 1', 'duplicate'],
    ]);
  });
});
