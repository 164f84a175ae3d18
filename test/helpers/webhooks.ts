import { expect } from 'vitest';
import { buildTestApp, type TestApp } from './app.ts';
import { eventually, receiverPool, type Receiver, type Responder } from './receiver.ts';

/**
 * What the webhook tests share: apps and real receivers closed after each test, creating an
 * intent through `inject`, and reading (and polling) the delivery log.
 */

export interface AttemptView {
  at: string;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

/** A delivery as `GET /v1/sim/webhooks/deliveries` lists it. */
export interface DeliveryView {
  id: string;
  event_id: string;
  type: string;
  url: string;
  payment_intent_id: string | null;
  subject: { kind: string; id: string } | null;
  test: boolean;
  status: 'pending' | 'retrying' | 'delivered' | 'failed';
  attempts: AttemptView[];
  next_attempt_at: string | null;
  failure_reason: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookFixtures {
  /** The service on a manual clock (see buildTestApp), configured from `defaults` and then `env`; its log lines in `logs` when given. */
  app(env?: Record<string, string>, clockStart?: number, logs?: Array<Record<string, unknown>>): Promise<TestApp>;
  receiver(responder?: Responder): Promise<Receiver>;
  /** For an afterEach: every receiver, then every app. */
  closeAll(): Promise<void>;
}

export function webhookFixtures(defaults: Record<string, string> = {}): WebhookFixtures {
  const apps: TestApp[] = [];
  const receivers = receiverPool();
  return {
    async app(env = {}, clockStart, logs) {
      const t = await buildTestApp({ ...defaults, ...env }, { ...(clockStart === undefined ? {} : { clockStart }), ...(logs === undefined ? {} : { logs }) });
      apps.push(t);
      return t;
    },
    receiver: receivers.start,
    async closeAll() {
      // Receivers first: destroying their sockets ends any request an app is still waiting on.
      await receivers.closeAll();
      for (const t of apps.splice(0)) await t.app.close();
    },
  };
}

/** `POST /v1/sim/intent` (reservation `res_1` and amount 1000 unless `body` says otherwise); the new intent's id. */
export async function createIntent(t: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_1', amount: 1000, ...body } });
  expect(res.statusCode).toBe(200);
  return res.json().payment_intent_id;
}

/** One page of the delivery log; `query` starts with `?`. */
export async function listDeliveries(t: TestApp, query = ''): Promise<{ data: DeliveryView[]; next_cursor: string | null }> {
  const res = await t.app.inject({ url: `/v1/sim/webhooks/deliveries${query}` });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** Polls the log until the first delivery `query` lists satisfies `ready`. */
export function deliveryWhen(t: TestApp, query: string, ready: (d: DeliveryView) => boolean, what: string, timeoutMs = 5000): Promise<DeliveryView> {
  return eventually(
    async () => {
      const [d] = (await listDeliveries(t, query)).data;
      return d !== undefined && ready(d) ? d : undefined;
    },
    what,
    timeoutMs,
  );
}

/** `ready` for deliveryWhen: `n` attempts made and no longer pending (and, if given, in `status`). */
export const afterAttempts = (n: number, status?: DeliveryView['status']) => (d: DeliveryView) =>
  d.attempts.length === n && d.status !== 'pending' && (status === undefined || d.status === status);

/** The value of the sample `name` (with its labels, as written) in Prometheus text; undefined when absent. */
export function metricSample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
