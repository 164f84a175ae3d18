import { randomUUID } from 'node:crypto';
import { context, isSpanContextValid, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { loggedUrl } from '../http/logged-url.ts';
import { request, type Dispatcher } from 'undici';
import { isSuccess, parseRetryAfter, type AttemptResult } from './retry-policy.ts';

/**
 * One webhook attempt: a POST of the exact body bytes with the signature headers, one timer for
 * the whole exchange, a client span, and a `traceparent` so a receiver can join the trace.
 * Never throws: a network error or timeout is a result like a status code.
 */

export interface AttemptRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  agent: Dispatcher;
  /** For the span: the delivery and what it carries. */
  deliveryId: string;
  eventType: string;
}

export interface AttemptOutcome extends AttemptResult {
  durationMs: number;
}

const USER_AGENT = 'paysim-webhooks/1.0';
const tracer = trace.getTracer('paysim-webhooks');

export async function attempt(req: AttemptRequest): Promise<AttemptOutcome> {
  const started = performance.now();
  const target = withoutCredentials(req.url);
  const span = tracer.startSpan('webhook.attempt', {
    kind: SpanKind.CLIENT,
    // As the request line logs a query: a secret's value (`?token=`) left out.
    attributes: { 'http.request.method': 'POST', 'url.full': loggedUrl(target.redacted), 'paysim.delivery.id': req.deliveryId, 'paysim.event.type': req.eventType },
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...req.headers };
  // A delivery's own Authorization (/api/v2's Bearer SERVICE_AUTH_TOKEN) stands: the URL's credentials do not replace it.
  if (target.authorization !== undefined && headers.authorization === undefined) headers.authorization = target.authorization;
  injectTraceparent(span, headers);

  let statusCode: number | null = null;
  let error: string | null = null;
  let retryAfterMs: number | null = null;
  // One timer for the whole exchange, cleared when it ends (AbortSignal.timeout's timer would
  // still fire, and build an error, long after a fast answer).
  const abort = new AbortController();
  const deadline = setTimeout(() => abort.abort(new DOMException('attempt timed out', 'TimeoutError')), req.timeoutMs);
  try {
    const res = await request(target.url, { method: 'POST', body: req.body, headers, dispatcher: req.agent, signal: abort.signal });
    statusCode = res.statusCode;
    if (statusCode === 429 || statusCode === 503) retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
    await res.body.dump();
  } catch (err) {
    error = describeError(err, req.timeoutMs);
  } finally {
    clearTimeout(deadline);
  }
  const durationMs = Math.round((performance.now() - started) * 100) / 100;
  const result = { statusCode, error, retryAfterMs, durationMs };
  // No response, no status: OpenTelemetry's conventions leave the attribute out (before 2026-12-07 it was 0: a user test).
  if (statusCode !== null) span.setAttribute('http.response.status_code', statusCode);
  if (!isSuccess(result)) span.setStatus({ code: SpanStatusCode.ERROR, message: error ?? `HTTP ${statusCode}` });
  span.end();
  return result;
}

/**
 * A URL with credentials (`http://user:password@host/…`) is sent to without them, with
 * `Authorization: Basic` built from them, as gateways that take such URLs do (Stripe's webhook
 * endpoints, say); undici would drop them. `redacted` is the URL for the span (OpenTelemetry's
 * `REDACTED:REDACTED@`). Most URLs have no `@`: they are returned as they are, unparsed.
 */
export function withoutCredentials(url: string): { url: string; redacted: string; authorization?: string } {
  if (!url.includes('@')) return { url, redacted: url };
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return { url, redacted: url };
  const credentials = `${decoded(parsed.username)}:${decoded(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  const bare = parsed.href;
  parsed.username = 'REDACTED';
  parsed.password = 'REDACTED';
  return { url: bare, redacted: parsed.href, authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

/** Percent-decoded, or as written when it is no valid encoding (`%zz`, which the URL parser keeps): a delivery never fails on it. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * The attempt's span context goes out as `traceparent`, sampled or not (a span the sampler dropped
 * still carries its trace id, with flags 00, as W3C Trace Context asks: a receiver then joins the
 * trace and follows the decision; before 2026-12-05 such an attempt got a new sampled trace).
 * Without a tracing SDK, a fresh one is made.
 */
function injectTraceparent(span: ReturnType<typeof tracer.startSpan>, headers: Record<string, string>): void {
  if (isSpanContextValid(span.spanContext())) {
    propagation.inject(trace.setSpan(context.active(), span), headers);
    if (headers.traceparent !== undefined) return;
  }
  // randomUUID draws from a pooled entropy cache: far cheaper per attempt than randomBytes.
  headers.traceparent = `00-${randomUUID().replaceAll('-', '')}-${randomUUID().slice(0, 8)}${randomUUID().slice(0, 8)}-01`;
}

/** How an attempt ended, for metrics: `success` (2xx), `http_error` (any other status), `timeout`, `network_error`. */
export type AttemptOutcomeKind = 'success' | 'http_error' | 'timeout' | 'network_error';

export const ATTEMPT_OUTCOMES: readonly AttemptOutcomeKind[] = ['success', 'http_error', 'timeout', 'network_error'];

export function attemptOutcome(result: Pick<AttemptResult, 'statusCode' | 'error'>): AttemptOutcomeKind {
  if (result.error !== null) return result.error.startsWith(TIMEOUT_PREFIX) ? 'timeout' : 'network_error';
  return isSuccess(result) ? 'success' : 'http_error';
}

const TIMEOUT_PREFIX = 'timeout after ';

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `${TIMEOUT_PREFIX}${timeoutMs} ms`;
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code === undefined ? message : `${code}: ${message}`;
}
