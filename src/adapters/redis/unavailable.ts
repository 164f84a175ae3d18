import type { FastifyBaseLogger } from 'fastify';
import { isStoreUnavailable, StoreUnavailableError, unavailableReason } from '../../core/errors.ts';
import { CountingThrottle, type SetTimer } from '../../log-throttle.ts';
import type { Stores } from '../../core/ports.ts';

/**
 * The one place where Redis' connection failures become the core's STORE_UNAVAILABLE: every
 * method of every Redis-backed port is wrapped, so a call made while Redis is away rejects with
 * `StoreUnavailableError` (each dialect renders it as its 503 with `Retry-After`) instead of an
 * ioredis error that would be a 500; so does a Redis that takes no writes for now (full, unable to
 * persist). Anything else (a Lua error, a bug) passes unchanged.
 */

/** System errors of a socket that cannot reach Redis or lost it. */
const SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * ioredis' own words for a command it gave up on: the connection closed under it, it waited
 * for `maxRetriesPerRequest` reconnects, or for its reply longer than `COMMAND_TIMEOUT_MS`; Redis'
 * replies while it cannot serve (loading its AOF after a restart, a replica without its primary).
 */
const UNAVAILABLE_MESSAGES = /^(Connection is closed\.|Stream isn't writeable|Reached the max retries per request limit|LOADING |MASTERDOWN |TRYAGAIN )/;

/**
 * A command the process gave up on because it knows Redis cannot answer it now (`watched-client.ts`):
 * not sent, as Redis is silent (a PING unanswered for `SILENT_AFTER_MS`) or unreachable for
 * `FAIL_FAST_AFTER_MS` already, or queued for a connection and never written (the error ioredis gave
 * it is the cause); or sent and unanswered when Redis was found silent (`sent`). The call answers
 * 503 STORE_UNAVAILABLE; one not sent never runs.
 */
export class RedisNotServingError extends Error {
  override name = 'RedisNotServingError';
  /** Written to Redis before it was given up: it may have run, its answer lost, or run when Redis reads it. */
  readonly sent: boolean;

  constructor(message: string, options: { sent?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.sent = options.sent ?? false;
  }
}

/** True when `error` is ioredis' time-out of a command that Redis did not answer within `COMMAND_TIMEOUT_MS`. */
export function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

/**
 * True when `error` is ioredis' rejection of the rest of an auto-pipelined batch whose connection
 * closed after some of its replies came: written, so each may have run (a review: 99 of 251 had).
 * Before 2026-12-06 it passed as a bug (500), and a booking payment's begin stayed in flight.
 */
export function isAbortedByClose(error: Error): boolean {
  return error.name === 'AbortError' && error.message.startsWith('Command aborted due to connection close');
}

/**
 * True when `error` says the command was written to Redis before it was given up, so Redis may run
 * it (or have run it): cut off by a silent Redis after it was sent, timed out, or the rest of a
 * batch whose connection closed mid-way. Narrower than `mayHaveRun`, which takes any failure it
 * cannot place for one that may have run.
 */
export function wasWritten(error: unknown): boolean {
  if (error instanceof RedisNotServingError) return error.sent;
  return error instanceof Error && (isCommandTimeout(error) || isAbortedByClose(error));
}

/** True when `error` is ioredis giving up on a command or Redis saying it cannot serve: never another module's error. */
export function isRedisGivingUp(error: unknown): boolean {
  return error instanceof Error && (error.name === 'MaxRetriesPerRequestError' || error instanceof RedisNotServingError || isCommandTimeout(error) || isAbortedByClose(error) || UNAVAILABLE_MESSAGES.test(error.message));
}

/**
 * Redis' replies when it takes no writes for now, whatever the command: over its `maxmemory` with
 * `noeviction` (`OOM`), unable to persist (`MISCONF`: an AOF or RDB write failed, a full disk), a
 * replica (`READONLY`, after a failover: the client connects again, `createRedisClient`), too few replicas
 * (`NOREPLICAS`). Reads still work. A script is refused at its first command that needs memory
 * unless it has written before it (Redis then lets it finish): either way it is whole or not at all.
 */
const REFUSING_WRITES = /^(OOM |MISCONF |READONLY |NOREPLICAS )/;

/** True when `error` is Redis refusing writes for now (`REFUSING_WRITES`). */
export function isRedisRefusingWrites(error: unknown): boolean {
  return error instanceof Error && REFUSING_WRITES.test(error.message);
}

/**
 * True when `error` is Redis' ACL refusing the user a command or a key (`NOPERM`), refused whole:
 * the start checks the user, so this is one narrowed under a running replica (`ACL SETUSER …
 * resetkeys`), until it is given back. Before 2026-12-07 each call answered 500 INTERNAL, and each
 * logged its stack (h78b). A script's own call refused part-way (`ERR The user executing the
 * script can't access …`) is not this: what it wrote before stays, and it remains the script's error.
 */
export function isRedisRefusingUser(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOPERM ');
}

/**
 * ioredis' rejection of the calls it held when its reconnect's credentials were refused (the
 * handshake's `WRONGPASS` or `NOAUTH`, or the ready check's `NOAUTH` in its own words): a password
 * changed, or now required, under a running replica; Redis away for it until they match.
 */
const CREDENTIALS_REFUSED = /^(Ready check failed: )?(WRONGPASS|NOAUTH) /;

/**
 * True when `error` says Redis could not be reached, or takes no writes for now, rather than that
 * it refused this command: either way the call may be made again later (STORE_UNAVAILABLE, 503).
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // Credentials refused at a reconnect: a 503 as Redis away, not a 500 (rev78a: 2 calls in 12 made as
  // the password changed answered 500 INTERNAL). A call written before may have run (`mayHaveRun`).
  if (isRedisGivingUp(error) || isRedisRefusingWrites(error) || isRedisRefusingUser(error) || CREDENTIALS_REFUSED.test(error.message)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && SOCKET_CODES.has(code);
}

/** Redis' replies that refuse a command whole while it cannot serve (loading, a replica without its primary, a slot moving). */
const NOT_SERVING_REPLIES = /^(LOADING |MASTERDOWN |TRYAGAIN )/;

/**
 * Whether a call that failed with `error` (one `isRedisUnavailable` takes) may have run in Redis:
 * false when it was never written (`RedisNotServingError` not sent) or Redis refused it whole (a
 * reply such as `LOADING` or `OOM`); true otherwise, its answer lost (a connection lost or a Redis
 * gone silent with it in flight, a time-out), as it may run later when Redis reads it.
 */
export function mayHaveRun(error: unknown): boolean {
  if (error instanceof RedisNotServingError) return error.sent;
  if (!(error instanceof Error)) return true;
  return !(isRedisRefusingWrites(error) || isRedisRefusingUser(error) || NOT_SERVING_REPLIES.test(error.message));
}

/** `error` as the core's STORE_UNAVAILABLE when Redis could not be reached (saying whether the call `mayHaveRun`); unchanged otherwise. */
export function asStoreError(error: unknown): unknown {
  return isRedisUnavailable(error) ? new StoreUnavailableError({ cause: error, mayHaveRun: mayHaveRun(error) }) : error;
}

/** `call`, a Redis call made outside the guarded stores, rejecting as they do (`asStoreError`). */
export function storeCall<T>(call: Promise<T>): Promise<T> {
  return call.catch((error: unknown) => Promise.reject(asStoreError(error)));
}

/**
 * `store` with every method's rejection passed through `asStoreError` (and shown to `onFailure`
 * first); each method is wrapped once, on first use. Wrappers are kept per function, not per name,
 * so a method replaced on the store (a test standing in a failing one) is the one called, as
 * without the guard.
 */
export function unavailableAsStoreError<T extends object>(store: T, onFailure?: (error: unknown) => void): T {
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      let wrapper = wrapped.get(method);
      if (wrapper === undefined) {
        wrapper = (...args: unknown[]): unknown => {
          let result: unknown;
          try {
            // The target, not the proxy, as `this`: the adapters keep their state in private fields.
            result = method.apply(target, args);
          } catch (error) {
            onFailure?.(error);
            throw asStoreError(error);
          }
          if (!(result instanceof Promise)) return result;
          return result.catch((error: unknown) => {
            onFailure?.(error);
            return Promise.reject(asStoreError(error));
          });
        };
        wrapped.set(method, wrapper);
      }
      return wrapper;
    },
  });
}

/** Every port of `stores` guarded by `unavailableAsStoreError`, each failure shown to `onFailure`. */
export function guardStores(stores: Stores, onFailure?: (error: unknown) => void): Stores {
  const guarded = {} as Record<keyof Stores, object>;
  for (const [port, store] of Object.entries(stores) as Array<[keyof Stores, object]>) guarded[port] = unavailableAsStoreError(store, onFailure);
  return guarded as unknown as Stores;
}

/** At most one line per this interval says Redis refuses writes. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** What to do about each kind of refusal. */
export function refusalHint(message: string): string {
  if (message.startsWith('OOM ')) return 'Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")';
  if (message.startsWith('MISCONF ')) return 'Redis cannot write its AOF or RDB file: see its log (a full disk?)';
  if (message.startsWith('NOPERM ')) return 'the Redis user lost a key or command it needs (its ACL changed while paysim runs): give it back every key under REDIS_KEY_PREFIX and the commands (README: "Running several replicas")';
  return 'Redis answers as a replica, or has too few replicas: point REDIS_URL at the primary';
}

/**
 * Logs that Redis refuses writes (`isRedisRefusingWrites`), or the user's calls (`isRedisRefusingUser`), at error, at most once per
 * REFUSAL_LOG_INTERVAL_MS with how many calls it refused since the last line: a full Redis
 * refuses every create, thousands a second under a load test. The refusals after the last line are
 * told once the interval is over and none has come for 5 s, or at the close (`flush`), when
 * none follows to tell them. Each line has Redis' answer (`redis_error`) and no stack, as the
 * outage's other lines (`errorFields`); before 2026-12-08 `err`, with ioredis' stack.
 */
export function refusalLog(log: FastifyBaseLogger, now: () => number = Date.now, setTimer?: SetTimer): ((error: Error) => void) & { flush(): void } {
  let last: Error | undefined;
  // The refusals after the last line, when none follows them to tell them (a last burst).
  const calls = (n: number): string => `${n} more ${n === 1 ? 'call' : 'calls'}${isRedisRefusingUser(last) ? '' : n === 1 ? ' that writes' : ' that write'}`;
  const trailing = (refused: number) => log.error({ redis_error: last?.message ?? '', refused }, `Redis refused ${calls(refused)} since the last line (503 STORE_UNAVAILABLE); ${refusalHint(last?.message ?? '')}`);
  const throttle = new CountingThrottle(REFUSAL_LOG_INTERVAL_MS, now, trailing, setTimer);
  return Object.assign((error: Error) => {
    last = error;
    const refused = throttle.take();
    if (refused === undefined) return;
    const what = isRedisRefusingUser(error) ? "Redis refuses this user's calls: the calls it refuses answer 503 STORE_UNAVAILABLE until its ACL allows them again" : 'Redis refuses writes: calls that write answer 503 STORE_UNAVAILABLE until it takes them again';
    log.error({ redis_error: error.message, refused }, `${what}; ${refusalHint(error.message)}`);
  }, { flush: () => throttle.flush() });
}

/**
 * At most one line per this interval from a loop whose Redis calls fail for want of Redis, as the
 * scheduler's (`due work could not be done: the store is unavailable`, core.ts).
 */
export const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;

/**
 * True when `error` says the store (Redis) cannot be used now: a guarded store's
 * `StoreUnavailableError` (what the scheduler and the routes take so), or Redis' own error from a
 * call made outside the guarded stores (`isRedisUnavailable`: the webhook stream's reader, the
 * event stream).
 */
export function isUnavailable(error: unknown): boolean {
  return isStoreUnavailable(error) || isRedisUnavailable(error);
}

/**
 * A log line's fields for `error`: when it says the store is unavailable (`isUnavailable`), Redis'
 * words (`redis_error`, `unavailableReason`) without the stack, the same for every call, as the
 * throttled outage lines (`unavailableLog`) say it; any other error (a bug, a Lua error) as itself
 * (`err`), its stack with it. Before 2026-12-08 the connection's, the scheduler's, the bus's and the
 * namespaces' sync's outage lines carried the stack, so one outage's log had two shapes.
 */
export function errorFields(error: unknown): { redis_error: string } | { err: unknown } {
  return isUnavailable(error) ? { redis_error: unavailableReason(error) } : { err: error };
}

export interface UnavailableLog {
  /**
   * Counts `error` when it says the store is unavailable (`isUnavailable`), and tells it at warn, with
   * `fields`, `message`, the count since the last line (`failed`) and why (`redis_error`), no stack, at
   * most once per UNAVAILABLE_LOG_INTERVAL_MS; false, and nothing done, for any other error.
   */
  (error: unknown, message: string, fields?: Record<string, unknown>): boolean;
  /** Tells the failures counted since the last line now, if any (the app's close). */
  flush(): void;
}

/**
 * The log of a loop that calls Redis on its own (the webhook dispatcher, the FluxPay outbox relay)
 * while Redis is unavailable: what it did not do then is retried (or taken over) once Redis is back,
 * so one warning per interval, with how many failures it holds back, says it, where before
 * 2026-12-07 each failure was an error line with a stack (h79a: 14 and 15 a replica in a 3.5 s
 * restart, under a light load whose receiver took 0.8 s to answer).
 * The failures after the last line are told once the interval is over and none has come for 5 s,
 * or at the close (`flush`), in `trailing`'s words.
 */
export function unavailableLog(log: Pick<FastifyBaseLogger, 'warn'>, trailing: (count: number) => string, now: () => number = Date.now, setTimer?: SetTimer): UnavailableLog {
  let reason = '';
  const throttle = new CountingThrottle(UNAVAILABLE_LOG_INTERVAL_MS, now, (failed) => log.warn({ failed, redis_error: reason }, trailing(failed)), setTimer);
  return Object.assign(
    (error: unknown, message: string, fields: Record<string, unknown> = {}): boolean => {
      if (!isUnavailable(error)) return false;
      reason = unavailableReason(error);
      const failed = throttle.take();
      if (failed !== undefined) log.warn({ ...fields, failed, redis_error: reason }, message);
      return true;
    },
    { flush: () => throttle.flush() },
  );
}
