import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { DELIVERY_GROUP } from '../../src/adapters/redis/delivery-stream-reader.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import type { Stores } from '../../src/core/ports.ts';
import { createRandom } from '../../src/core/random.ts';
import { bookingsErrors } from '../../src/dialects/bookings/errors.ts';
import { nativeErrors } from '../../src/dialects/native/errors.ts';
import { v2Errors } from '../../src/dialects/payment-server-v2/errors.ts';
import { fluxpayErrors } from '../../src/dialects/fluxpay/errors.ts';
import { MESSAGES, paymentServiceErrors } from '../../src/dialects/payment-service/errors.ts';
import { V2_SIGNATURE_SCHEME } from '../../src/dialects/payment-server-v2/webhook-payload.ts';
import { RETRY_JOB } from '../../src/webhooks/dispatcher.ts';
import type { SignerRegistry } from '../../src/webhooks/signers/registry.ts';
import { ManualClock, settle } from '../helpers/manual-clock.ts';
import { closedPort, startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { type GeneratorOptions } from './generators.ts';
import { loadApiModel, type ApiModel, type OperationSpec } from './openapi.ts';
import { assertLocalOnly, EgressError, resolveDraft, World, type ResolvedRequest } from './resolve.ts';
import { isForeignUrl, LOCAL_HOST, type Step } from './values.ts';

/**
 * Runs generated sequences against the whole app, in process (`app.inject`, no sockets), and
 * checks the properties after every request:
 * 1. never a 5xx;
 * 2. every error (4xx) is JSON in the error shape of the dialect that owns the path;
 * 3. a 4xx changes nothing: no store operation that changed something, no domain event, and the
 *    same store counts before and after (bookings, seats, ledger balances, intents, deliveries,
 *    disabled URLs, due jobs). The one allowed change: a request with a well-formed
 *    Idempotency-Key may store its 4xx answer for replay, as the idempotency design says;
 * 4. nothing is logged at error level, and no webhook is ever accepted for a host other than 127.0.0.1;
 * 5. on Redis (`createEnvironment` with a URL), the same sequence run again on memory gets the same
 *    answers, and its receiver the same webhooks step by step (`AnswerLog`, compared by the driver,
 *    test/fuzz/run.ts).
 *
 * Each sequence gets a fresh app on a manual clock with a seeded random source; the clock moves
 * only in the sequence's `advance` steps, and after every step the app is let settle (due work at
 * the current time run, webhook attempts to the local receiver finished), so what a request
 * changes is told apart from background work.
 */

/** The configuration the fuzzer runs the app with: the defaults, plus what makes runs fast and repeatable. */
export const FUZZ_ENV: Readonly<Record<string, string>> = Object.freeze({
  WEBHOOK_SECRET: 'whsec_ZnV6ei1zZWNyZXQtZm9yLXBheXNpbQ==',
  SHUTDOWN_TIMEOUT_MS: '0',
  RANDOM_SEED: '42',
  LOG_LEVEL: 'error',
  JWT_SECRET: 'fuzz-jwt-secret-0123456789abcdef',
  // Payments answer at once (the manual clock would otherwise hold them): the booking payments,
  // and /api/v2 payments, whose answer waits for their decision (V2_COMPLETE_DELAY_MS is 0 by
  // default; the `delay` scenario of X-Sim-Scenario waits DEFAULT_DELAY_DELAY_MS).
  MOCK_MIN_DELAY_MS: '0',
  MOCK_MAX_DELAY_MS: '0',
  DEFAULT_DELAY_DELAY_MS: '0',
  // Holds lapse within a sequence's clock advances.
  SEAT_HOLD_MS: '60000',
  // No rate cap: its token bucket runs on the manual clock.
  WEBHOOK_MAX_RPS: '0',
  WEBHOOK_MAX_RETRIES: '2',
  WEBHOOK_BACKOFF_MS: '500',
  WEBHOOK_TIMEOUT_MS: '2000',
  // No load shedding: on a busy machine (CI runs test files side by side) the event loop of the
  // fuzzing process lags past the 1 s threshold now and then, and a 503 OVERLOADED is the
  // service doing its job, not a bug the fuzzer looks for (test/integration/dialect-errors checks it).
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
});

export const FUZZ_USERS = ['user_fuzz_a', 'user_fuzz_b', 'user_fuzz_c'] as const;

/** Where the manual clock starts (ManualClock's default), for the tokens' expiry. */
const CLOCK_START_S = Math.floor(Date.UTC(2026, 0, 15, 12, 0, 0) / 1000);

// ── what a sequence needs, made once per process ────────────────────────────────────────────────

export interface Environment {
  config: Config;
  model: ApiModel;
  generator: GeneratorOptions;
  receiver: Receiver;
  closedPort: number;
  /** STORE=redis: the client that reads the delivery stream's group and removes each sequence's keys. */
  redis?: Redis | undefined;
  close(): Promise<void>;
}

/** A JWT signed by hand, for claims and headers a well-behaved library refuses to write. */
function handSigned(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function mintTokens(secret: string): Promise<{ valid: string[]; invalid: string[] }> {
  const key = new TextEncoder().encode(secret);
  const wrongKey = new TextEncoder().encode(`${secret}-wrong`);
  const sign = (claims: Record<string, unknown>, options: { exp?: number; nbf?: number; alg?: string; key?: Uint8Array } = {}): Promise<string> => {
    let jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt(CLOCK_START_S - 10);
    if (options.exp !== undefined) jwt = jwt.setExpirationTime(options.exp);
    if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf);
    return jwt.sign(options.key ?? key);
  };
  const later = CLOCK_START_S + 30 * 86_400;
  const valid = await Promise.all(FUZZ_USERS.map((userId) => sign({ userId }, { exp: later })));
  const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ userId: FUZZ_USERS[0], exp: later })).toString('base64url')}.`;
  const invalid = [
    await sign({ userId: FUZZ_USERS[0] }, { exp: CLOCK_START_S - 60 }),
    await sign({ userId: FUZZ_USERS[0] }, { exp: later, key: wrongKey }),
    await sign({ userId: FUZZ_USERS[0] }, { exp: later, alg: 'HS512' }),
    await sign({ userId: FUZZ_USERS[0] }, { exp: later, nbf: CLOCK_START_S + 3600 }),
    await sign({}, { exp: later }),
    await sign({ userId: '' }, { exp: later }),
    await sign({ userId: 'u'.repeat(200) }, { exp: later }),
    await sign({ userId: { id: 1 } }, { exp: later }),
    await sign({ userId: 1.5 }, { exp: later }),
    await sign({ sub: 12345 }, { exp: later }),
    await sign({ sub: FUZZ_USERS[1] }, { exp: later }),
    handSigned({ alg: 'HS256' }, { userId: FUZZ_USERS[2], exp: 'soon' }, secret),
    handSigned({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }, { userId: FUZZ_USERS[2], exp: later }, secret),
    handSigned({ alg: 'HS256' }, { userId: FUZZ_USERS[2], exp: later, nbf: 'x', iat: -1 }, secret),
    unsigned,
    'not-a-jwt',
    'a.b.c',
    '..',
  ];
  return { valid, invalid };
}

/** The receiver answers by path: `/gone` 410 (the URL gets disabled), `/fail` 500 (retried), `/redirect` 302, anything else 200. */
function receiverResponder(closed: number) {
  return (req: { url: string }) => {
    if (req.url.startsWith('/gone')) return { status: 410 };
    if (req.url.startsWith('/fail')) return { status: 500 };
    if (req.url.startsWith('/redirect')) return { status: 302, headers: { location: `http://${LOCAL_HOST}:${closed}/elsewhere` } };
    return { status: 200, body: 'ok' };
  };
}

/**
 * What every sequence shares. With `redisUrl` each sequence's app is on that Redis (STORE=redis),
 * under a key prefix of its own (removed when the sequence ends), with the shared delivery stream
 * and outbound event stream as in production; no poll of the shared schedule (the app is alone on
 * its prefix and the manual clock drives its timer, as in the suite's Redis run).
 */
export async function createEnvironment(sequenceLength: number, redisUrl?: string): Promise<Environment> {
  const config = loadConfig(redisUrl === undefined ? FUZZ_ENV : { ...FUZZ_ENV, STORE: 'redis', REDIS_URL: redisUrl, SCHEDULER_POLL_MS: '0' });
  const redis = redisUrl === undefined ? undefined : new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis?.connect();
  const probeConfig = withKeyPrefix(config, 'probe');
  const probe = await buildApp({ config: probeConfig, clock: new ManualClock(), logger: false });
  let model: ApiModel;
  try {
    await probe.ready();
    model = await loadApiModel(probe);
  } finally {
    await probe.close();
  }
  if (redis !== undefined) await removeKeys(redis, probeConfig.redis.keyPrefix);
  const port = await closedPort();
  const receiver = await startReceiver(receiverResponder(port));
  const tokens = await mintTokens(config.jwtSecret as string);
  return {
    config,
    model,
    generator: { model, bodyLimit: config.bodyLimitBytes, users: FUZZ_USERS, tokens, sequenceLength },
    receiver,
    closedPort: port,
    redis,
    close: async () => {
      await receiver.close();
      await redis?.quit();
    },
  };
}

/** The configuration with a key prefix of its own under the fuzzer's (`fuzz:<pid>:<name>:`); unchanged on memory. */
function withKeyPrefix(config: Config, name: string): Config {
  if (config.store.backend !== 'redis') return config;
  return { ...config, redis: { ...config.redis, keyPrefix: `${config.redis.keyPrefix}fuzz:${process.pid}:${name}:` } };
}

/** Removes every key under `prefix` (a finished sequence's, its namespaces' included); how many there were. */
async function removeKeys(redis: Redis, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) removed += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return removed;
}

// ── instrumented stores: every store operation that changed something ───────────────────────────

type Judge = (result: unknown) => boolean;
const always: Judge = () => true;
const ok: Judge = (r) => (r as { ok?: boolean } | undefined)?.ok === true;
const defined: Judge = (r) => r !== undefined && r !== null;
const positive: Judge = (r) => typeof r === 'number' && r > 0;
const nonEmpty: Judge = (r) => Array.isArray(r) && r.length > 0;
const kindIs =
  (...kinds: string[]): Judge =>
  (r) =>
    kinds.includes((r as { kind?: string } | undefined)?.kind ?? '');

/**
 * For each port, the operations that may change state, and how to tell from the result that one
 * did (a guarded transition that found the wrong state changed nothing). Operations not listed are reads.
 */
export const EFFECTS: { [S in keyof Stores]: Record<string, Judge> } = {
  // insertScheduled and beginScheduled: the Redis adapters' insert with its job (one script).
  intents: { insert: ok, insertScheduled: ok, decide: ok, transition: ok, refund: kindIs('refunded'), sweep: positive },
  idempotency: { begin: kindIs('started'), complete: always, release: always, sweep: positive },
  bookings: {
    insert: ok,
    beginPayment: kindIs('started', 'expired_now'),
    recordPayment: defined,
    abortPayment: always,
    transition: ok,
    expireIfDue: defined,
    markEventProcessed: (r) => (r as { first?: boolean } | undefined)?.first === true,
    sweep: nonEmpty,
  },
  seats: { hold: kindIs('held'), release: nonEmpty, reserve: nonEmpty },
  ledger: { post: always, removeReference: positive },
  // insertOnceAndQueue: the Redis log's insert with its queueing (one script, the shared queue's accept); `queue_full` logs it failed.
  // updateScheduled: the Redis log's change with its retry job (one script).
  deliveries: { insert: ok, insertOnce: ok, insertOnceAndQueue: kindIs('queued', 'queue_full'), update: defined, updateScheduled: defined, sweep: positive },
  disabledUrls: { disable: always, enable: (r) => r === true },
  scheduler: { schedule: always, cancel: (r) => r === true, claimDue: nonEmpty, complete: always },
  v2Payments: { begin: kindIs('created'), beginScheduled: kindIs('created'), decide: ok, complete: ok, sweep: positive },
  fluxpay: {
    createOrder: kindIs('created'),
    cancelOrder: kindIs('cancelled'),
    createPayment: kindIs('created'),
    confirmPayment: kindIs('approved', 'failed'),
    chargeCredits: kindIs('charged'),
    useCredits: kindIs('deducted'),
    refundCredits: kindIs('refunded'),
    startSaga: kindIs('started'),
    runSagaStep: kindIs('done', 'failed'),
    // `final` records the event (a repeat of it is then a duplicate).
    resolveSaga: kindIs('resolved', 'final'),
    completeOrder: kindIs('completed'),
    markPublished: positive,
    sweep: positive,
  },
  fluxpaySubscriptions: { add: kindIs('created'), remove: (r) => r === true },
  billing: { create: kindIs('created'), update: kindIs('updated'), sweep: positive },
  waitingRooms: { putRoom: kindIs('created', 'updated'), createRoom: kindIs('created'), declareRoom: kindIs('created', 'updated'), enter: kindIs('entered'), useToken: kindIs('used'), releaseToken: (r) => (r as { released?: boolean } | undefined)?.released === true, sweep: positive },
  // Every request a FluxPay route receives counts against its client's limit, whatever the answer
  // (a refused request is still traffic, as with any gateway's limiter): a hit is not a change of state.
  rateLimits: { reset: always, sweep: positive },
  // A claim counts the match even when the rule does not apply: any claim changed a counter.
  faultRules: { create: ok, declare: kindIs('applied'), setEnabled: defined, delete: (r) => r === true, deleteAll: positive, claimHit: (r) => (r as { kind?: string } | undefined)?.kind !== 'gone' },
  revokedSessions: { revoke: always, sweep: positive },
  // reset: the console's successful login ends its address' window of failures.
  consoleLogins: { reset: always, sweep: positive },
};

export interface Change {
  store: string;
  operation: string;
  key: string;
}

function describeKey(args: unknown[]): string {
  const first = args[0];
  if (typeof first === 'string') return first;
  if (first !== null && typeof first === 'object') {
    const o = first as Record<string, unknown>;
    return String(o.id ?? (o.kind !== undefined ? `${String(o.kind)}:${String(o.key)}` : (o.reference ?? '')));
  }
  return '';
}

function instrument(stores: Stores, onChange: (change: Change, args: unknown[]) => void): Stores {
  const out: Partial<Record<keyof Stores, unknown>> = {};
  for (const name of Object.keys(stores) as Array<keyof Stores>) {
    const store = stores[name] as unknown as Record<string | symbol, unknown>;
    const effects = EFFECTS[name] as Record<string, Judge> | undefined;
    out[name] = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const judge = typeof prop === 'string' ? effects?.[prop] : undefined;
        const fn = value as (...args: unknown[]) => unknown;
        if (judge === undefined) return fn.bind(target);
        return (...args: unknown[]) =>
          Promise.resolve(fn.apply(target, args)).then((result) => {
            if (judge(result)) onChange({ store: name, operation: String(prop), key: describeKey(args) }, args);
            return result;
          });
      },
    });
  }
  return out as Stores;
}

// ── the error shapes, per dialect ───────────────────────────────────────────────────────────────

export type DialectName = 'native' | 'bookings' | 'payment-service' | 'payment-server-v2' | 'fluxpay';

const OWNERS: Array<{ prefix: string; dialect: DialectName }> = [
  ...nativeErrors.prefixes.map((prefix) => ({ prefix, dialect: 'native' as const })),
  ...bookingsErrors.prefixes.map((prefix) => ({ prefix, dialect: 'bookings' as const })),
  ...paymentServiceErrors.prefixes.map((prefix) => ({ prefix, dialect: 'payment-service' as const })),
  ...v2Errors.prefixes.map((prefix) => ({ prefix, dialect: 'payment-server-v2' as const })),
  ...fluxpayErrors.prefixes.map((prefix) => ({ prefix, dialect: 'fluxpay' as const })),
].sort((a, b) => b.prefix.length - a.prefix.length);

/** The dialect that owns a path: the longest prefix at a segment boundary; the native shape for the rest. */
export function dialectOf(path: string): DialectName {
  // FluxPay's own paths under the payment service's /api/v1/payments win over any prefix.
  if ((fluxpayErrors.paths ?? []).some((pattern) => pattern.test(path))) return 'fluxpay';
  for (const { prefix, dialect } of OWNERS) if (path === prefix || (path.startsWith(prefix) && path[prefix.length] === '/')) return dialect;
  return 'native';
}

/**
 * The path the router sees for a URL `inject` is given: normalised by the WHATWG URL parser, then
 * percent-decoded as the router does (`/payment%73/execute` is `/payments/execute`; escapes of
 * reserved characters such as %2F stay).
 */
export function pathSeen(url: string): string {
  let path: string;
  try {
    // Prefixed, not resolved against a base: `//x/../api` is a path (inject answers for `//api`), not a host.
    path = new URL(url.startsWith('/') ? `http://localhost${url}` : url, 'http://localhost').pathname;
  } catch {
    path = url.split('?', 1)[0] as string;
  }
  try {
    return decodeURI(path);
  } catch {
    return path;
  }
}

const CODE = /^[A-Z][A-Z0-9_]*$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const KOREAN_MESSAGES = new Set<string>(Object.values(MESSAGES));
/** What no error message may show: stack frames, file paths. */
const INTERNALS = /\n\s+at |node_modules|\/src\/|\.ts:\d+/;

function keysAre(value: Record<string, unknown>, required: string[], optional: string[] = []): string | undefined {
  const keys = Object.keys(value);
  const missing = required.filter((k) => !keys.includes(k));
  const extra = keys.filter((k) => !required.includes(k) && !optional.includes(k));
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  if (extra.length > 0) return `unexpected ${extra.join(', ')}`;
  return undefined;
}

/** FastAPI's `loc` starts with where the problem is. */
const FASTAPI_LOCATIONS = new Set(['body', 'query', 'header', 'path']);
const PYDANTIC_TYPE = /^[a-z][a-z_]*$/;

/** Why one item of FastAPI's validation `detail` is not one, or undefined when it is. */
function fastApiIssueProblem(item: unknown): string | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return 'an item is not an object';
  const i = item as Record<string, unknown>;
  const k = keysAre(i, ['type', 'loc', 'msg', 'input'], ['ctx']);
  if (k !== undefined) return `item ${k}`;
  if (typeof i.type !== 'string' || !PYDANTIC_TYPE.test(i.type)) return `bad type ${JSON.stringify(i.type)}`;
  if (!Array.isArray(i.loc) || i.loc.length === 0 || !FASTAPI_LOCATIONS.has(i.loc[0] as string)) return `bad loc ${JSON.stringify(i.loc)}`;
  if (!i.loc.every((part) => typeof part === 'string' || Number.isInteger(part))) return `bad loc ${JSON.stringify(i.loc)}`;
  if (typeof i.msg !== 'string' || i.msg.length === 0 || INTERNALS.test(i.msg)) return 'bad msg';
  if (i.ctx !== undefined && (i.ctx === null || typeof i.ctx !== 'object' || Array.isArray(i.ctx))) return 'ctx is not an object';
  return undefined;
}

/** Why `body` is not an error in `dialect`'s shape (answered with `status`, when given), or undefined when it is. */
export function shapeProblem(dialect: DialectName, body: unknown, status?: number): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'not a JSON object';
  const b = body as Record<string, unknown>;
  switch (dialect) {
    case 'native': {
      const top = keysAre(b, ['error']);
      if (top !== undefined) return `native envelope: ${top}`;
      const e = b.error as Record<string, unknown>;
      if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'native envelope: error is not an object';
      const inner = keysAre(e, ['code', 'message', 'trace_id'], ['details']);
      if (inner !== undefined) return `native envelope: error ${inner}`;
      if (typeof e.code !== 'string' || !CODE.test(e.code)) return `native envelope: bad code ${JSON.stringify(e.code)}`;
      if (typeof e.message !== 'string' || e.message.length === 0) return 'native envelope: empty message';
      if (INTERNALS.test(e.message)) return 'native envelope: the message shows internals';
      if (typeof e.trace_id !== 'string' || !TRACE_ID.test(e.trace_id)) return `native envelope: bad trace_id ${JSON.stringify(e.trace_id)}`;
      if (e.details !== undefined) {
        if (!Array.isArray(e.details) || e.details.length === 0) return 'native envelope: details is not a non-empty array';
        for (const d of e.details as unknown[]) {
          if (d === null || typeof d !== 'object') return 'native envelope: a detail is not an object';
          const dd = d as Record<string, unknown>;
          const k = keysAre(dd, ['field', 'rule', 'message'], ['in']);
          if (k !== undefined) return `native envelope: detail ${k}`;
          if (typeof dd.field !== 'string' || typeof dd.rule !== 'string' || typeof dd.message !== 'string' || (dd.in !== undefined && typeof dd.in !== 'string')) return 'native envelope: a detail field is not a string';
        }
      }
      return undefined;
    }
    case 'bookings': {
      const k = keysAre(b, ['error', 'code']);
      if (k !== undefined) return `bookings shape: ${k}`;
      if (typeof b.error !== 'string' || b.error.length === 0) return 'bookings shape: error is not a non-empty string';
      if (INTERNALS.test(b.error)) return 'bookings shape: the message shows internals';
      if (typeof b.code !== 'string' || !CODE.test(b.code)) return `bookings shape: bad code ${JSON.stringify(b.code)}`;
      return undefined;
    }
    case 'payment-service': {
      const k = keysAre(b, ['error']);
      if (k !== undefined) return `payment-service shape: ${k}`;
      if (typeof b.error !== 'string') return 'payment-service shape: error is not a string';
      if (!KOREAN_MESSAGES.has(b.error) && !b.error.startsWith(`${MESSAGES.unknownField}: `) && !b.error.startsWith(`${MESSAGES.badHeader}: `) && !/^요청 본문의 JSON 형식이 올바르지 않습니다 \(\d+행 \d+열, 위치 \d+\)\.$/.test(b.error)) return `payment-service shape: not one of the service's messages: ${JSON.stringify(b.error)}`;
      return undefined;
    }
    case 'payment-server-v2': {
      // FastAPI's: {"detail": "<message>"}, or for a 422 {"detail": [{type, loc, msg, input, ctx?}, …]}.
      const k = keysAre(b, ['detail']);
      if (k !== undefined) return `FastAPI shape: ${k}`;
      if (typeof b.detail === 'string') {
        if (status === 422) return 'FastAPI shape: a 422 whose detail is not a list';
        if (b.detail.length === 0) return 'FastAPI shape: empty detail';
        if (INTERNALS.test(b.detail)) return 'FastAPI shape: the detail shows internals';
        return undefined;
      }
      if (!Array.isArray(b.detail) || b.detail.length === 0) return 'FastAPI shape: detail is neither a string nor a non-empty list';
      if (status !== undefined && status !== 422) return `FastAPI shape: a ${status} with a list of validation problems`;
      for (const item of b.detail as unknown[]) {
        const problem = fastApiIssueProblem(item);
        if (problem !== undefined) return `FastAPI shape: ${problem}`;
      }
      return undefined;
    }
    case 'fluxpay': {
      // Document 002's wrapper: {"isSuccess": false, "code", "message", "result": null | {errors: [{field, reason}]}}.
      const k = keysAre(b, ['isSuccess', 'code', 'message', 'result']);
      if (k !== undefined) return `FluxPay wrapper: ${k}`;
      if (b.isSuccess !== false) return 'FluxPay wrapper: isSuccess is not false';
      if (typeof b.code !== 'string' || !/^(PAY_00[1-5]|WAIT_00[12]|SUB_00[1-3]|COMMON_[1-5]\d\d)$/.test(b.code)) return `FluxPay wrapper: bad code ${JSON.stringify(b.code)}`;
      if (status !== undefined && b.code.startsWith('COMMON_') && b.code !== `COMMON_${status}`) return `FluxPay wrapper: ${b.code} with status ${status}`;
      if (typeof b.message !== 'string' || b.message.length === 0 || INTERNALS.test(b.message)) return 'FluxPay wrapper: bad message';
      if (b.code === 'COMMON_400') {
        const r = b.result as Record<string, unknown> | null;
        if (r === null || typeof r !== 'object' || !Array.isArray(r.errors) || r.errors.length === 0) return 'FluxPay wrapper: a COMMON_400 without result.errors';
        for (const e of r.errors as unknown[]) {
          const ee = e as Record<string, unknown>;
          if (ee === null || typeof ee !== 'object' || keysAre(ee, ['field', 'reason']) !== undefined || typeof ee.field !== 'string' || typeof ee.reason !== 'string') return 'FluxPay wrapper: a bad item of result.errors';
        }
      } else if (b.result !== null) return 'FluxPay wrapper: result is not null';
      return undefined;
    }
  }
}

// ── statistics ──────────────────────────────────────────────────────────────────────────────────

export class Stats {
  requests = 0;
  advances = 0;
  sequences = 0;
  readonly byStatus = new Map<number, number>();
  readonly byRoute = new Map<string, Map<number, number>>();
  readonly byTag = new Map<string, number>();
  /** Statuses answered that the operation does not document (reported, not a failure). */
  readonly undocumented = new Map<string, Set<number>>();
  /** Requests whose 4xx left an idempotency record (the allowed change). */
  idempotentFourXx = 0;
  /** STORE=redis: the keys the finished sequences left, removed with them. */
  redisKeysRemoved = 0;
  /** STORE=redis: answers found equal to those of the same sequences on memory. */
  comparedWithMemory = 0;
  /** On Redis: the webhooks the receiver got, each compared with the one memory's run brought. */
  webhooksCompared = 0;

  record(route: string, status: number, tags: readonly string[]): void {
    this.requests++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    let statuses = this.byRoute.get(route);
    if (statuses === undefined) {
      statuses = new Map();
      this.byRoute.set(route, statuses);
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    for (const tag of tags.length === 0 ? ['(valid-ish)'] : new Set(tags)) this.byTag.set(tag, (this.byTag.get(tag) ?? 0) + 1);
  }
}

// ── one sequence ────────────────────────────────────────────────────────────────────────────────

export interface Failure {
  /** The seed and fast-check path to replay it (set by the runner). */
  seed?: number;
  path?: string;
  step: number;
  route: string;
  request: { method: string; url: string; headers: Record<string, string>; payload: string };
  status: number;
  response: string;
  violations: string[];
  tags: string[];
  /** Error-level log lines of the app around the failure. */
  log: string[];
}

export class FuzzViolation extends Error {
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(`${failure.violations.join('; ')} — ${failure.request.method} ${truncate(failure.request.url, 200)} → ${failure.status}`);
    this.name = 'FuzzViolation';
    this.failure = failure;
  }
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[${text.length} chars]`;
}

interface Snapshot {
  [part: string]: string | number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const SETTLE_LIMIT_MS = 10_000;

/** Sequences started by this process (each one's key prefix on Redis). */
let sequences = 0;

/** The app of one sequence, its clock and what the instruments saw. */
class Target {
  readonly app: FastifyInstance;
  readonly clock: ManualClock;
  readonly raw: Stores;
  readonly env: Environment;
  readonly world: World;
  /** The app's configuration: the environment's, with this sequence's key prefix on Redis. */
  readonly config: Config;
  changes: Array<Change & { args: unknown[] }> = [];
  events: DomainEvent[] = [];
  errors: string[] = [];
  egress: string[] = [];
  recording = false;
  readonly jobKinds = new Set<string>();

  private constructor(app: FastifyInstance, clock: ManualClock, raw: Stores, env: Environment, world: World, config: Config) {
    this.config = config;
    this.app = app;
    this.clock = clock;
    this.raw = raw;
    this.env = env;
    this.world = world;
  }

  static async start(env: Environment): Promise<Target> {
    sequences += 1;
    const config = withKeyPrefix(env.config, String(sequences));
    // Over Redis a scheduler run takes round trips: `advance` waits for each run to end.
    const clock = new ManualClock(undefined, { awaitWork: env.redis !== undefined });
    const holder: { target?: Target; raw?: Stores } = {};
    const wrapStores = (raw: Stores): Stores => {
      holder.raw = raw;
      return instrument(raw, (change, args) => {
        const { target } = holder;
        if (change.store === 'scheduler' && change.operation === 'schedule') target?.jobKinds.add(String((args[0] as { kind?: unknown }).kind));
        // The Redis adapters insert an intent or a /api/v2 payment with its job in one script.
        if (change.operation === 'insertScheduled' || change.operation === 'beginScheduled') target?.jobKinds.add(String((args[1] as { kind?: unknown }).kind));
        // The Redis log marks a delivery retrying with its retry job in one script.
        if (change.store === 'deliveries' && change.operation === 'updateScheduled') target?.jobKinds.add(String((args[2] as { kind?: unknown }).kind));
        if (target?.recording === true) target.changes.push({ ...change, args });
      });
    };
    const logger = pino(
      { level: 'error' },
      {
        write: (line: string) => {
          holder.target?.errors.push(line);
        },
      },
    );
    const app = await buildApp({ config, clock, random: createRandom(config.randomSeed), logger, wrapStores });
    const world = new World({ receiver: env.receiver.port, closed: env.closedPort }, { perf: config.bookings.performances.map((p) => p.id), user: FUZZ_USERS, plan: [...config.fluxpay.policy.plans.keys()], room: [...config.fluxpay.policy.waitingRooms.keys()] });
    if (holder.raw === undefined) throw new Error('the app did not take the fuzzer’s instruments');
    const t = new Target(app, clock, holder.raw, env, world, config);
    holder.target = t;
    app.core.bus.subscribe((event) => {
      if (t.recording) t.events.push(event);
      if (event.type === 'webhook.accepted' && isForeignUrl(event.delivery.url)) t.egress.push(event.delivery.url);
    });
    await app.ready();
    return t;
  }

  /** Closes the app; on Redis, removes its keys and answers how many there were. */
  async close(): Promise<number> {
    await this.app.close();
    return this.env.redis === undefined ? 0 : removeKeys(this.env.redis, this.config.redis.keyPrefix);
  }

  /**
   * STORE=redis: whether the shared delivery stream has nothing left for the dispatcher: its group
   * has read up to the stream's last entry and holds none unacknowledged. (The process-local counts
   * miss an entry appended and not yet read. Not the group's `lag`, which Redis may leave unknown.)
   */
  async #streamIdle(): Promise<boolean> {
    const { redis } = this.env;
    if (redis === undefined) return true;
    const key = `${this.config.redis.keyPrefix}whq`;
    const [[groupsError, groups], [streamError, stream]] = (await redis.multi().xinfo('GROUPS', key).xinfo('STREAM', key).exec()) as [[Error | null, unknown[][]], [Error | null, unknown[]]];
    if (groupsError !== null || streamError !== null) throw groupsError ?? streamError;
    const fields = (flat: unknown[]): Record<string, unknown> => Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [String(flat[2 * i]), flat[2 * i + 1]]));
    const group = groups.map(fields).find((g) => g.name === DELIVERY_GROUP);
    if (group === undefined) throw new Error(`the delivery stream has no group ${DELIVERY_GROUP}`);
    return group.pending === 0 && group['last-delivered-id'] === fields(stream)['last-generated-id'];
  }

  /**
   * Moves the clock `ms` on, letting the webhook attempts each timer sets off end before the next
   * timer fires (as they would in real time, a millisecond or so after their job): a failed
   * attempt schedules its retry from the time it ended, so on a clock that jumped on meanwhile
   * the retry would fall due later, by as much as the I/O took in real time.
   */
  async advance(ms: number): Promise<void> {
    await this.clock.advance(ms, () => this.quiesce(false));
    await this.quiesce();
  }

  /**
   * Runs what is due at the current time (unless `runDue` is false) and waits for the FluxPay
   * outbox relay's run (on Redis it takes round trips, and its webhooks are accepted only at its
   * end) and for webhook attempts in flight (real I/O to the local receiver).
   */
  async quiesce(runDue = true): Promise<void> {
    const { dispatcher } = this.app.webhooks;
    const { relay } = this.app.fluxpay;
    const deadline = Date.now() + SETTLE_LIMIT_MS;
    let idleTurns = 0;
    while (idleTurns < 2) {
      if (runDue) await this.clock.advance(0);
      else await settle();
      const idle = !relay.running && dispatcher.inFlight === 0 && dispatcher.queueDepth === 0 && dispatcher.accepting === 0 && (await this.#streamIdle());
      idleTurns = idle ? idleTurns + 1 : 0;
      if (!idle) {
        if (Date.now() > deadline) throw new Error(`the app did not settle within ${SETTLE_LIMIT_MS} ms (webhooks in flight: ${dispatcher.inFlight}, queued: ${dispatcher.queueDepth}, the outbox relay ${relay.running ? 'running' : 'idle'})`);
        await sleep(1);
      }
    }
  }

  async snapshot(): Promise<Snapshot> {
    const s = this.raw;
    const snap: Snapshot = {
      intents: (await s.intents.stats()).size,
      idempotency: (await s.idempotency.stats()).size,
      bookings: JSON.stringify(await s.bookings.counts()),
      bookingsStored: (await s.bookings.stats()).size,
      seats: JSON.stringify(await s.seats.counts()),
      ledger: JSON.stringify(await s.ledger.balances()),
      imbalance: await s.ledger.imbalance(),
      deliveries: (await s.deliveries.stats()).size,
      disabledUrls: (await s.disabledUrls.list()).length,
      v2Payments: JSON.stringify(await s.v2Payments.counts()),
      v2Stored: (await s.v2Payments.stats()).size,
      fluxpayOrders: (await s.fluxpay.stats()).size,
    };
    for (const kind of this.jobKinds) snap[`jobs:${kind}`] = await s.scheduler.count(kind);
    return snap;
  }
}

const WELL_FORMED_KEY = /^[\x21-\x7E]{1,255}$/;

function routeOf(model: ApiModel, opIndex: number): OperationSpec | undefined {
  return opIndex < 0 ? undefined : model.operations[opIndex];
}

export interface SequenceResult {
  requests: number;
  failure?: Failure | undefined;
}

/** Runs one sequence on a fresh app; stops at the first step that breaks a property. */
export async function runSequence(env: Environment, steps: readonly Step[], stats: Stats, onRequest?: () => void, observe?: (answer: Observed) => void): Promise<SequenceResult> {
  const target = await Target.start(env);
  let requests = 0;
  // The webhooks the receiver got since the last step observed: every one goes to a step, a late
  // one to the step after (where it differs from a run that had it in time).
  let webhooksSeen = 0;
  const newWebhooks = (): string[] => {
    const fresh = env.receiver.requests.slice(webhooksSeen).map((request) => webhookText(request, target.app.webhooks.signers));
    webhooksSeen += fresh.length;
    return fresh;
  };
  try {
    stats.sequences++;
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index] as Step;
      if (step.kind === 'advance') {
        stats.advances++;
        target.errors = [];
        await target.advance(step.ms);
        const failure = backgroundFailure(target, index, step.ms);
        if (failure !== undefined) return { requests, failure };
        observe?.({ step: index, route: `(clock +${step.ms} ms)`, tags: [], request: NO_REQUEST, status: 0, headers: {}, body: '', webhooks: newWebhooks() });
        continue;
      }
      const { draft } = step;
      const op = routeOf(env.model, draft.op);
      const route = op === undefined ? '(no such route)' : op.key;
      const request = resolveDraft(draft, target.world, env.config.bodyLimitBytes);
      assertLocalOnly(request);

      const before = await target.snapshot();
      target.changes = [];
      target.events = [];
      target.errors = [];
      target.recording = true;
      let response;
      try {
        response = await target.app.inject({ method: request.method as 'GET', url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }) });
        await target.quiesce();
      } catch (error) {
        target.recording = false;
        if (error instanceof EgressError) throw error;
        return { requests, failure: failureOf(index, route, request, 0, `inject or settling threw: ${String((error as Error).stack ?? error)}`, [`the request could not be run: ${(error as Error).message}`], draft.tags, target.errors) };
      }
      target.recording = false;
      observe?.({ step: index, route, tags: draft.tags, request, status: response.statusCode, headers: response.headers, body: response.body, webhooks: newWebhooks() });
      const after = await target.snapshot();
      requests++;
      const status = response.statusCode;
      stats.record(route, status, draft.tags);
      const undocumented = op !== undefined && !op.responses.includes(String(status)) && !op.responses.includes(`${String(status)[0]}XX`) && !op.responses.includes('default');
      if (undocumented) {
        let set = stats.undocumented.get(route);
        if (set === undefined) stats.undocumented.set(route, (set = new Set()));
        set.add(status);
      }
      onRequest?.();

      const violations: string[] = [];
      // Every answer is in the OpenAPI document (2026-12-07: a user test validating answers against
      // it found statuses no operation listed). Not the operation's: what the document's description
      // says of every path (a 405 for another method), a path made another (404, 405), and a body
      // sent to an operation that takes none (413, 415).
      if (undocumented && !documentedElsewhere(status, draft.tags, op.body !== undefined)) violations.push(`a ${status} the OpenAPI document does not list for ${route}`);
      const contentType = String(response.headers['content-type'] ?? '');
      if (status >= 500) violations.push(`answered ${status}`);
      if (status >= 400 && request.method !== 'HEAD') {
        const dialect = dialectOf(pathSeen(request.url));
        if (!contentType.startsWith('application/json')) violations.push(`a ${status} with content-type ${JSON.stringify(contentType)}, not JSON`);
        let body: unknown;
        try {
          body = JSON.parse(response.body);
        } catch {
          violations.push(`a ${status} whose body is not JSON`);
        }
        if (body !== undefined) {
          const problem = shapeProblem(dialect, body, status);
          if (problem !== undefined) violations.push(`a ${status} not in the ${dialect} error shape (${problem})`);
        }
        if (status === 405 && response.headers.allow === undefined) violations.push('a 405 without Allow');
      }
      if (status >= 400 && status < 500) {
        const key = request.headers['idempotency-key'];
        const keyed = typeof key === 'string' && WELL_FORMED_KEY.test(key);
        // A declined FluxPay confirm (402 PAY_002) is documented to change state: the payment is FAILED, with its payment.failed event.
        const declined = status === 402 && dialectOf(pathSeen(request.url)) === 'fluxpay';
        // An admission token the order guard used and gave back (the order was then refused) is no change: the pair cancels out.
        const givenBack = new Set(target.changes.filter((c) => c.store === 'waitingRooms' && c.operation === 'releaseToken').map((c) => c.args[1]));
        const cancelled = (c: Change & { args: unknown[] }) => c.store === 'waitingRooms' && ((c.operation === 'useToken' && givenBack.has(c.args[2])) || c.operation === 'releaseToken');
        // A declined subscription charge (402 on /api/v1/subscriptions…) is documented to leave its
        // record: the charge's order CANCELLED and its payment FAILED, their events out to the
        // subscribers. Nothing of the billing store may change (no subscription, no invoice).
        const declinedCharge = declined && pathSeen(request.url).startsWith('/api/v1/subscriptions');
        const chargeRecord = (c: Change) => declinedCharge && c.store === 'fluxpay';
        // The events a declined payment publishes (FluxPay's outbox relay, waited for as the step
        // settles: its events marked published) go out to the webhook subscribers: the deliveries
        // of those events, their updates and retry jobs, and the URL of one a subscriber answered
        // 410 disabled. Nothing else of the webhooks' stores.
        const published = new Set(declined ? target.events.flatMap((e) => (e.type === 'fluxpay.event' ? [e.event.eventId] : [])) : []);
        const declinedDeliveries = new Set<string>();
        const declinedUrls = new Set<string>();
        for (const c of target.changes) {
          const delivery = c.args[0] as { id?: unknown; eventId?: unknown; url?: unknown } | undefined;
          if (c.store === 'deliveries' && c.operation.startsWith('insert') && published.has(String(delivery?.eventId))) {
            declinedDeliveries.add(String(delivery?.id));
            declinedUrls.add(String(delivery?.url));
          }
        }
        const declinedWebhook = (c: Change & { args: unknown[] }): boolean => {
          if (!declined) return false;
          if (c.store === 'fluxpay') return c.operation === 'markPublished' && (c.args[0] as readonly string[]).every((id) => published.has(id));
          if (c.store === 'deliveries') return declinedDeliveries.has(String(c.operation.startsWith('insert') ? (c.args[0] as { id?: unknown }).id : c.operation.startsWith('update') ? c.args[0] : undefined));
          if (c.store === 'disabledUrls') return c.operation === 'disable' && declinedUrls.has(String(c.args[0]));
          return c.store === 'scheduler' && c.operation === 'schedule' && String((c.args[0] as { kind?: unknown }).kind) === RETRY_JOB && declinedDeliveries.has(String((c.args[0] as { key?: unknown }).key));
        };
        // A job scheduled and cancelled again within the request (armed before a step that then
        // refused: a booking's expiry before a sold-out hold, a subscription's due work and its
        // charge's guard before a declined charge) is no change: the pair cancels out.
        // Paired in call order only: a schedule, then a cancel of that job (a job that existed before
        // and was cancelled, or moved, stays a change).
        const jobOf = (c: Change & { args: unknown[] }) => (c.operation === 'schedule' ? c.key : `${String(c.args[0])}:${String(c.args[1])}`);
        const undone = new Set<Change>();
        const open = new Map<string, Change>();
        for (const c of target.changes) {
          if (c.store !== 'scheduler') continue;
          if (c.operation === 'schedule') open.set(jobOf(c), c);
          else if (c.operation === 'cancel') {
            const scheduled = open.get(jobOf(c));
            if (scheduled !== undefined) {
              undone.add(scheduled).add(c);
              open.delete(jobOf(c));
            }
          }
        }
        const undoneJob = (c: Change) => undone.has(c);
        const changes = target.changes.filter((c) => !(keyed && c.store === 'idempotency') && !(declined && c.store === 'fluxpay' && c.operation === 'confirmPayment') && !cancelled(c) && !chargeRecord(c) && !declinedWebhook(c) && !undoneJob(c));
        if (keyed && target.changes.some((c) => c.store === 'idempotency' && c.operation === 'complete')) stats.idempotentFourXx++;
        if (changes.length > 0) violations.push(`a ${status} changed state: ${changes.map((c) => `${c.store}.${c.operation}(${c.key})`).join(', ')}`);
        const declinedEvent = (e: DomainEvent) => declined && (e.type === 'fluxpay.event' ? published.has(e.event.eventId) : e.type.startsWith('webhook.') && 'delivery' in e && declinedDeliveries.has(e.delivery.id));
        const events = target.events.filter((e) => !(declinedCharge && e.type.startsWith('fluxpay.')) && !declinedEvent(e));
        if (events.length > 0) violations.push(`a ${status} published ${events.map((e) => e.type).join(', ')}`);
        const chargeCount = (k: string) => (declinedCharge && k === 'fluxpayOrders') || (declined && (k === 'deliveries' || k === 'disabledUrls' || k.startsWith('jobs:webhook.')));
        // A kind of job first seen in this request has no count before it: none.
        const counted = (snap: Record<string, unknown>, k: string) => (k.startsWith('jobs:') ? (snap[k] ?? 0) : snap[k]);
        const differs = Object.keys({ ...before, ...after }).filter((k) => counted(before, k) !== counted(after, k) && !(k === 'idempotency' && keyed && Number(after[k]) - Number(before[k]) <= 1 && Number(after[k]) >= Number(before[k])) && !chargeCount(k));
        if (differs.length > 0) violations.push(`a ${status} changed ${differs.map((k) => `${k} ${String(before[k])} → ${String(after[k])}`).join(', ')}`);
      }
      if (status < 400 && contentType.startsWith('application/json') && request.method !== 'HEAD') {
        try {
          target.world.harvest(JSON.parse(response.body));
        } catch {
          violations.push(`a ${status} labelled JSON whose body is not JSON`);
        }
      }
      const nextCursor = response.headers['x-next-cursor'];
      if (typeof nextCursor === 'string') target.world.harvest(nextCursor);
      if (target.errors.length > 0) violations.push(`the app logged ${target.errors.length} error(s): ${target.errors.map((l) => truncate(messageOf(l), 300)).join(' | ')}`);
      if (target.egress.length > 0) violations.push(`a webhook was accepted for a host other than ${LOCAL_HOST}: ${target.egress.join(', ')}`);
      if (violations.length > 0) return { requests, failure: failureOf(index, route, request, status, response.body, violations, draft.tags, target.errors) };
    }
    // Webhooks that came in after the last step was observed (none when every step settled in time).
    observe?.({ step: steps.length, route: '(after the last step)', tags: [], request: NO_REQUEST, status: 0, headers: {}, body: '', webhooks: newWebhooks() });
    return { requests };
  } finally {
    stats.redisKeysRemoved += await target.close();
    // The receiver keeps what it got, for tests that wait on it; the fuzzer reads a step's share as
    // the step ends (for the comparison), and 200,000 requests' worth of webhooks would fill the heap.
    env.receiver.requests.length = 0;
  }
}

/** The request of a step that sent none (a clock step). */
/** An answer the operation need not list: see the check in `runSequence`. */
function documentedElsewhere(status: number, tags: readonly string[], takesBody: boolean): boolean {
  if (tags.some((t) => t === 'method' || t === 'path.shape' || t === 'unknown-route')) return true;
  if (status === 405) return true;
  if (status === 404 && tags.includes('path.param')) return true;
  return (status === 413 || status === 415) && !takesBody;
}

export const NO_REQUEST: ResolvedRequest = { method: '-', url: '-', headers: {}, payload: undefined };

function backgroundFailure(target: Target, index: number, ms: number): Failure | undefined {
  const violations: string[] = [];
  if (target.errors.length > 0) violations.push(`the app logged ${target.errors.length} error(s) while the clock moved ${ms} ms: ${target.errors.map((l) => truncate(messageOf(l), 300)).join(' | ')}`);
  if (target.egress.length > 0) violations.push(`a webhook was accepted for a host other than ${LOCAL_HOST}: ${target.egress.join(', ')}`);
  if (violations.length === 0) return undefined;
  return failureOf(index, `(clock +${ms} ms)`, NO_REQUEST, 0, '', violations, [], target.errors);
}

function messageOf(line: string): string {
  try {
    const parsed = JSON.parse(line) as { msg?: string; err?: { message?: string; stack?: string } };
    return `${parsed.msg ?? ''}${parsed.err?.message === undefined ? '' : `: ${parsed.err.message}`}`;
  } catch {
    return line;
  }
}

// ── the same sequence on both back ends ─────────────────────────────────────────────────────────

/**
 * One step of a sequence as `runSequence` saw it: its request and answer (a clock step has none:
 * method `-`, status 0), and the webhooks the receiver got while it ran and settled (`webhookText`).
 */
export interface Observed {
  step: number;
  route: string;
  tags: string[];
  request: ResolvedRequest;
  status: number;
  headers: Record<string, unknown>;
  body: string;
  webhooks: string[];
}

/** The headers that carry a webhook's signature, one per scheme. */
const SIGNATURE_HEADERS = new Set(['webhook-signature', 'x-signature', 'stripe-signature', 'x-payment-signature']);
const SCHEMES = ['standard', 'legacy', 'stripe', V2_SIGNATURE_SCHEME];
/** A W3C traceparent's random trace and span ids (its version and flags kept). */
const TRACEPARENT_IDS = /^([0-9a-f]{2}-)[0-9a-f]{32}-[0-9a-f]{16}(-[0-9a-f]{2})$/;

/**
 * One webhook as the receiver got it, for the comparison: its method, path, headers (sorted,
 * `content-length` left out) and body. A signature is an HMAC of random ids, so it cannot be
 * compared as it is: each scheme's is computed again by the app's signers from the id, time and
 * body the receiver got, and written `(verified)` when it is the one received (else as received,
 * which then differs). A `traceparent`'s ids (random) are left out.
 */
export function webhookText(request: ReceivedRequest, signers: SignerRegistry): string {
  const header = (name: string): string | undefined => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const id = header('webhook-id') ?? header('x-webhook-id') ?? header('x-payment-webhook-id') ?? '';
  const stripeSeconds = /(?:^|,)t=(\d+)/.exec(header('stripe-signature') ?? '')?.[1];
  const legacyMs = header('x-timestamp');
  const seconds = header('webhook-timestamp') ?? stripeSeconds;
  const at = legacyMs !== undefined ? Number(legacyMs) : seconds !== undefined ? Number(seconds) * 1000 : 0;
  const verified = new Set<string>();
  for (const scheme of SCHEMES) {
    if (!signers.has(scheme)) continue;
    const expected = Object.entries(signers.headers([scheme], id, request.body, at));
    if (expected.every(([name, value]) => header(name) === value)) for (const [name] of expected) if (SIGNATURE_HEADERS.has(name)) verified.add(name);
  }
  const headers = Object.keys(request.headers)
    .filter((name) => name !== 'content-length')
    .sort()
    .map((name) => `${name}: ${verified.has(name) ? '(verified)' : name === 'traceparent' ? String(header(name)).replace(TRACEPARENT_IDS, '$1<trace id>-<span id>$2') : String(header(name))}`)
    .join('\n');
  return `${request.method} ${request.url}\n${headers}\n${request.body}`;
}

/**
 * Headers not compared: the wall-clock time, the request's random id, and the body's length (the
 * body is compared, and its real-time `duration_ms` values vary in length).
 */
const UNCOMPARED_HEADERS = new Set(['date', 'x-request-id', 'content-length']);

/** The environment of `env` with the app on memory (same receiver, model and tokens): the other side of a comparison. */
export function onMemory(env: Environment): Environment {
  return { ...env, config: loadConfig(FUZZ_ENV), redis: undefined, close: () => Promise.resolve() };
}

/** A ULID (its time part, from the manual clock, kept; its random part named) or a UUID. */
const ID = /(?<![0-9A-Za-z])([0-9A-HJKMNP-TV-Z]{10})[0-9A-HJKMNP-TV-Z]{16}(?![0-9A-Za-z])|(?<![0-9A-Za-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9A-Za-z])/g;
const TRACE_ID_FIELD = /"trace_id":"[0-9a-f]{32}"/g;
/** A webhook attempt's duration: real time. */
const DURATION_FIELD = /"duration_ms":[0-9.e+-]+/g;
/** /metrics as the router takes it (a trailing slash, `/.` segments). */
const METRICS_PATH = /^\/metrics(\/\.?)*$/;
/** A webhook (`webhookText`) to one of the receiver's 410 paths. */
const GONE_WEBHOOK = /^\S+ \/gone/;

/**
 * The answers of one run of a sequence, and the webhooks each step brought (`webhookText`), written
 * so that two runs compare equal when the back ends behave alike: each id (a ULID, with or without its prefix, or a UUID) is named by the order in
 * which the run first met it, in requests and answers alike (ids are random, and a later request
 * carries the ids earlier answers gave; a ULID's time part, from the manual clock, is kept). Headers
 * are compared but `date`, `x-request-id` and `content-length`; an error's trace id and an attempt's `duration_ms` (real
 * time) are left out. The answer of /metrics is not compared (the process's own CPU and memory figures).
 * Of the webhooks the receiver's `/gone` paths got, only which URLs got at least one in the step:
 * its 410 disables the URL, and of the webhooks sent to it at once (a subscription's
 * payment.approved and order.completed) those begun before the first 410 came back reach it too;
 * which, and how many, is timing (memory's dispatcher began both at once, Redis' read the second
 * from its stream after the 410: `FUZZ_SEED=2412` of 20,000 requests, replayed as seed 2424 path 0).
 * A URL that got none, or one already disabled that got one, still differs.
 */
export class AnswerLog {
  readonly answers: Array<{ observed: Observed; text: string }> = [];
  /** Requests answered (a clock step is an entry too, for its webhooks). */
  requests = 0;
  webhooks = 0;
  readonly #names = new Map<string, string>();

  readonly observe = (observed: Observed): void => {
    const { request } = observed;
    const payload = request.payload === undefined ? '' : typeof request.payload === 'string' ? request.payload : request.payload.toString('base64');
    const metrics = METRICS_PATH.test(pathSeen(request.url).split('?', 1)[0] ?? '');
    const answer = metrics ? '(not compared)' : observed.body.replace(TRACE_ID_FIELD, '"trace_id":…').replace(DURATION_FIELD, '"duration_ms":…');
    const headers = Object.entries(observed.headers)
      .filter(([name]) => !UNCOMPARED_HEADERS.has(name))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(', ') : String(value)}`)
      .join('\n');
    const text = `${request.method} ${request.url}\n${payload}\n→ ${observed.status}\n${headers}\n${answer}`.replace(ID, (id, time: string | undefined) => {
      let name = this.#names.get(id);
      if (name === undefined) {
        name = `<id ${this.#names.size + 1}>`;
        this.#names.set(id, name);
      }
      return `${time ?? ''}${name}`;
    });
    // Webhooks of one step may arrive in any order: they are sorted by their text with the ids met
    // before named and new ones masked, and the new ids are then named in that order (so a retry
    // that keeps its event id, or a webhook-id that is its body's eventId, is seen as such). The new
    // ids of webhooks whose masked texts are alike stay `<unnamed>`: their order is the arrival's.
    const gone = [...new Set(observed.webhooks.filter((webhook) => GONE_WEBHOOK.test(webhook)).map((webhook) => webhook.split('\n', 1)[0] as string))].sort();
    const masked = observed.webhooks.filter((webhook) => !GONE_WEBHOOK.test(webhook)).map((webhook) => ({ webhook, key: webhook.replace(ID, (id, time: string | undefined) => `${time ?? ''}${this.#names.get(id) ?? '<new>'}`) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const alike = new Set(masked.filter((m, i) => masked[i - 1]?.key === m.key || masked[i + 1]?.key === m.key).map((m) => m.key));
    const webhooks = masked.map(({ webhook, key }) =>
      webhook.replace(ID, (id, time: string | undefined) => {
        let name = this.#names.get(id);
        if (name === undefined && !alike.has(key)) {
          name = `<id ${this.#names.size + 1}>`;
          this.#names.set(id, name);
        }
        return `${time ?? ''}${name ?? '<unnamed>'}`;
      }),
    );
    if (observed.request !== NO_REQUEST) this.requests++;
    for (const line of gone) webhooks.push(`${line} (one or more: which and how many are not compared, a 410 path)`);
    this.webhooks += webhooks.length;
    this.answers.push({ observed, text: webhooks.length === 0 ? text : `${text}\nwebhooks received:\n${webhooks.join('\n--\n')}` });
  };
}

/** The first request whose answer on Redis is not the one memory gave, as a failure; undefined when they all agree. */
export function firstDifference(memory: AnswerLog, redis: AnswerLog): Failure | undefined {
  for (let i = 0; i < Math.max(memory.answers.length, redis.answers.length); i++) {
    const m = memory.answers[i];
    const r = redis.answers[i];
    if (m !== undefined && r !== undefined && m.text === r.text) continue;
    const shown = r ?? m;
    if (shown === undefined) return undefined;
    const { observed } = shown;
    const [memoryShown, redisShown] = fromDifference(m?.text ?? '(no such request)', r?.text ?? '(no such request)');
    const violation = `memory and Redis answered differently:\n    memory: ${truncate(memoryShown, 1500)}\n    redis:  ${truncate(redisShown, 1500)}`;
    return failureOf(observed.step, observed.route, observed.request, observed.status, observed.body, [violation], observed.tags, []);
  }
  return undefined;
}

/** Both texts, each from a little before the first character where they differ when that is far in (a long answer with its webhooks). */
function fromDifference(a: string, b: string): [string, string] {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const from = at > 1000 ? at - 500 : 0;
  return from === 0 ? [a, b] : [`…${a.slice(from)}`, `…${b.slice(from)}`];
}

function failureOf(step: number, route: string, request: ResolvedRequest, status: number, response: string, violations: string[], tags: string[], log: string[]): Failure {
  const payload = request.payload === undefined ? '' : typeof request.payload === 'string' ? request.payload : `<bytes ${request.payload.toString('hex')}>`;
  const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, truncate(v, 300)]));
  return {
    step,
    route,
    request: { method: request.method, url: truncate(request.url, 500), headers, payload: truncate(payload, 1000) },
    status,
    response: truncate(response, 1000),
    violations,
    tags,
    log: log.map((l) => truncate(l, 4000)),
  };
}
