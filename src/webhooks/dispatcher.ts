import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import PQueue from 'p-queue';
import { request, type Dispatcher } from 'undici';
import { randomUUID } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.ts';
import type { IdFactory } from '../core/ids.ts';
import type { RandomSource } from '../core/random.ts';
import type { Delivery, DeliveryLog } from './delivery-log.ts';
import { Signer, type SigningKeys } from './signing.ts';
import { TokenBucket } from './token-bucket.ts';

/**
 * The one place that makes outbound HTTP calls. Every accepted webhook becomes a Delivery in the
 * log and is attempted by a bounded worker pool (p-queue) over one undici Agent, under a global
 * token-bucket rate cap, with exponential backoff between retries. Nothing is dropped silently:
 * a delivery that cannot be made ends `failed` in the log with its reason.
 *
 * Two layers of queueing keep one slow receiver from stalling the others: each receiver origin
 * has its own FIFO lane that feeds at most `originConcurrency` tasks into the shared pool, so a
 * receiver that times out can hold only that many of the pool's workers.
 * Retries wait on clock timers, never in a worker.
 * @see issue 3
 */

export interface DispatcherSettings {
  timeoutMs: number;
  maxRetries: number;
  backoffMs: number;
  backoffMaxMs: number;
  maxRps: number;
  concurrency: number;
  originConcurrency: number;
  queueMax: number;
}

export type DeliveryResult = 'delivered' | 'retried' | 'failed' | 'dropped';

export interface DispatcherObserver {
  onResult?(result: DeliveryResult, delivery: Delivery): void;
  onAttempt?(durationSeconds: number, ok: boolean): void;
}

export interface DispatcherDeps {
  clock: Clock;
  ids: IdFactory;
  log: DeliveryLog;
  agent: Dispatcher;
  keys: SigningKeys;
  settings: DispatcherSettings;
  /** For backoff jitter; separate from the scenario engine's source so seeded outcomes stay stable. */
  jitter?: RandomSource;
  observer?: DispatcherObserver;
}

export interface WebhookRequest {
  eventId: string;
  type: string;
  url: string;
  body: string;
  intentId?: string | null;
  bookingId?: string | null;
  headers?: Record<string, string>;
  test?: boolean;
}

interface Lane {
  waiting: Delivery[];
  head: number;
  active: number;
}

const USER_AGENT = 'paysim-webhooks/1.0';
const JITTER = 0.2;
const tracer = trace.getTracer('paysim-webhooks');

export class WebhookDispatcher {
  readonly #deps: DispatcherDeps;
  readonly #pool: PQueue;
  readonly #lanes = new Map<string, Lane>();
  readonly #retryTimers = new Map<string, Timer>();
  readonly #disabled = new Map<string, number>();
  readonly #bucket: TokenBucket | undefined;
  readonly #jitter: RandomSource;
  readonly #signer: Signer;
  /** Deliveries that left their lane and whose attempt has not finished (queued in the pool or in flight). */
  readonly #active = new Set<Delivery>();
  #requestsInFlight = 0;
  #waiting = 0;
  #closed = false;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    const { settings } = deps;
    this.#pool = new PQueue({ concurrency: settings.concurrency });
    // A capacity of a twentieth of a second's worth keeps the measured rate within 1 % of the cap over 10 s.
    this.#bucket = settings.maxRps > 0 ? new TokenBucket(deps.clock, settings.maxRps, Math.max(1, Math.ceil(settings.maxRps / 20))) : undefined;
    this.#jitter = deps.jitter ?? { next: () => Math.random() };
    this.#signer = new Signer(deps.keys);
  }

  /** Deliveries waiting for a worker (not counting those waiting on a retry timer). */
  get queueDepth(): number {
    return this.#waiting + this.#pool.size;
  }

  /** HTTP requests in flight (not counting attempts waiting for a rate-cap token). */
  get inFlight(): number {
    return this.#requestsInFlight;
  }

  get retriesScheduled(): number {
    return this.#retryTimers.size;
  }

  /** Accepts a webhook: logs it and queues its first attempt. */
  deliver(req: WebhookRequest): Delivery {
    const now = this.#deps.clock.now();
    const delivery: Delivery = {
      id: this.#deps.ids('whd'),
      eventId: req.eventId,
      type: req.type,
      url: req.url,
      intentId: req.intentId ?? null,
      bookingId: req.bookingId ?? null,
      test: req.test ?? false,
      body: req.body,
      extraHeaders: req.headers ?? {},
      status: 'pending',
      attempts: [],
      seriesStart: 0,
      nextAttemptAt: null,
      failureReason: null,
      createdAt: now,
      updatedAt: now,
    };
    this.#deps.log.insert(delivery);
    this.#submit(delivery);
    return delivery;
  }

  /**
   * Starts a new attempt series for a finished delivery (same event id and body) and re-enables
   * its URL. A delivery still pending or retrying is already being sent: replaying it would send
   * it twice at once, so callers must check `isFinished` first.
   */
  replay(delivery: Delivery): Delivery {
    if (!isFinished(delivery)) throw new Error(`delivery ${delivery.id} is ${delivery.status}`);
    this.#disabled.delete(delivery.url);
    delivery.seriesStart = delivery.attempts.length;
    delivery.failureReason = null;
    this.#submit(delivery, true);
    return delivery;
  }

  /** URLs that answered 410 Gone, with when; deliveries to them fail until re-enabled. */
  disabledUrls(): Array<{ url: string; disabledAt: number }> {
    return [...this.#disabled].map(([url, disabledAt]) => ({ url, disabledAt }));
  }

  enableUrl(url: string): boolean {
    return this.#disabled.delete(url);
  }

  /**
   * Waits for queued and in-flight deliveries to finish, up to `budgetMs` of real time.
   * Returns the deliveries still unfinished (queued, in flight or waiting on a retry timer).
   */
  async drain(budgetMs: number): Promise<Delivery[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, budgetMs);
      timer.unref();
    });
    await Promise.race([this.#idle(), deadline]);
    clearTimeout(timer);
    const left: Delivery[] = [...this.#active];
    for (const lane of this.#lanes.values()) left.push(...lane.waiting.slice(lane.head));
    for (const id of this.#retryTimers.keys()) {
      const delivery = this.#deps.log.get(id);
      if (delivery !== undefined) left.push(delivery);
    }
    return left;
  }

  /** Stops retries and new attempts; in-flight requests are left to the agent's close. */
  close(): void {
    this.#closed = true;
    this.#bucket?.releaseAll();
    for (const timer of this.#retryTimers.values()) timer.cancel();
    this.#retryTimers.clear();
    this.#pool.clear();
  }

  async #idle(): Promise<void> {
    while (this.queueDepth > 0 || this.inFlight > 0) await this.#pool.onIdle();
  }

  /**
   * Queues an attempt. The queue bound applies to new deliveries only: a retry or a replay is of a
   * delivery already held in the log, so queueing it costs no memory and it is never dropped.
   */
  #submit(delivery: Delivery, accepted = false): void {
    if (this.#closed || (!accepted && this.queueDepth >= this.#deps.settings.queueMax)) {
      this.#finish(delivery, 'failed', this.#closed ? 'shutting_down' : 'queue_full');
      this.#deps.observer?.onResult?.('dropped', delivery);
      return;
    }
    delivery.status = 'pending';
    delivery.nextAttemptAt = null;
    delivery.updatedAt = this.#deps.clock.now();
    const origin = originOf(delivery.url);
    let lane = this.#lanes.get(origin);
    if (lane === undefined) {
      lane = { waiting: [], head: 0, active: 0 };
      this.#lanes.set(origin, lane);
    }
    lane.waiting.push(delivery);
    this.#waiting++;
    this.#pump(origin, lane);
  }

  #pump(origin: string, lane: Lane): void {
    while (lane.active < this.#deps.settings.originConcurrency && lane.head < lane.waiting.length) {
      const delivery = lane.waiting[lane.head] as Delivery;
      lane.waiting[lane.head] = undefined as unknown as Delivery;
      lane.head++;
      this.#waiting--;
      lane.active++;
      this.#active.add(delivery);
      void this.#pool.add(() => this.#attempt(delivery)).finally(() => {
        this.#active.delete(delivery);
        lane.active--;
        this.#pump(origin, lane);
      });
    }
    if (lane.head > 1024 && lane.head * 2 > lane.waiting.length) {
      lane.waiting = lane.waiting.slice(lane.head);
      lane.head = 0;
    }
    if (lane.active === 0 && lane.head >= lane.waiting.length && this.#lanes.get(origin) === lane) this.#lanes.delete(origin);
  }

  async #attempt(delivery: Delivery): Promise<void> {
    const { clock, settings } = this.#deps;
    await this.#takeToken();
    if (this.#closed) return;
    if (this.#disabled.has(delivery.url)) {
      this.#finish(delivery, 'failed', 'endpoint_disabled');
      this.#deps.observer?.onResult?.('failed', delivery);
      return;
    }

    const at = clock.now();
    const started = performance.now();
    const span = tracer.startSpan('webhook.attempt', {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': 'POST', 'url.full': delivery.url, 'paysim.delivery.id': delivery.id, 'paysim.event.type': delivery.type },
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...delivery.extraHeaders,
      ...this.#signer.headers(delivery.eventId, delivery.body, at),
    };
    injectTraceparent(span, headers);

    let statusCode: number | null = null;
    let error: string | null = null;
    let retryAfterMs: number | null = null;
    // One timer for the whole exchange, cleared when it ends (AbortSignal.timeout's timer would
    // still fire, and build an error, long after a fast answer).
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(new DOMException('attempt timed out', 'TimeoutError')), settings.timeoutMs);
    this.#requestsInFlight++;
    try {
      const res = await request(delivery.url, {
        method: 'POST',
        body: delivery.body,
        headers,
        dispatcher: this.#deps.agent,
        signal: abort.signal,
      });
      statusCode = res.statusCode;
      if (statusCode === 429 || statusCode === 503) retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
      await res.body.dump();
    } catch (err) {
      error = describeError(err, settings.timeoutMs);
    } finally {
      clearTimeout(deadline);
      this.#requestsInFlight--;
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300 && error === null;
    span.setAttribute('http.response.status_code', statusCode ?? 0);
    if (!ok) span.setStatus({ code: SpanStatusCode.ERROR, message: error ?? `HTTP ${statusCode}` });
    span.end();

    delivery.attempts.push({ at, statusCode, durationMs, error });
    this.#deps.observer?.onAttempt?.(durationMs / 1000, ok);
    if (this.#closed) return;

    if (ok) {
      this.#finish(delivery, 'delivered', null);
      this.#deps.observer?.onResult?.('delivered', delivery);
      return;
    }
    if (statusCode === 410) {
      // 410 Gone: the receiver says this URL is no more; stop sending to it until re-enabled.
      this.#disabled.set(delivery.url, clock.now());
      this.#finish(delivery, 'failed', 'gone');
      this.#deps.observer?.onResult?.('failed', delivery);
      return;
    }
    const attemptsInSeries = delivery.attempts.length - delivery.seriesStart;
    if (attemptsInSeries > settings.maxRetries) {
      this.#finish(delivery, 'failed', `max_retries_exceeded: ${error ?? `HTTP ${statusCode}`}`);
      this.#deps.observer?.onResult?.('failed', delivery);
      return;
    }
    this.#scheduleRetry(delivery, this.#backoff(attemptsInSeries, retryAfterMs));
  }

  /** n-th retry: backoff × 2^(n−1), ±20 % jitter, capped; a Retry-After is honoured up to the cap. */
  #backoff(retry: number, retryAfterMs: number | null): number {
    const { backoffMs, backoffMaxMs } = this.#deps.settings;
    if (retryAfterMs !== null) return Math.min(backoffMaxMs, retryAfterMs);
    const base = backoffMs * 2 ** (retry - 1);
    const jittered = base * (1 - JITTER + 2 * JITTER * this.#jitter.next());
    return Math.round(Math.min(backoffMaxMs, jittered));
  }

  #scheduleRetry(delivery: Delivery, delayMs: number): void {
    const now = this.#deps.clock.now();
    delivery.status = 'retrying';
    delivery.nextAttemptAt = now + delayMs;
    delivery.updatedAt = now;
    this.#deps.observer?.onResult?.('retried', delivery);
    this.#retryTimers.set(
      delivery.id,
      this.#deps.clock.schedule(delayMs, () => {
        this.#retryTimers.delete(delivery.id);
        this.#submit(delivery, true);
      }),
    );
  }

  #finish(delivery: Delivery, status: 'delivered' | 'failed', reason: string | null): void {
    delivery.status = status;
    delivery.failureReason = reason;
    delivery.nextAttemptAt = null;
    delivery.updatedAt = this.#deps.clock.now();
  }

  async #takeToken(): Promise<void> {
    if (this.#bucket !== undefined) await this.#bucket.take();
  }
}

export function isFinished(delivery: Delivery): boolean {
  return delivery.status === 'delivered' || delivery.status === 'failed';
}

function originOf(url: string): string {
  return new URL(url).origin;
}

/** The attempt's span context goes out as `traceparent`; without a tracing SDK, a fresh one is made. */
function injectTraceparent(span: ReturnType<typeof tracer.startSpan>, headers: Record<string, string>): void {
  if (span.isRecording()) {
    propagation.inject(trace.setSpan(context.active(), span), headers);
    if (headers.traceparent !== undefined) return;
  }
  // randomUUID draws from a pooled entropy cache: far cheaper per attempt than randomBytes.
  headers.traceparent = `00-${randomUUID().replaceAll('-', '')}-${randomUUID().slice(0, 8)}${randomUUID().slice(0, 8)}-01`;
}

/** `Retry-After` is delay-seconds or an HTTP date. @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return null;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timeout after ${timeoutMs} ms`;
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code === undefined ? message : `${code}: ${message}`;
}
