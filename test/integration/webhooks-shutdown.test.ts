import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startReceiver, type Receiver, type Responder } from '../helpers/receiver.ts';

/**
 * Graceful shutdown of webhook delivery, as an orchestrator sees it: `node src/server.ts` in a
 * child process, SIGTERM while deliveries are in flight, queued or waiting on a retry timer.
 * @see issue 3 "Delivery log and control" (graceful shutdown)
 */

const REPO = resolve(import.meta.dirname, '..', '..');
const SECRET = 'whsec_c2h1dGRvd24tdGVzdC1zZWNyZXQtMTIzNDU=';

type LogLine = Record<string, unknown> & { level?: string; msg?: string };
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class ServerProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  exitedAt: number | undefined;
  readonly exited: Promise<Exit>;

  constructor(env: Record<string, string>) {
    const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: '0', WEBHOOK_SECRET: SECRET };
    this.child = spawn(process.execPath, ['src/server.ts'], { cwd: REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => void (this.stdout += chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (this.stderr += chunk));
    this.exited = new Promise((done) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.exitedAt = Date.now();
        done(this.exit);
      });
    });
  }

  get lines(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as LogLine;
        } catch {
          return { unparsable: line };
        }
      });
  }

  get output(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }

  async origin(): Promise<string> {
    const line = await eventually(() => {
      if (this.exit !== undefined) throw new Error(`exited early ${JSON.stringify(this.exit)}\n${this.output}`);
      return this.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at '));
    }, 'the listening line', 10_000);
    const match = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(String(line.msg));
    if (match?.[1] === undefined) throw new Error(`unexpected listening line ${String(line.msg)}`);
    return match[1];
  }

  async waitForExit(timeoutMs: number): Promise<Exit> {
    return eventually(() => this.exit, `the process to exit\n${this.output}`, timeoutMs);
  }
}

const children: ServerProcess[] = [];
const receivers: Receiver[] = [];
afterEach(async () => {
  for (const server of children.splice(0)) {
    if (server.exit === undefined) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  }
  for (const rx of receivers.splice(0)) await rx.close();
});

async function start(env: Record<string, string>): Promise<{ server: ServerProcess; origin: string }> {
  const server = new ServerProcess(env);
  children.push(server);
  return { server, origin: await server.origin() };
}
async function receiver(responder: Responder): Promise<Receiver> {
  const rx = await startReceiver(responder);
  receivers.push(rx);
  return rx;
}

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
    const rx = await receiver(() => ({ status: 200, delayMs: 500 }));
    // Origin concurrency 2: of 6 deliveries, 2 are in flight and 4 queued when the signal arrives.
    const { server, origin } = await start({ SHUTDOWN_TIMEOUT_MS: '8000', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_CONCURRENCY: '4', WEBHOOK_MAX_RPS: '0' });
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
    answeredAt.push(...rx.requests.map((r) => r.receivedAt + 500));
    expect(server.exitedAt!).toBeGreaterThanOrEqual(Math.max(...answeredAt));
    // Three rounds of 500 ms: about 1 to 1.5 s after the signal, well inside the budget.
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
    expect(warn).toMatchObject({ unfinished_deliveries: 3, by_status: { retrying: 3 }, msg: 'shutdown: webhook deliveries still unfinished when the drain budget ran out' });
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
