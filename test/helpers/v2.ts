import { spawnSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { resolve } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { TestApp } from './app.ts';
import { inCi } from './promtool.ts';
import type { ReceivedRequest } from './receiver.ts';
import { eventually } from './receiver.ts';
import { listDeliveries, type DeliveryView } from './webhooks.ts';

/**
 * What the tests of the Payment Server v3 API (`/api/v2`) share: the document's request, calls
 * through `inject`, the delivery log of a payment, and the two ways a receiver verifies a
 * callback: the document's Python `verify_webhook_signature` (run by python3) and the same in
 * TypeScript, written here from the document, not taken from the service.
 */

/** Source document 001's request, with a callback URL of the test's. */
export function v2Body(txId: string, callbackUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { version: 'v2', tx_id: txId, order_id: 123, user_id: 1, amount: 1000, callback_url: callbackUrl, ...overrides };
}

export function createV2(t: TestApp, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/api/v2/payments', headers, payload: body as Record<string, unknown> });
}

export function confirmV2(t: TestApp, paymentId: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/api/v2/confirm-payment', headers, payload: { payment_id: paymentId } });
}

export async function getV2(t: TestApp, paymentId: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ url: `/api/v2/payments/${encodeURIComponent(paymentId)}` });
}

/** The payment as GET /api/v2/payments/{id} shows it (it must exist). */
export async function paymentOf(t: TestApp, paymentId: string): Promise<Record<string, unknown>> {
  const res = await getV2(t, paymentId);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

/** The deliveries of a payment's callbacks in the log (newest first). */
export async function v2Deliveries(t: TestApp, paymentId: string): Promise<DeliveryView[]> {
  return (await listDeliveries(t, '?limit=500')).data.filter((d) => d.subject?.kind === 'v2_payment' && d.subject.id === paymentId);
}

/** Polls the log until the payment's only delivery satisfies `ready`. */
export function v2DeliveryWhen(t: TestApp, paymentId: string, ready: (d: DeliveryView) => boolean, what: string): Promise<DeliveryView> {
  return eventually(async () => {
    const found = await v2Deliveries(t, paymentId);
    expect(found.length).toBeLessThanOrEqual(1);
    return found[0] !== undefined && ready(found[0]) ? found[0] : undefined;
  }, what);
}

export const ISO_MS = (ms: number): string => new Date(ms).toISOString();

export function headersOf(req: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

// ── verification, as a receiver of document 001 does it ─────────────────────────────────────────

const VERIFY_SCRIPT = resolve(import.meta.dirname, '..', 'fixtures', 'verify_webhook_signature.py');

export const hasPython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).error === undefined;
export const PYTHON_MISSING = 'python3 is not on PATH and CI is set: the document’s verify_webhook_signature runs with python3 (Debian package python3-minimal)';
/** Runs the Python tests; without python3 they are skipped locally and fail in CI. */
export const runPython = hasPython || inCi;

/** The document's `verify_webhook_signature(payload, signature, secret)`, run by python3 on the raw body bytes. */
export function pythonVerify(body: string | Buffer, signature: string, secret: string): { valid: boolean; output: string } {
  if (!hasPython) throw new Error(PYTHON_MISSING);
  const run = spawnSync('python3', [VERIFY_SCRIPT, signature, secret], { input: typeof body === 'string' ? Buffer.from(body, 'utf8') : body, encoding: 'utf8' });
  if (run.error !== undefined) throw run.error;
  const output = `${run.stdout}${run.stderr}`.trim();
  if (run.status !== 0 && run.status !== 1) throw new Error(`verify_webhook_signature.py exited ${String(run.status)}: ${output}`);
  return { valid: run.status === 0 && output === 'valid', output };
}

/**
 * `pythonVerify` for many cases with one start of python3 (the script's --batch): each start costs
 * tens of milliseconds idle and seconds on a busy machine, and spawnSync holds the worker meanwhile.
 */
export function pythonVerifyAll(cases: ReadonlyArray<{ body: string | Buffer; signature: string; secret: string }>): Array<{ valid: boolean; output: string }> {
  if (!hasPython) throw new Error(PYTHON_MISSING);
  const input = cases.map((c) => JSON.stringify({ body: (typeof c.body === 'string' ? Buffer.from(c.body, 'utf8') : c.body).toString('base64'), signature: c.signature, secret: c.secret })).join('\n');
  const run = spawnSync('python3', [VERIFY_SCRIPT, '--batch'], { input: `${input}\n`, encoding: 'utf8' });
  if (run.error !== undefined) throw run.error;
  const lines = run.stdout.trim().split('\n');
  if (run.status !== 0 || lines.length !== cases.length) throw new Error(`verify_webhook_signature.py --batch exited ${String(run.status)} with ${lines.length} lines for ${cases.length} cases: ${run.stderr.trim()}`);
  return lines.map((output) => ({ valid: output === 'valid', output }));
}

/** The same function in TypeScript, as the README shows it for Node receivers. */
export function tsVerify(body: string | Buffer, signature: string, secret: string): boolean {
  const expected = Buffer.from(createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('base64'), 'ascii');
  const given = Buffer.from(signature, 'ascii');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
