import { afterEach, describe, expect, it } from 'vitest';
import { serverProcesses, type ServerProcess } from '../helpers/child.ts';
import { eventually, receiverPool } from '../helpers/receiver.ts';

/**
 * Graceful shutdown of webhook delivery, as an orchestrator sees it: `node src/server.ts` in a
 * child process, SIGTERM while deliveries are in flight, queued or waiting on a retry timer.
 * @see issue 3 "Delivery log and control" (graceful shutdown)
 */

const SECRET = 'whsec_c2h1dGRvd24tdGVzdC1zZWNyZXQtMTIzNDU=';

const servers = serverProcesses();
const rxs = receiverPool();
afterEach(async () => {
  await servers.killAll();
  await rxs.closeAll();
});

async function start(env: Record<string, string>): Promise<{ server: ServerProcess; origin: string }> {
  const server = servers.start({ WEBHOOK_SECRET: SECRET, ...env });
  return { server, origin: await server.origin() };
}
const receiver = rxs.start;

async function createIntent(origin: string, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${origin}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1000, ...body }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { payment_intent_id: string }).payment_intent_id;
}

interface DeliveryView {
  id: string;
  status: string;
  payment_intent_id: string;
}
async function deliveries(origin: string, query = ''): Promise<DeliveryView[]> {
  const res = await fetch(`${origin}/v1/sim/webhooks/deliveries?limit=500${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: DeliveryView[] }).data;
}

describe('SIGTERM with webhook deliveries under way', () => {
  it('in-flight and queued deliveries are drained: the receiver gets all of them and the process exits 0', async () => {
    const answeredAt: number[] = [];
    // The first two are answered after 1.5 s, which the creates of the other four must not outlast (500 ms before 2026-12-06: a review), the others after 500 ms.
    const delayOf = (index: number) => (index < 2 ? 1_500 : 500);
    const rx = await receiver((req) => ({ status: 200, delayMs: delayOf(req.index) }));
    // Origin concurrency 2: of 6 deliveries, 2 are in flight and 4 queued when the signal arrives.
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '8000', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_CONCURRENCY: '4', WEBHOOK_MAX_RPS: '0', WEBHOOK_TIMEOUT_MS: '5000' });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await createIntent(origin, { reservation_id: `drain-${i}`, webhook_url: rx.url(`/d${i}`) }));
    await rx.waitFor(2, 5000);
    expect(rx.requests.length).toBeLessThanOrEqual(2);

    const sentAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(12_000)).toEqual({ code: 0, signal: null });

    // Every delivery reached the receiver, each once, and the process did not exit before the last answer.
    expect(rx.requests).toHaveLength(6);
    expect(new Set(rx.requests.map((r) => JSON.parse(r.body).payment_intent_id))).toEqual(new Set(ids));
    expect(new Set(rx.requests.map((r) => r.headers['webhook-id'])).size).toBe(6);
    answeredAt.push(...rx.requests.map((r) => r.receivedAt + delayOf(r.index)));
    expect(server.exitedAt!).toBeGreaterThanOrEqual(Math.max(...answeredAt));
    // Rounds of 1.5 s and 500 ms: about 2 to 2.5 s after the signal, well inside the budget.
    expect(server.exitedAt! - sentAt).toBeLessThan(6000);

    const messages = server.lines.map((l) => l.msg);
    expect(messages).toContain('shutdown: every webhook delivery finished');
    expect(messages).toContain('shutdown complete');
    expect(server.lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(server.lines.filter((l) => 'unparsable' in l)).toEqual([]);
    expect(server.stderr).toBe('');
  });

  it('deliveries waiting on a long retry backoff: exit 0 with a warn line listing them', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '1000', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_BACKOFF_MS: '60000', WEBHOOK_MAX_RPS: '0' });
    for (let i = 0; i < 3; i++) await createIntent(origin, { reservation_id: `retry-${i}`, webhook_url: rx.url() });
    await rx.waitFor(3, 5000);
    const retrying = await eventually(async () => {
      const list = await deliveries(origin, '&status=retrying');
      return list.length === 3 ? list : undefined;
    }, '3 retrying deliveries');

    const sentAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(8000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(4000);
    // The retries were not attempted during the shutdown.
    expect(rx.requests).toHaveLength(3);

    const warn = server.lines.find((l) => l.level === 'warn' && 'unfinished_deliveries' in l);
    expect(warn, server.output).toBeDefined();
    expect(warn).toMatchObject({ unfinished_deliveries: 3, by_status: { retrying: 3 }, msg: 'shutdown: webhook deliveries still unfinished when the drain budget ran out, lost with this process (STORE=memory)' });
    const listed = warn!.delivery_ids as string[];
    expect(listed).toHaveLength(3);
    for (const id of listed) expect(id).toMatch(/^whd_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set(listed)).toEqual(new Set(retrying.map((d) => d.id)));
    expect(server.lines.map((l) => l.msg)).not.toContain('shutdown: every webhook delivery finished');
    expect(server.lines.map((l) => l.msg)).toContain('shutdown complete');
    expect(server.stderr).toBe('');
  });
  // Regression: in-flight deliveries were left out of the report and the agent's close outlived the budget.
  it('a delivery still in flight when the budget runs out is listed, and the process still exits 0', async () => {
    const rx = await receiver(() => ({ hang: true }));
    // Origin concurrency 1: one delivery in flight (never answered), one queued behind it.
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '500', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_TIMEOUT_MS: '20000', WEBHOOK_CONCURRENCY: '2', WEBHOOK_MAX_RPS: '0' });
    for (let i = 0; i < 2; i++) await createIntent(origin, { reservation_id: `hang-${i}`, webhook_url: rx.url() });
    await rx.waitFor(1, 5000);
    const all = await eventually(async () => {
      const list = await deliveries(origin);
      return list.length === 2 ? list : undefined;
    }, '2 deliveries');

    server.child.kill('SIGTERM');
    expect(await server.waitForExit(8000)).toEqual({ code: 0, signal: null });
    const warn = server.lines.find((l) => l.level === 'warn' && 'unfinished_deliveries' in l);
    expect(warn).toMatchObject({ unfinished_deliveries: 2 });
    expect(new Set(warn!.delivery_ids as string[])).toEqual(new Set(all.map((d) => d.id)));
    expect(server.lines.map((l) => l.msg)).toContain('shutdown complete');
    // The attempt cut by the process's own close (its connections destroyed) is no failure of the
    // receiver: no retry is scheduled for a process that is exiting, nor logged as one.
    expect(server.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual(['shutdown: webhook deliveries still unfinished when the drain budget ran out, lost with this process (STORE=memory)']);
  });

  // Regression: the webhook drain ran beside the intent drain and missed the deliveries it created.
  it('deliveries created by intents decided during the drain are drained or reported', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '2000', WEBHOOK_BACKOFF_MS: '60000', WEBHOOK_MAX_RPS: '0' });
    for (let i = 0; i < 3; i++) await createIntent(origin, { reservation_id: `late-${i}`, scenario: 'delay', delay_ms: 300, webhook_url: rx.url() });

    server.child.kill('SIGTERM');
    expect(await server.waitForExit(8000)).toEqual({ code: 0, signal: null });
    expect(rx.requests).toHaveLength(3);
    expect(server.lines.map((l) => l.msg)).not.toContain('shutdown: every webhook delivery finished');
    expect(server.lines.find((l) => l.level === 'warn' && 'unfinished_deliveries' in l)).toMatchObject({ unfinished_deliveries: 3 });
  });
});

describe('SIGTERM with namespaces', () => {
  it('each namespace tells its own end, and the default namespace\'s line says it is that one\'s (a user test read "every webhook delivery finished" after another namespace lost one)', async () => {
    const rx = await receiver((req) => ({ status: 200, delayMs: req.url.startsWith('/slow') ? 3_000 : 0 }));
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '1500', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_MAX_RPS: '0', WEBHOOK_TIMEOUT_MS: '10000' });
    await createIntent(origin, { reservation_id: 'default-1', webhook_url: rx.url('/fast') });
    const res = await fetch(`${origin}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sim-namespace': 'ci-1' }, body: JSON.stringify({ amount: 1000, reservation_id: 'ns-1', webhook_url: rx.url('/slow') }) });
    expect(res.status).toBe(200);
    await rx.waitFor(2, 5000);
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    const ends = server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown: ') && l.msg.includes('webhook deliver')).map((l) => [l.namespace, l.msg]);
    // In either order (the apps drain together).
    expect(ends.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      ['ci-1', 'shutdown: webhook deliveries still unfinished when the drain budget ran out, lost with this process (STORE=memory)'],
      ['default', 'shutdown: every webhook delivery of the default namespace finished (each other namespace says its own)'],
    ]);
  });
});

describe('the drain keeps delivering until done or out of budget (issue 7, defect 3)', () => {
  it('WEBHOOK_MAX_RPS=10: deliveries waiting for a rate-cap token are all attempted before the exit', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '10000', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_MAX_RPS: '10' });
    for (let i = 0; i < 20; i++) await createIntent(origin, { reservation_id: `capped-${i}`, webhook_url: rx.url() });
    const sentAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(rx.requests).toHaveLength(20);
    // 20 at 10 a second, less the bucket's one token: sent over 1.9 s at least, by the rate cap, and
    // the process exited after the last (before 2026-12-06 a bound on the exit's time after the
    // signal, which slow creates, their deliveries begun meanwhile, could bring under it: a review).
    const arrivals = rx.requests.map((r) => r.receivedAt);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThanOrEqual(1_700);
    expect(arrivals.filter((at) => at > sentAt).length).toBeGreaterThan(0);
    expect(server.exitedAt!).toBeGreaterThanOrEqual(Math.max(...arrivals));
    const messages = server.lines.map((l) => l.msg);
    expect(messages).toContain('shutdown: every webhook delivery finished');
    expect(server.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('deliveries waiting for a retry are retried during the drain and delivered', async () => {
    const seen = new Map<string, number>();
    const rx = await receiver((req) => {
      const n = (seen.get(req.url) ?? 0) + 1;
      seen.set(req.url, n);
      return { status: n === 1 ? 503 : 200 };
    });
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '10000', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '300' });
    for (let i = 0; i < 5; i++) await createIntent(origin, { reservation_id: `retried-${i}`, webhook_url: rx.url(`/r${i}`) });
    await rx.waitFor(5, 5000);
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(rx.requests).toHaveLength(10);
    expect([...seen.values()]).toEqual([2, 2, 2, 2, 2]);
    expect(server.lines.map((l) => l.msg)).toContain('shutdown: every webhook delivery finished');
  });
});
