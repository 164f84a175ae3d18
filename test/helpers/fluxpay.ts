import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { testApps, type TestApp } from './app.ts';

/**
 * What the FluxPay tests share: calls through `inject`, the wrapper unwrapped, and the flows that
 * set up state (a PENDING order, a PAID order, a user with credits) through the API itself.
 */

/**
 * Apps for one test file, closed by `closeAll` (an afterEach). Load shedding is off: these tests
 * assert every answer, and a busy machine must not turn one into a 503 (load shedding has tests of its own).
 */
export function fluxpayApps(defaults: Record<string, string> = {}) {
  return testApps({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...defaults });
}

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const SUCCESS = { isSuccess: true, code: 'SUCCESS', message: 'Request succeeded.' } as const;

export function fpPost(t: TestApp, url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url, payload: payload as Json, headers });
}

export function fpGet(t: TestApp, url: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ url });
}

/** The `result` of a successful answer (it must be one). */
export function resultOf(res: LightMyRequestResponse): Json {
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json() as Json;
  expect(body).toMatchObject(SUCCESS);
  return body.result as Json;
}

/** An error answer: status and the whole body. */
export function errorOf(res: LightMyRequestResponse): [number, Json] {
  return [res.statusCode, res.json() as Json];
}

export function fpError(code: string, message: string | RegExp = expect.any(String) as unknown as string, result: unknown = null): Json {
  return { isSuccess: false, code, message: message instanceof RegExp ? expect.stringMatching(message) : message, result };
}

export async function createOrder(t: TestApp, overrides: Json = {}): Promise<Json> {
  return resultOf(await fpPost(t, '/api/v1/orders', { userId: 'user_1', serviceId: 'ai-writer', orderName: 'AI Writer report', amount: 15000, ...overrides }));
}

export async function createPayment(t: TestApp, orderId: string, overrides: Json = {}): Promise<Json> {
  return resultOf(await fpPost(t, '/api/v1/payments', { orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123' }, ...overrides }));
}

export async function confirm(t: TestApp, payment: Json, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return fpPost(t, '/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: payment.orderId, amount: payment.amount }, headers);
}

/** A PAID order (and its APPROVED payment). */
export async function paidOrder(t: TestApp, overrides: Json = {}): Promise<{ order: Json; payment: Json }> {
  const order = await createOrder(t, overrides);
  const payment = resultOf(await confirm(t, await createPayment(t, order.orderId)));
  return { order: resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)), payment };
}

/** Gives a user `credits` through a CREDIT_CHARGE order, paid and charged. */
export async function chargeCredits(t: TestApp, userId: string, credits: number): Promise<Json> {
  const { order } = await paidOrder(t, { userId, orderName: `${credits} credits`, amount: credits * 10, metadata: { kind: 'CREDIT_CHARGE', credits } });
  return resultOf(await fpPost(t, '/api/v1/credits/charge', { userId, orderId: order.orderId }));
}

export async function balanceOf(t: TestApp, userId: string): Promise<number> {
  return resultOf(await fpGet(t, `/api/v1/credits/balance?userId=${encodeURIComponent(userId)}`)).balance as number;
}

export async function reconciliation(t: TestApp): Promise<Json> {
  return resultOf(await fpGet(t, '/api/v1/reconciliation'));
}

let events = 0;
/** A usage event with a fresh eventId. */
export function usageEvent(type: 'requested' | 'completed' | 'failed', fields: Json): Json {
  return { eventId: `evt-test-${++events}`, type: `service.usage.${type}`, serviceId: 'ai-writer', ...fields };
}

export async function postEvent(t: TestApp, event: Json): Promise<LightMyRequestResponse> {
  return fpPost(t, '/api/v1/events', event);
}
