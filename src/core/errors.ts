/**
 * Every error the core raises, with a stable code. Route modules map codes to their API's status
 * and envelope; codes are never reused for another meaning.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'REFUND_EXCEEDS_AMOUNT'
  | 'IDEMPOTENCY_KEY_MISMATCH'
  | 'IDEMPOTENCY_KEY_IN_USE'
  | 'SOLD_OUT'
  | 'FORBIDDEN'
  | 'BOOKING_EXPIRED'
  | 'PAYMENT_ALREADY_PROCESSED'
  /** A bounded store is full of unfinished work that it must not evict; retry later (503). */
  | 'STORE_FULL'
  /** The shared store (Redis) cannot be reached; retry later (503). */
  | 'STORE_UNAVAILABLE'
  /** The process is closing (SIGTERM); retry on another instance (503). */
  | 'SHUTTING_DOWN'
  /** More namespaces (X-Sim-Namespace) than NAMESPACES_MAX (409). */
  | 'NAMESPACE_LIMIT'
  /** The namespace was reset while it was being set up, or the service is shutting down; retry (503). */
  | 'NAMESPACE_UNAVAILABLE';

/** One rejected input: where it is (a JSON pointer such as `/card/cvv`) and which rule it broke. */
export interface FieldIssue {
  /** The part of the request it is in, named as a schema error names it: `body`, `querystring`, `params` or `headers`. */
  in?: string;
  field: string;
  rule: string;
  message: string;
}

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly details: FieldIssue[] | undefined;
  /** The refusal reports a state another request in flight is about to change (a payment in progress): its answer is not kept under an Idempotency-Key. */
  readonly transient: boolean;

  constructor(code: ErrorCode, message: string, details?: FieldIssue[], options: { transient?: boolean } = {}) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.details = details;
    this.transient = options.transient === true;
  }
}

export function validationFailed(details: FieldIssue[]): DomainError {
  const first = details[0];
  const message = first === undefined ? 'The request is invalid.' : `${first.in === undefined ? '' : `${first.in} `}${first.field}: ${first.message}`;
  return new DomainError('VALIDATION_FAILED', message, details);
}

export function notFound(what: string, id: string): DomainError {
  return new DomainError('NOT_FOUND', `${what} ${id} does not exist.`);
}

/** The stores that can refuse a request with STORE_FULL (the `store` label of `store_full_total`). */
/** Not FluxPay's webhook subscriptions: they never expire, so one more is a 409 that says to delete some (core/fluxpay/service.ts). */
export const FULL_STORES = ['intents', 'bookings', 'v2_payments', 'fluxpay', 'fluxpay_billing_subscriptions', 'waiting_room_tickets'] as const;
export type FullStore = (typeof FULL_STORES)[number];

/**
 * What the client is told when a store is full: most stores' open records finish by themselves
 * (intents and payments are decided, holds and tickets expire), so a retry soon succeeds; FluxPay's
 * open orders wait for the client (a confirm, a charge, a usage, a cancel) and its subscriptions for
 * their end, and `/api/v2`'s PENDING payments for a confirm or an acknowledged callback, so retrying
 * alone never makes room there (a soak test, 2026-12-05: orders paid and never completed filled the
 * store, and the answer said to retry shortly; a user test: v2 payments whose callbacks failed).
 */
const STORE_FULL_MESSAGES: Partial<Record<FullStore, string>> = {
  intents: 'The intents store is full of PENDING intents, which it keeps until each is decided: retry once some are (after their delay), or raise STORE_MAX_INTENTS.',
  bookings: 'The bookings store is full of pending bookings, which it keeps until each is paid, cancelled or expired (SEAT_HOLD_MS): retry once some are, or raise BOOKINGS_MAX.',
  waiting_room_tickets:
    'The waiting rooms hold as many live tickets as they may (waiting, or admitted with a token that has not expired, used or not): retry once some tokens expire (each room’s admissionTtlSeconds), or raise FLUXPAY_MAX_WAITING_TICKETS.',
  fluxpay:
    'The fluxpay store is full of open work, which it keeps until it ends: PENDING or PAID orders with their payments (complete or cancel them) and running usage sagas; retrying alone does not make room until some end (or raise FLUXPAY_MAX_RECORDS).',
  v2_payments:
    'The v2_payments store is full of PENDING payments, which it keeps until each is finished: confirm them (POST /api/v2/confirm-payment) or let their callbacks be acknowledged, or raise V2_PAYMENTS_MAX; retrying alone does not make room until some finish.',
  fluxpay_billing_subscriptions:
    'The fluxpay_billing_subscriptions store is full of subscriptions that have not expired, which it keeps: cancel some and let them expire, or raise FLUXPAY_MAX_BILLING_SUBSCRIPTIONS; retrying alone does not make room until some expire.',
};

/** A bounded store that is full of unfinished work it must not evict (nothing may go to make room). */
export class StoreFullError extends DomainError {
  /** Which store: `intents`, `bookings`, … */
  readonly store: FullStore;

  constructor(store: FullStore) {
    super('STORE_FULL', STORE_FULL_MESSAGES[store] ?? `The ${store} store is full of unfinished work; retry shortly.`);
    this.store = store;
  }
}

export function storeFull(store: FullStore): StoreFullError {
  return new StoreFullError(store);
}

/**
 * A keyed request found, before its write, that its Idempotency-Key is no longer its own: another
 * request of the key took it (the client's retry on another replica, once this one had been cut off
 * from Redis for REPLICA_ALIVE_MS) and answers it. Nothing is written here, so the operation is not
 * done twice. Transient: the key is not settled by this answer (it is the other request's).
 */
export function idempotencyKeyLost(): DomainError {
  return new DomainError('IDEMPOTENCY_KEY_IN_USE', 'Another request with this Idempotency-Key (a retry on another replica) took it over while this one could not reach Redis; that request answers it, and nothing was done here.', undefined, { transient: true });
}

/**
 * The store that holds the service's state cannot be reached (Redis stopped, restarting, or out of
 * the network): the client retries later. The adapters raise it; each dialect renders it as its 503.
 */
export class StoreUnavailableError extends DomainError {
  /**
   * The call reached the store before it went away, and may have been carried out there, its answer
   * lost (or may be when the store reads it): what it began may need ending (`storeCallMayHaveRun`).
   * False (the default) when it surely changed nothing.
   */
  readonly mayHaveRun: boolean;

  constructor(options?: { cause?: unknown; mayHaveRun?: boolean }, code: 'STORE_UNAVAILABLE' | 'SHUTTING_DOWN' = 'STORE_UNAVAILABLE', message = 'The store is unavailable; retry shortly.') {
    super(code, message);
    if (options?.cause !== undefined) this.cause = options.cause;
    this.mayHaveRun = options?.mayHaveRun ?? false;
  }
}

/** True when `error` says the store could not be reached after the call reached it (`StoreUnavailableError.mayHaveRun`). */
export function storeCallMayHaveRun(error: unknown): boolean {
  return storeUnavailableIn(error)?.mayHaveRun === true;
}

/** What a request gets from a process that is closing. */
export const SHUTTING_DOWN_MESSAGE = 'The simulator is shutting down; retry on another instance.';

/**
 * The store is this process's no more: it is closing (a shared scheduler quiesced at the close,
 * `Scheduler.quiesce`). A StoreUnavailableError for what handles one (nothing of it counts as a
 * failure of the work); the client gets 503 SHUTTING_DOWN, as a request arriving then does.
 */
export class ShuttingDownError extends StoreUnavailableError {
  constructor() {
    super(undefined, 'SHUTTING_DOWN', SHUTTING_DOWN_MESSAGE);
  }
}

/** True when `error`, or an error it was caused by, says the store could not be reached. */
export function isStoreUnavailable(error: unknown): boolean {
  return storeUnavailableIn(error) !== undefined;
}

/**
 * Why `error` (one that says the store is unavailable: `isStoreUnavailable`, or a Redis error that
 * adapters/redis' `isRedisUnavailable` takes) says so, in Redis' or ioredis' words: the messages of
 * the error and its causes, those of the guard's `StoreUnavailableError` left out (it says only
 * that). A line that tells an outage says this instead of the error's stack, which is the same for
 * every call and says nothing the message does not.
 */
export function unavailableReason(error: unknown): string {
  const messages: string[] = [];
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (cause.constructor !== StoreUnavailableError) messages.push(cause.message);
  }
  return messages.length > 0 ? messages.join(': ') : error instanceof Error ? error.message : String(error);
}

/** The StoreUnavailableError `error` is, or was caused by (five causes deep at most). */
function storeUnavailableIn(error: unknown): StoreUnavailableError | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (cause instanceof StoreUnavailableError) return cause;
  }
  return undefined;
}

/**
 * Due work whose record is not stored yet: with a store shared by replicas, another replica can
 * run a job between its scheduling and the write it follows (an inbox event, an intent's insert).
 * The scheduler retries it with backoff as any failure, but the log says so at debug until the
 * last attempt: it is the expected end of a race, not a fault (a soak showed 27 error lines with
 * stacks in 20 minutes of two replicas' bookings, each settled on its next attempt).
 */
export class NotStoredYetError extends Error {
  override name = 'NotStoredYetError';
}
