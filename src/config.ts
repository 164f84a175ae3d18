import { Temporal } from 'temporal-polyfill';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { envSchema } from 'env-schema';
import { Type, type Static } from 'typebox';
import { loadPolicyFile } from './adapters/fluxpay-policy-file.ts';
import { readFaultsFile } from './adapters/faults-file.ts';
import { loadPerformancesFile } from './adapters/performances-file.ts';
import type { ParsedRule } from './core/faults/validation.ts';
import type { BillingPolicy } from './core/fluxpay/policy.ts';
import { DEFAULT_MAX_CREDIT_USERS } from './core/fluxpay/ports.ts';
import { DEFAULT_REDIS_KEY_PREFIX, DEFAULT_REDIS_URL } from './adapters/redis/connection.ts';
import { readRedisTlsFiles, redisTls, RedisTlsFileError, type RedisTls } from './adapters/redis/tls-files.ts';
import { DEFAULT_PERFORMANCES, type Performance } from './core/bookings/performances.ts';
import { parseMix, type Mix } from './core/faults/mix.ts';
import { SCENARIOS, type Scenario, type ScenarioConfig } from './core/scenario.ts';
import { maskedUrl } from './http/logged-url.ts';
import { isHttpUrl } from './http/validators.ts';
import { MAX_TIME_SCALE, MIN_TIME_SCALE, scaled } from './core/time-scale.ts';
import { ruleWords, type SchemaRule } from './core/rule-words.ts';

/**
 * Configuration comes from the environment only and is validated once, at start. A bad value
 * stops the process with one line naming the variable and the rule it broke.
 * Every variable here is listed, with its default, in `.env.example` and the README.
 */

export const SIGNATURE_SCHEMES = ['standard', 'legacy', 'stripe'] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** `json`: one pino JSON line per record (for machines); `pretty`: pino-pretty's human-readable lines (for local use). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
/** The variables whose value is one of a list, and that list (for the error message). */
/** `memory`: this process's memory (the default); `redis`: one Redis shared by every replica (issue 14). */
export const STORE_BACKENDS = ['memory', 'redis'] as const;
export type StoreBackend = (typeof STORE_BACKENDS)[number];
/** The samplers the OpenTelemetry SDK for Node.js builds from OTEL_TRACES_SAMPLER (its `create-from-env`). */
const OTEL_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
const CHOICES: Readonly<Record<string, readonly string[]>> = { OTEL_TRACES_SAMPLER: OTEL_SAMPLERS, LOG_LEVEL: LOG_LEVELS, LOG_FORMAT: LOG_FORMATS, V2_DEFAULT_SCENARIO: SCENARIOS, V2_REQUIRE_AUTH: ['true', 'false'], CONSOLE_ENABLED: ['true', 'false'], FAULTS_ENABLED: ['true', 'false'], STORE: STORE_BACKENDS };
/** Variables whose value is never repeated in an error message (REDIS_URL and the OTLP endpoint may carry a password). */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['WEBHOOK_SECRET', 'WEBHOOK_SECRET_PREVIOUS', 'JWT_SECRET', 'PAYMENT_WEBHOOK_SECRET', 'SERVICE_AUTH_TOKEN', 'CONSOLE_TOKEN', 'REDIS_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT']);
/**
 * Logged-out console sessions remembered at once, each until it would have expired (a log out
 * needs a logged-in session: 100,000 in one session lifetime is far beyond any use); past it the
 * one that expires first goes, and would pass for live again until its expiry.
 */
export const CONSOLE_MAX_REVOKED_SESSIONS = 100_000;
/**
 * Client addresses whose failed console logins are counted at once, in a store of their own (not
 * FluxPay's rate-limit windows, which any client can fill with new X-Client-Id values and so
 * would reset the count); beyond it the oldest window goes first.
 */
export const CONSOLE_MAX_LOGIN_ADDRESSES = 100_000;
/** How often a scheduler on a shared store looks for work other replicas scheduled (SCHEDULER_POLL_MS unset, STORE=redis). */
export const DEFAULT_REDIS_SCHEDULER_POLL_MS = 250;
/**
 * Due jobs run at once on Redis (SCHEDULER_CONCURRENCY unset), where each job's store calls are
 * round trips: one at a time, decisions fell behind a load of creates (a backlog of 17-40 s after
 * 10 s of `make bench-cluster`). More lanes pay when Redis is far away (README "Redis far away").
 */
export const DEFAULT_REDIS_SCHEDULER_CONCURRENCY = 64;
const SCHEME_LIST = '(standard|legacy|stripe)\\s*(,\\s*(standard|legacy|stripe)\\s*)*';

const Ms = (def: number, max = 86_400_000 * 365) => Type.Integer({ minimum: 0, maximum: max, default: def });
const Count = (def: number, min = 0, max = 1_000_000_000) => Type.Integer({ minimum: min, maximum: max, default: def });

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  // Where clients reach the service, for the OpenAPI document's `servers` (default http://localhost:PORT).
  PUBLIC_URL: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$', 'x-pattern-description': 'an absolute http(s) URL' })),
  LOG_LEVEL: Type.Union(
    LOG_LEVELS.map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  LOG_FORMAT: Type.Union(
    LOG_FORMATS.map((format) => Type.Literal(format)),
    { default: 'json' },
  ),
  WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 8 })),
  DEFAULT_APPROVE_DELAY_MS: Ms(200, 600_000),
  DEFAULT_FAIL_DELAY_MS: Ms(100, 600_000),
  DEFAULT_DELAY_DELAY_MS: Ms(3000, 600_000),
  RANDOM_APPROVE_RATE: Type.Number({ minimum: 0, maximum: 1, default: 0.8 }),
  RANDOM_SEED: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
  // Weighted outcomes (issue 15), e.g. approve:90,fail:7,delay:3; read by parseMix below.
  MIX: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  // Multiplies every simulated duration (issue 15): 0.01 makes a 10-minute seat hold last 6 s. See the README for what is not scaled.
  TIME_SCALE: Type.Number({ minimum: MIN_TIME_SCALE, maximum: MAX_TIME_SCALE, default: 1 }),
  WEBHOOK_TIMEOUT_MS: Count(1000, 1, 600_000),
  WEBHOOK_MAX_RETRIES: Count(5, 0, 100),
  WEBHOOK_BACKOFF_MS: Ms(1000, 3_600_000),
  WEBHOOK_MAX_RPS: Count(500, 0, 1_000_000),
  WEBHOOK_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 8 })),
  WEBHOOK_SIGNATURE_SCHEMES: Type.String({ pattern: `^\\s*${SCHEME_LIST}$`, 'x-pattern-description': 'a comma-separated list of standard, legacy, stripe', default: 'standard,legacy' }),
  WEBHOOK_CONCURRENCY: Count(64, 1, 10_000),
  WEBHOOK_ORIGIN_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  WEBHOOK_QUEUE_MAX: Count(100_000, 1, 10_000_000),
  WEBHOOK_BACKOFF_MAX_MS: Ms(60_000, 86_400_000),
  WEBHOOK_LOG_TTL_MS: Ms(86_400_000),
  WEBHOOK_LOG_MAX: Count(100_000, 1),
  // URLs disabled after a 410 held at most; past it the URL disabled first is re-enabled.
  WEBHOOK_MAX_DISABLED_URLS: Count(10_000, 1),
  // With Redis (issue 14): a delivery its replica has held unacknowledged this long is taken over by another.
  // Unset: 30 s, or twice WEBHOOK_TIMEOUT_MS when that is longer.
  WEBHOOK_CLAIM_IDLE_MS: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
  // With Redis (issue 14): entries kept (about) in the outbound event stream <prefix>events.
  EVENTS_STREAM_MAX_LEN: Count(100_000, 1, 100_000_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', 'x-pattern-description': 'an http(s) URL' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'paysim' }),
  // Read by the OpenTelemetry SDK itself; checked here, since the SDK takes a typo for its default (every request traced).
  OTEL_TRACES_SAMPLER: Type.Optional(Type.Union(OTEL_SAMPLERS.map((name) => Type.Literal(name)))),
  OTEL_TRACES_SAMPLER_ARG: Type.Optional(Type.String()),
  // At least 1: 0 would forget every key at once (no replays), where 0 means unlimited or off elsewhere.
  IDEMPOTENCY_TTL_MS: Type.Integer({ minimum: 1, maximum: 86_400_000 * 365, default: 86_400_000 }),
  // Bounds chosen so that every store at its bound keeps the whole process under 1.5 GiB (scripts/bench-memory.ts).
  IDEMPOTENCY_MAX_KEYS: Count(300_000, 1),
  INTENT_TTL_MS: Ms(86_400_000),
  STORE_MAX_INTENTS: Count(1_000_000, 1),
  BODY_LIMIT_BYTES: Count(65_536, 1024, 104_857_600),
  HTTP_REQUEST_TIMEOUT_MS: Count(30_000, 1, 3_600_000),
  HTTP_HEADERS_TIMEOUT_MS: Count(10_000, 1, 3_600_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Count(72_000, 1, 3_600_000),
  HTTP_CONNECTION_TIMEOUT_MS: Ms(0, 3_600_000),
  // Which proxies' X-Forwarded-For to believe for the client's address: false (default), true, or addresses/CIDRs/range names.
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  // Which web origins' pages may call the APIs from a browser: unset (none), `*`, or origins separated by commas.
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  SHUTDOWN_TIMEOUT_MS: Ms(10_000, 3_600_000),
  SHUTDOWN_DELAY_MS: Ms(0, 600_000),
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: Ms(1000, 600_000),
  OVERLOAD_MAX_HEAP_USED_BYTES: Count(0, 0, Number.MAX_SAFE_INTEGER),
  OVERLOAD_MAX_RSS_BYTES: Count(0, 0, Number.MAX_SAFE_INTEGER),
  OVERLOAD_RETRY_AFTER_S: Count(1, 1, 3600),
  PERFORMANCES_FILE: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  SEAT_HOLD_MS: Count(600_000, 1, 86_400_000),
  EVENT_PROCESSING_DELAY_MS: Ms(50, 600_000),
  MOCK_MIN_DELAY_MS: Ms(500, 600_000),
  MOCK_MAX_DELAY_MS: Ms(1500, 600_000),
  // No length rule beyond sanity: it must equal whatever secret the ticketing stack's auth service signs with.
  JWT_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  BOOKING_TTL_MS: Ms(86_400_000),
  BOOKINGS_MAX: Count(100_000, 1),
  // The Payment Server v3 API (/api/v2, document 001).
  // Unset: mix when MIX is set, else approve.
  V2_DEFAULT_SCENARIO: Type.Optional(Type.Union(SCENARIOS.map((scenario) => Type.Literal(scenario)))),
  V2_COMPLETE_DELAY_MS: Ms(0, 600_000),
  // The document's own name for the callbacks' HMAC secret; unset: WEBHOOK_SECRET signs them.
  PAYMENT_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  // Sent as `Authorization: Bearer …` with every callback; required of callers when V2_REQUIRE_AUTH=true.
  SERVICE_AUTH_TOKEN: Type.Optional(Type.String({ maxLength: 4096, pattern: '^[\\x21-\\x7E]+$', 'x-pattern-description': 'visible ASCII characters (no spaces)' })),
  V2_REQUIRE_AUTH: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  // Signature schemes sent besides X-Payment-Signature (none unless set).
  V2_EXTRA_SIGNATURE_SCHEMES: Type.Optional(Type.String({ pattern: `^\\s*${SCHEME_LIST}$`, 'x-pattern-description': 'a comma-separated list of standard, legacy, stripe' })),
  V2_PAYMENT_TTL_MS: Ms(86_400_000),
  V2_PAYMENTS_MAX: Count(100_000, 1),
  // FluxPay (issue 11, document 002).
  FLUXPAY_POLICY_FILE: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  FLUXPAY_USAGE_TIMEOUT_MS: Count(30_000, 1, 86_400_000),
  FLUXPAY_WEBHOOK_URL: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://[^/?#\\s]+([/?#][^\\s]*)?$', 'x-pattern-description': 'an absolute http(s) URL' })),
  FLUXPAY_SIGNATURE_SCHEMES: Type.String({ pattern: `^\\s*${SCHEME_LIST}$`, 'x-pattern-description': 'a comma-separated list of standard, legacy, stripe', default: 'standard' }),
  FLUXPAY_TTL_MS: Ms(86_400_000),
  FLUXPAY_MAX_RECORDS: Count(100_000, 1),
  FLUXPAY_MAX_CREDIT_USERS: Count(DEFAULT_MAX_CREDIT_USERS, 1),
  FLUXPAY_MAX_SUBSCRIPTIONS: Count(100, 1, 10_000),
  // Billing subscriptions (issue 12): held at most, and the dunning retries after a declined renewal.
  FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: Count(50_000, 1, 10_000_000),
  FLUXPAY_DUNNING_DELAYS: Type.String({
    pattern: '^\\s*P(T?[0-9]+[WDHMS])+(\\s*,\\s*P(T?[0-9]+[WDHMS])+)*\\s*$',
    'x-pattern-description': 'a comma-separated list of ISO 8601 durations in weeks, days, hours, minutes or seconds (such as P1D,P3D,P5D)',
    default: 'P1D,P3D,P5D',
  }),
  // Waiting rooms and rate limiting (issue 12).
  FLUXPAY_MAX_WAITING_TICKETS: Count(1_000_000, 1, 100_000_000),
  FLUXPAY_MAX_WAITING_ROOMS: Count(1_000, 1, 1_000_000),
  FLUXPAY_WAITING_TICKET_TTL_MS: Ms(3_600_000),
  FLUXPAY_RATE_LIMIT_MAX_KEYS: Count(100_000, 1, 10_000_000),
  // Fault injection (issue 15): on or off entirely, rules loaded at start, and the bound on rules held at once.
  // false: no fault hooks on any route and no /v1/sim/rules routes (404), for users who never inject faults.
  FAULTS_ENABLED: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'true' }),
  FAULTS_FILE: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  FAULTS_MAX_RULES: Count(1000, 1, 100_000),
  // Namespaces (X-Sim-Namespace, issue 15): how many exist at once besides `default`; each is a whole simulator of its own.
  NAMESPACES_MAX: Count(64, 0, 10_000),
  // The web console at /console (issue 13).
  CONSOLE_ENABLED: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'true' }),
  // When set, the console asks for it (a login form) before showing anything.
  CONSOLE_TOKEN: Type.Optional(Type.String({ minLength: 8, maxLength: 4096 })),
  // How long a console login lasts (12 h); a log out ends it earlier, on every replica.
  CONSOLE_SESSION_TTL_MS: Count(43_200_000, 60_000, 86_400_000 * 365),
  // Failed console logins from one client address within a minute before its logins are refused (429) until the minute ends.
  CONSOLE_MAX_LOGIN_FAILURES: Count(10, 1, 1_000_000),
  // The back end behind the store ports, and several processes (issue 14).
  STORE: Type.Union(
    STORE_BACKENDS.map((backend) => Type.Literal(backend)),
    { default: 'memory' },
  ),
  REDIS_URL: Type.String({
    maxLength: 4096,
    // The scheme in any case, as the Redis client takes it; no white space (a value read from a file keeps its last newline).
    pattern: '^[Rr][Ee][Dd][Ii][Ss][Ss]?://[^\\s]*$',
    'x-pattern-description': 'a redis:// or rediss:// URL, without spaces or line breaks (a value read from a file keeps its last newline)',
    default: DEFAULT_REDIS_URL,
  }),
  // With rediss://: a client certificate and its key (PEM files) for a Redis that asks for one, and CAs (PEM) trusted for Redis' certificate besides Node's.
  REDIS_TLS_CERT: Type.Optional(Type.String({ maxLength: 4096 })),
  REDIS_TLS_KEY: Type.Optional(Type.String({ maxLength: 4096 })),
  REDIS_TLS_CA: Type.Optional(Type.String({ maxLength: 4096 })),
  // Every key the service writes starts with it, so replicas of one deployment share keys and other deployments on the same Redis do not.
  REDIS_KEY_PREFIX: Type.String({ maxLength: 200, pattern: '^[\\x21-\\x7E]*$', 'x-pattern-description': 'visible ASCII characters (no spaces)', default: DEFAULT_REDIS_KEY_PREFIX }),
  // Unset: DEFAULT_REDIS_SCHEDULER_POLL_MS with STORE=redis, 0 (off) with memory, where nobody else schedules.
  SCHEDULER_POLL_MS: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  // How long a claimed job is its replica's before another may claim it (a replica that died): longer than any handler runs.
  SCHEDULER_LEASE_MS: Count(30_000, 1000, 3_600_000),
  // Unset: DEFAULT_REDIS_SCHEDULER_CONCURRENCY with STORE=redis; memory runs due work one job after another.
  // At most a claimed batch's jobs (the scheduler's BATCH): more lanes would stay idle.
  SCHEDULER_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1, maximum: 512 })),
  CLUSTER_WORKERS: Count(1, 1, 256),
});

type Env = Static<typeof EnvSchema>;

/** Every variable the service reads (.env.example and the README list each one). */
export const ENV_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties);

export interface Config {
  port: number;
  host: string;
  /** Where clients reach the service (PUBLIC_URL, else http://localhost:PORT), without a trailing slash. */
  publicUrl: string;
  logLevel: string;
  logFormat: LogFormat;
  webhookSecret: string;
  /** True when WEBHOOK_SECRET was unset and a random secret was generated for this run. */
  webhookSecretGenerated: boolean;
  scenarios: ScenarioConfig;
  randomSeed: number | undefined;
  /** TIME_SCALE: the simulated durations of this config (delays, seat hold, backoff, usage timeout, dunning) include it already; core scales request delays, plan periods and waiting-room rates by it. */
  timeScale: number;
  webhook: {
    timeoutMs: number;
    maxRetries: number;
    backoffMs: number;
    backoffMaxMs: number;
    maxRps: number;
    /** The secret before the current one, during a rotation: deliveries carry signatures for both. */
    previousSecret: string | undefined;
    schemes: readonly SignatureScheme[];
    concurrency: number;
    /** In flight per receiver origin, so a slow receiver cannot take every worker. */
    originConcurrency: number;
    queueMax: number;
    logTtlMs: number;
    logMax: number;
    /** WEBHOOK_MAX_DISABLED_URLS: URLs disabled after a 410 held at most; past it the one disabled first is re-enabled. */
    maxDisabledUrls: number;
    /** With a shared (Redis) delivery queue: held unacknowledged this long, a delivery is taken over by another replica. */
    claimIdleMs: number;
  };
  /** With Redis: the outbound event stream's length (about: whole nodes are trimmed). */
  eventsStream: { maxLen: number };
  otel: { endpoint: string | undefined; serviceName: string };
  idempotency: { ttlMs: number; maxKeys: number };
  store: {
    /** STORE: where every port keeps its state. */
    backend: StoreBackend;
    intentTtlMs: number;
    maxIntents: number;
  };
  /** The Redis of STORE=redis: REDIS_URL, the prefix of every key (REDIS_KEY_PREFIX), and the files of REDIS_TLS_CERT, REDIS_TLS_KEY and REDIS_TLS_CA (read). */
  redis: { url: string; keyPrefix: string; tls?: RedisTls };
  /**
   * The scheduler of due work: how often it looks for work it was not told about (0: never; only a
   * shared store needs it), and how many of a claimed batch's jobs run at once (1 with memory).
   */
  scheduler: { pollMs: number; leaseMs: number; concurrency: number };
  /** CLUSTER_WORKERS: worker processes sharing the port (1: this process serves itself). */
  clusterWorkers: number;
  bodyLimitBytes: number;
  http: {
    /** The whole request (headers and body) must arrive within this. */
    requestTimeoutMs: number;
    /** The headers must arrive within this. */
    headersTimeoutMs: number;
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutMs: number;
    /** A socket with no activity at all is closed after this (0: never). */
    connectionTimeoutMs: number;
    /**
     * TRUST_PROXY, as Fastify's `trustProxy` takes it: whose X-Forwarded-For gives the client's
     * address (`request.ip`: FluxPay's per-address rate limits, the console's failed logins, the
     * logs). false: none (the socket's address); true: any; else the proxies at these addresses,
     * CIDRs or proxy-addr's range names (loopback, linklocal, uniquelocal). Not a hop count: this
     * Fastify trusts no proxy for one (it cannot check the nearest peer).
     */
    trustProxy: boolean | string[];
    /** CORS_ORIGINS: the origins whose pages may call the APIs from a browser (`*`: any); undefined: no CORS headers at all. */
    corsOrigins: '*' | string[] | undefined;
  };
  shutdownTimeoutMs: number;
  /** On SIGTERM/SIGINT, /readyz answers 503 this long before the drain begins, while everything else runs as usual (a load balancer takes the replica out first). */
  shutdownDelayMs: number;
  overload: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number; maxRssBytes: number; retryAfterS: number };
  bookings: {
    /** PERFORMANCES_FILE, when set; `performances` is then its catalog, read and validated at start. */
    performancesFile: string | undefined;
    performances: readonly Performance[];
    seatHoldMs: number;
    eventProcessingDelayMs: number;
    mockMinDelayMs: number;
    mockMaxDelayMs: number;
    ttlMs: number;
    maxBookings: number;
  };
  /** HS256 secret of the payment-service API's bearer tokens; unset: that endpoint answers 503. */
  jwtSecret: string | undefined;
  /** The Payment Server v3 API (`/api/v2`, document 001). */
  v2: {
    defaultScenario: Scenario;
    completeDelayMs: number;
    /** PAYMENT_WEBHOOK_SECRET, else the webhook secret (WEBHOOK_SECRET or the generated one). */
    webhookSecret: string;
    serviceAuthToken: string | undefined;
    /** Callers of /api/v2 must send `Authorization: Bearer <serviceAuthToken>`. */
    requireAuth: boolean;
    /** Signature schemes sent besides X-Payment-Signature. */
    extraSchemes: readonly SignatureScheme[];
    paymentTtlMs: number;
    maxPayments: number;
  };
  /** FluxPay (`/api/v1/orders`, `/api/v1/payments`, `/api/v1/credits`, …, document 002). */
  fluxpay: {
    /** FLUXPAY_POLICY_FILE, when set; `policy` is then its content, read and checked at start. */
    policyFile: string | undefined;
    policy: BillingPolicy;
    usageTimeoutMs: number;
    /** A subscriber of every event besides those of POST /api/v1/webhook-subscriptions. */
    webhookUrl: string | undefined;
    schemes: readonly SignatureScheme[];
    ttlMs: number;
    maxRecords: number;
    /** FLUXPAY_MAX_CREDIT_USERS: users with a credit balance held at most; balances are never evicted, so a first charge for one more is a 409. */
    maxCreditUsers: number;
    /** FLUXPAY_MAX_SUBSCRIPTIONS: webhook subscriptions (`whs_`) held at most; they never expire, one more is a 409 until some are deleted. */
    maxSubscriptions: number;
    /** FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: billing subscriptions (`sub_`) held at most. */
    maxBillingSubscriptions: number;
    /** FLUXPAY_DUNNING_DELAYS: after a declined renewal, retries this long after the period end, in order; then EXPIRED. */
    dunningDelaysMs: readonly number[];
    /** Waiting-room tickets held across every room (issue 12). */
    maxWaitingTickets: number;
    /** Waiting rooms held at once (issue 12); rooms are never evicted, so one more is refused (409 WAIT_002). */
    maxWaitingRooms: number;
    /** Ended tickets (expired, or their token used) are kept this long. */
    waitingTicketTtlMs: number;
    /** Rate-limit windows (a client and a route group each) held at once. */
    rateLimitMaxKeys: number;
  };
  /** Fault injection (issue 15). */
  faults: {
    /** FAULTS_ENABLED: false means no fault hooks, no rules API, no webhook faults. */
    enabled: boolean;
    /** FAULTS_FILE, when set; `rules` are then its rules, read and checked at start (relative windows count from the start). */
    file: string | undefined;
    rules: readonly ParsedRule[];
    /** The file as read (undefined without one): each namespace makes its rules from it at its creation, relative windows counted from then. */
    document: unknown;
    /** The file's fingerprint (its text's SHA-256, 32 hex digits; '' without a file): on Redis its rules are made once per content (FaultRuleStore.declare). */
    fingerprint: string;
    /** Rules held at once in each namespace (FAULTS_MAX_RULES). */
    maxRules: number;
  };
  /** Namespaces (X-Sim-Namespace): how many may exist at once besides `default` (NAMESPACES_MAX; 0: none). */
  namespaces: { max: number };
  /** The web console at /console (issue 13). */
  console: {
    enabled: boolean;
    /** CONSOLE_TOKEN: when set, the console needs a login with it. */
    token: string | undefined;
    /**
     * Without CONSOLE_TOKEN: the key (base64) that signs session cookies, shared on Redis by every
     * process of a key prefix (set at start, src/plugins/app/stores.ts); undefined: each process draws its own.
     */
    sessionKey: string | undefined;
    /** CONSOLE_SESSION_TTL_MS: how long a logged-in session lasts. */
    sessionTtlMs: number;
    /** CONSOLE_MAX_LOGIN_FAILURES: failed logins per client address and minute before its logins are refused until the minute ends. */
    maxLoginFailures: number;
    /** Logged-out sessions remembered at once (until their expiry): the constant CONSOLE_MAX_REVOKED_SESSIONS. */
    maxRevokedSessions: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the configuration; throws ConfigError with a one-line message. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (`FOO=` in a compose file) means "unset", as most tools treat it; so does one of
  // spaces alone (before 2026-12-07 Ajv read `PORT=' '` as 0: a random port, a review).
  const given = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value.trim() !== ''));
  // A number setting is written in decimal: Ajv would also read `0x10` as 16 and `1e3` as an
  // integer's 1000. Any other text is handed to Ajv as one it refuses, and the message shows what was given.
  const data: Record<string, unknown> = { ...given };
  for (const [name, value] of Object.entries(given)) {
    const kind = NUMBER_KINDS.get(name);
    if (kind !== undefined && value !== undefined && !(kind === 'integer' ? DECIMAL_INTEGER : DECIMAL_NUMBER).test(value.trim())) data[name] = 'not a number';
  }
  let env: Env;
  try {
    env = envSchema<Env>({
      schema: EnvSchema,
      data,
      env: false,
      dotenv: false,
      // The annotation that says a pattern in words (see patternWords) is known to Ajv's strict mode.
      ajv: { customOptions: (ajv) => ajv.addKeyword({ keyword: 'x-pattern-description', schemaType: 'string' }) },
    });
  } catch (error) {
    throw new ConfigError(describe(error, given));
  }
  // Ajv reads `Infinity` as a number, and its bounds let it through: an unbounded store, a namespace
  // limit of -Infinity that answered 500 (a user test). Every number setting is finite.
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new ConfigError(`Invalid configuration: ${name} must be a finite number (got ${JSON.stringify(data[name])})`);
  }
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(`Invalid configuration: HTTP_HEADERS_TIMEOUT_MS must not be above HTTP_REQUEST_TIMEOUT_MS (got ${env.HTTP_HEADERS_TIMEOUT_MS} > ${env.HTTP_REQUEST_TIMEOUT_MS})`);
  }
  if (env.MOCK_MIN_DELAY_MS > env.MOCK_MAX_DELAY_MS) {
    throw new ConfigError(`Invalid configuration: MOCK_MIN_DELAY_MS must not be above MOCK_MAX_DELAY_MS (got ${env.MOCK_MIN_DELAY_MS} > ${env.MOCK_MAX_DELAY_MS})`);
  }
  if (env.WEBHOOK_CLAIM_IDLE_MS !== undefined && env.WEBHOOK_CLAIM_IDLE_MS <= env.WEBHOOK_TIMEOUT_MS) {
    // A slow attempt still in flight would be taken over and sent twice.
    throw new ConfigError(`Invalid configuration: WEBHOOK_CLAIM_IDLE_MS must be above WEBHOOK_TIMEOUT_MS (got ${env.WEBHOOK_CLAIM_IDLE_MS} <= ${env.WEBHOOK_TIMEOUT_MS})`);
  }
  if (env.V2_REQUIRE_AUTH === 'true' && env.SERVICE_AUTH_TOKEN === undefined) {
    throw new ConfigError('Invalid configuration: V2_REQUIRE_AUTH=true needs SERVICE_AUTH_TOKEN (the token callers must send)');
  }
  if (env.SCHEDULER_CONCURRENCY !== undefined && env.STORE === 'memory') {
    throw new ConfigError(
      `Invalid configuration: SCHEDULER_CONCURRENCY=${env.SCHEDULER_CONCURRENCY} needs STORE=redis (with STORE=memory due work runs one job after another, in due order, with no round trips to wait on)`,
    );
  }
  if (env.CLUSTER_WORKERS > 1 && env.STORE === 'memory') {
    throw new ConfigError(
      `Invalid configuration: CLUSTER_WORKERS=${env.CLUSTER_WORKERS} needs STORE=redis (with STORE=memory each worker would keep its own intents, keys and seats, and a request could reach a worker that does not know them)`,
    );
  }
  const redisUrlProblem = redisUrlIssue(env.REDIS_URL);
  if (redisUrlProblem !== undefined) {
    // Never the value: it may hold a password.
    throw new ConfigError(`Invalid configuration: REDIS_URL ${redisUrlProblem}, e.g. redis://user:password@host:6379/0 (the value is not shown: it may hold a password)`);
  }
  const redisTls = readRedisTls(env);
  // As every webhook URL the APIs take (the schema's pattern lets a control character, a port
  // above 65535 or a broken IPv6 address through: a review).
  if (env.FLUXPAY_WEBHOOK_URL !== undefined && !isHttpUrl(env.FLUXPAY_WEBHOOK_URL)) {
    throw new ConfigError(`Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got ${JSON.stringify(maskedUrl(env.FLUXPAY_WEBHOOK_URL))})`);
  }
  const otelProblem = otelEndpointIssue(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (otelProblem !== undefined) {
    // Never the value: it may hold a password (the exporter's own error printed it, with a stack).
    throw new ConfigError(`Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT ${otelProblem}, e.g. http://otel-collector:4317 (the value is not shown: it may hold a password)`);
  }
  // Typed loosely: the schema's union of a mapped list reads as never here.
  const sampler = env.OTEL_TRACES_SAMPLER as string | undefined;
  if (sampler?.endsWith('traceidratio') === true) {
    // The SDK takes a missing or bad ratio for 1, every request traced: the cost the sampler was set to avoid.
    const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    // As the SDK reads it (Number: `1e-2` too), blank being none.
    const ratio = arg === undefined || arg === '' ? Number.NaN : Number(arg);
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new ConfigError(`Invalid configuration: OTEL_TRACES_SAMPLER=${sampler} needs OTEL_TRACES_SAMPLER_ARG, the share of traces to keep, from 0 to 1, e.g. 0.01 (got ${arg === undefined ? 'none' : JSON.stringify(arg)})`);
    }
  }
  const mix = readMix(env.MIX);
  if (env.V2_DEFAULT_SCENARIO === 'mix' && mix === undefined) {
    throw new ConfigError('Invalid configuration: V2_DEFAULT_SCENARIO=mix needs MIX (the weights, e.g. approve:90,fail:7,delay:3)');
  }
  const performances = env.PERFORMANCES_FILE === undefined ? DEFAULT_PERFORMANCES : readCatalog(env.PERFORMANCES_FILE);
  const policy = readPolicy(env.FLUXPAY_POLICY_FILE);
  if (env.FAULTS_ENABLED === 'false' && env.FAULTS_FILE !== undefined) {
    throw new ConfigError('Invalid configuration: FAULTS_FILE is set but FAULTS_ENABLED=false would never apply its rules (unset one of them)');
  }
  const faultsFile = env.FAULTS_FILE === undefined ? { rules: [], fingerprint: '', document: undefined } : readFaults(env.FAULTS_FILE, env.FAULTS_MAX_RULES);
  if (env.WEBHOOK_BACKOFF_MAX_MS < env.WEBHOOK_BACKOFF_MS) {
    throw new ConfigError(`Invalid configuration: WEBHOOK_BACKOFF_MAX_MS (${env.WEBHOOK_BACKOFF_MAX_MS}) is below WEBHOOK_BACKOFF_MS (${env.WEBHOOK_BACKOFF_MS}): every retry would wait the cap, with no backoff; raise the cap or lower the base`);
  }
  if (env.WEBHOOK_ORIGIN_CONCURRENCY !== undefined && env.WEBHOOK_ORIGIN_CONCURRENCY > env.WEBHOOK_CONCURRENCY) {
    throw new ConfigError(`Invalid configuration: WEBHOOK_ORIGIN_CONCURRENCY (${env.WEBHOOK_ORIGIN_CONCURRENCY}) is above WEBHOOK_CONCURRENCY (${env.WEBHOOK_CONCURRENCY}), the attempts in flight for all receivers together, so it could never be reached; raise WEBHOOK_CONCURRENCY or lower it`);
  }
  for (const name of ['WEBHOOK_SECRET', 'WEBHOOK_SECRET_PREVIOUS'] as const) {
    const value = env[name];
    // Never the value: it is a secret.
    if (value !== undefined && !wellFormedWhsec(value)) {
      throw new ConfigError(
        `Invalid configuration: ${name} starts with whsec_ but the rest is not base64 (A-Z, a-z, 0-9, + and /, padded with = to a multiple of 4 characters), which Standard Webhooks verifiers decode into the key and refuse otherwise; give whsec_ followed by the base64 of a key (e.g. whsec_$(openssl rand -base64 24)), or a secret without the whsec_ prefix (its UTF-8 bytes are the key). The value is not shown`,
      );
    }
  }
  const secret = env.WEBHOOK_SECRET ?? `whsec_${randomBytes(24).toString('base64')}`;
  // Every simulated duration read here is scaled once, here (issue 15); network times and retention TTLs are not.
  const sim = (ms: number) => scaled(ms, env.TIME_SCALE);
  return {
    port: env.PORT,
    host: env.HOST,
    publicUrl: (env.PUBLIC_URL ?? `http://localhost:${env.PORT}`).replace(/\/+$/, ''),
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    webhookSecret: secret,
    webhookSecretGenerated: env.WEBHOOK_SECRET === undefined,
    scenarios: {
      approveDelayMs: sim(env.DEFAULT_APPROVE_DELAY_MS),
      failDelayMs: sim(env.DEFAULT_FAIL_DELAY_MS),
      delayDelayMs: sim(env.DEFAULT_DELAY_DELAY_MS),
      randomApproveRate: env.RANDOM_APPROVE_RATE,
      mix,
      timeScale: env.TIME_SCALE,
    },
    randomSeed: env.RANDOM_SEED,
    timeScale: env.TIME_SCALE,
    webhook: {
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      maxRetries: env.WEBHOOK_MAX_RETRIES,
      backoffMs: sim(env.WEBHOOK_BACKOFF_MS),
      backoffMaxMs: sim(env.WEBHOOK_BACKOFF_MAX_MS),
      maxRps: env.WEBHOOK_MAX_RPS,
      previousSecret: env.WEBHOOK_SECRET_PREVIOUS,
      schemes: schemeList(env.WEBHOOK_SIGNATURE_SCHEMES),
      concurrency: env.WEBHOOK_CONCURRENCY,
      originConcurrency: env.WEBHOOK_ORIGIN_CONCURRENCY ?? Math.max(1, Math.ceil(env.WEBHOOK_CONCURRENCY / 2)),
      queueMax: env.WEBHOOK_QUEUE_MAX,
      logTtlMs: env.WEBHOOK_LOG_TTL_MS,
      logMax: env.WEBHOOK_LOG_MAX,
      maxDisabledUrls: env.WEBHOOK_MAX_DISABLED_URLS,
      claimIdleMs: env.WEBHOOK_CLAIM_IDLE_MS ?? Math.max(30_000, 2 * env.WEBHOOK_TIMEOUT_MS),
    },
    eventsStream: { maxLen: env.EVENTS_STREAM_MAX_LEN },
    otel: { endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME },
    idempotency: { ttlMs: env.IDEMPOTENCY_TTL_MS, maxKeys: env.IDEMPOTENCY_MAX_KEYS },
    store: { backend: env.STORE, intentTtlMs: env.INTENT_TTL_MS, maxIntents: env.STORE_MAX_INTENTS },
    redis: { url: redisUrl(env.REDIS_URL), keyPrefix: env.REDIS_KEY_PREFIX, ...(redisTls === undefined ? {} : { tls: redisTls }) },
    scheduler: {
      pollMs: env.SCHEDULER_POLL_MS ?? (env.STORE === 'redis' ? DEFAULT_REDIS_SCHEDULER_POLL_MS : 0),
      leaseMs: env.SCHEDULER_LEASE_MS,
      concurrency: env.SCHEDULER_CONCURRENCY ?? (env.STORE === 'redis' ? DEFAULT_REDIS_SCHEDULER_CONCURRENCY : 1),
    },
    clusterWorkers: env.CLUSTER_WORKERS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    http: {
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionTimeoutMs: env.HTTP_CONNECTION_TIMEOUT_MS,
      trustProxy: parseTrustProxy(env.TRUST_PROXY),
      corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    shutdownDelayMs: env.SHUTDOWN_DELAY_MS,
    overload: {
      maxEventLoopDelayMs: env.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: env.OVERLOAD_MAX_HEAP_USED_BYTES,
      maxRssBytes: env.OVERLOAD_MAX_RSS_BYTES,
      retryAfterS: env.OVERLOAD_RETRY_AFTER_S,
    },
    bookings: {
      performancesFile: env.PERFORMANCES_FILE,
      performances,
      seatHoldMs: sim(env.SEAT_HOLD_MS),
      eventProcessingDelayMs: sim(env.EVENT_PROCESSING_DELAY_MS),
      mockMinDelayMs: sim(env.MOCK_MIN_DELAY_MS),
      mockMaxDelayMs: sim(env.MOCK_MAX_DELAY_MS),
      ttlMs: env.BOOKING_TTL_MS,
      maxBookings: env.BOOKINGS_MAX,
    },
    jwtSecret: env.JWT_SECRET,
    v2: {
      defaultScenario: (env.V2_DEFAULT_SCENARIO as Scenario | undefined) ?? (mix === undefined ? 'approve' : 'mix'),
      completeDelayMs: sim(env.V2_COMPLETE_DELAY_MS),
      webhookSecret: env.PAYMENT_WEBHOOK_SECRET ?? secret,
      serviceAuthToken: env.SERVICE_AUTH_TOKEN,
      requireAuth: env.V2_REQUIRE_AUTH === 'true',
      extraSchemes: env.V2_EXTRA_SIGNATURE_SCHEMES === undefined ? Object.freeze([]) : schemeList(env.V2_EXTRA_SIGNATURE_SCHEMES),
      paymentTtlMs: env.V2_PAYMENT_TTL_MS,
      maxPayments: env.V2_PAYMENTS_MAX,
    },
    fluxpay: {
      policyFile: env.FLUXPAY_POLICY_FILE,
      policy,
      usageTimeoutMs: sim(env.FLUXPAY_USAGE_TIMEOUT_MS),
      webhookUrl: env.FLUXPAY_WEBHOOK_URL,
      schemes: schemeList(env.FLUXPAY_SIGNATURE_SCHEMES),
      ttlMs: env.FLUXPAY_TTL_MS,
      maxRecords: env.FLUXPAY_MAX_RECORDS,
      maxCreditUsers: env.FLUXPAY_MAX_CREDIT_USERS,
      maxSubscriptions: env.FLUXPAY_MAX_SUBSCRIPTIONS,
      maxBillingSubscriptions: env.FLUXPAY_MAX_BILLING_SUBSCRIPTIONS,
      dunningDelaysMs: dunningDelays(env.FLUXPAY_DUNNING_DELAYS).map(sim),
      maxWaitingTickets: env.FLUXPAY_MAX_WAITING_TICKETS,
      maxWaitingRooms: env.FLUXPAY_MAX_WAITING_ROOMS,
      waitingTicketTtlMs: env.FLUXPAY_WAITING_TICKET_TTL_MS,
      rateLimitMaxKeys: env.FLUXPAY_RATE_LIMIT_MAX_KEYS,
    },
    faults: { enabled: env.FAULTS_ENABLED === 'true', file: env.FAULTS_FILE, rules: faultsFile.rules, document: faultsFile.document, fingerprint: faultsFile.fingerprint, maxRules: env.FAULTS_MAX_RULES },
    namespaces: { max: env.NAMESPACES_MAX },
    console: {
      enabled: env.CONSOLE_ENABLED === 'true',
      token: env.CONSOLE_TOKEN,
      sessionKey: undefined,
      sessionTtlMs: env.CONSOLE_SESSION_TTL_MS,
      maxLoginFailures: env.CONSOLE_MAX_LOGIN_FAILURES,
      maxRevokedSessions: CONSOLE_MAX_REVOKED_SESSIONS,
    },
  };
}

/** A comma-separated list of scheme names, trimmed and without repeats; frozen (deliveries share it). */
function schemeList(text: string): readonly SignatureScheme[] {
  return Object.freeze([...new Set(text.split(',').map((name) => name.trim() as SignatureScheme))]);
}

/**
 * The catalog is read here, with the rest of the configuration, so a bad file stops the start
 * the same way a bad variable does: exit 1 and one line naming PERFORMANCES_FILE.
 */
function readCatalog(path: string): Performance[] {
  try {
    return loadPerformancesFile(path);
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`, { cause: error });
  }
}

/** `P1D,P3D,P5D` → milliseconds after the period end, in increasing order (a day is 24 hours: UTC has no daylight saving). */
function dunningDelays(text: string): number[] {
  const delays = text.split(',').map((part) => {
    const d = Temporal.Duration.from(part.trim());
    return (((d.weeks * 7 + d.days) * 24 + d.hours) * 60 + d.minutes) * 60_000 + d.seconds * 1000;
  });
  for (let i = 0; i < delays.length; i++) {
    if ((delays[i] as number) <= 0 || (i > 0 && (delays[i] as number) <= (delays[i - 1] as number))) {
      throw new ConfigError(`Invalid configuration: FLUXPAY_DUNNING_DELAYS must be positive and increasing (got ${text})`);
    }
  }
  return delays;
}

/** The billing policy is read with the rest of the configuration: a bad file stops the start with one line naming FLUXPAY_POLICY_FILE. */
function readPolicy(path: string | undefined): BillingPolicy {
  try {
    return loadPolicyFile(path);
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`, { cause: error });
  }
}

/** The MIX setting as weights; a bad one stops the start with parseMix's message. */
function readMix(text: string | undefined): Mix | undefined {
  if (text === undefined) return undefined;
  const parsed = parseMix(text);
  if (!parsed.ok) throw new ConfigError(`Invalid configuration: MIX ${parsed.message} (got "${text}")`);
  return parsed.mix;
}

/** proxy-addr's names for address ranges (https://github.com/jshttp/proxy-addr#proxyaddrreq-trust). */
const PROXY_RANGES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TRUST_PROXY: `false` (unset), `true`, or a comma-separated list of IP addresses, CIDRs and range names. */
function parseTrustProxy(value: string | undefined): boolean | string[] {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.find((entry) => {
    if (PROXY_RANGES.has(entry)) return false;
    const [address, bits, extra] = entry.split('/');
    const version = isIP(address ?? '');
    if (version === 0 || extra !== undefined) return true;
    return bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (version === 4 ? 32 : 128));
  });
  if (bad === undefined) return entries;
  throw new ConfigError(
    `Invalid configuration: TRUST_PROXY must be true, false, or IP addresses, CIDRs and the names loopback, linklocal, uniquelocal separated by commas (got ${JSON.stringify(value)})`,
  );
}

/**
 * A secret that is not `whsec_…`, or one whose rest is strict, padded base64 of at least one byte.
 * Before 2026-12-05 `whsec_!!!!` was taken and signed with an empty key (Node's lenient decoding),
 * and `whsec_local-dev-secret` with a key no Standard Webhooks verifier could build.
 */
export function wellFormedWhsec(secret: string): boolean {
  if (!secret.startsWith('whsec_')) return true;
  const rest = secret.slice('whsec_'.length);
  return rest.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(rest);
}

/** CORS_ORIGINS: `*`, or origins (`http(s)://host[:port]`, as a browser's `Origin` header writes them) separated by commas. */
function parseCorsOrigins(value: string | undefined): '*' | string[] | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '*') return '*';
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.find((entry) => {
    try {
      const url = new URL(entry);
      return (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== entry;
    } catch {
      return true;
    }
  });
  if (bad === undefined) return entries;
  throw new ConfigError(`Invalid configuration: CORS_ORIGINS must be * or origins such as http://localhost:3000 (scheme, host and port, no path or trailing slash) separated by commas (got ${JSON.stringify(bad)})`);
}

function readFaults(path: string, maxRules: number): { rules: ParsedRule[]; fingerprint: string; document: unknown } {
  let file: { rules: ParsedRule[]; fingerprint: string; document: unknown };
  try {
    file = readFaultsFile(path, Date.now());
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`, { cause: error });
  }
  if (file.rules.length > maxRules) throw new ConfigError(`Invalid configuration: FAULTS_FILE holds ${file.rules.length} rules, more than FAULTS_MAX_RULES (${maxRules})`);
  return file;
}

const DECIMAL_INTEGER = /^[+-]?\d+$/;
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** The settings that are numbers, by kind: `integer` or `number`. */
const NUMBER_KINDS: ReadonlyMap<string, string> = new Map(
  Object.entries(EnvSchema.properties as unknown as Record<string, { type?: unknown }>).flatMap(([name, schema]) =>
    schema.type === 'integer' || schema.type === 'number' ? [[name, schema.type] as [string, string]] : [],
  ),
);

interface AjvError {
  instancePath: string;
  keyword: string;
  params?: SchemaRule['params'];
  message?: string;
}

/** What is wrong with an OTLP collector URL the schema let through (`^https?://`), or undefined. */
function otelEndpointIssue(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  if (!URL.canParse(url)) return 'is not a valid URL (no host, a port that is not a number or above 65535, an unclosed [ of an IPv6 address?)';
  return new URL(url).hostname === '' ? 'names no host' : undefined;
}

/**
 * What is wrong with a REDIS_URL that has the right scheme but that the Redis client could not
 * take (it would throw, with the URL and its password in the message); undefined when it is fine.
 */
function redisUrlIssue(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL (a port above 65535, an unclosed [ of an IPv6 address, or a /, ? or # in the password that is not percent-encoded?)';
  }
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    return 'has a user name or password with a % that starts no percent-encoding (write % as %25)';
  }
  if (!/^\/?(\d+\/?)?$/.test(parsed.pathname)) return 'names a database that is not a number (the path is /0, /1, …)';
  return undefined;
}

/** `url` with its scheme in lower case: the Redis client takes REDISS:// for a plain connection (its TLS test is case-sensitive). */
function redisUrl(url: string): string {
  return url.replace(/^[a-z]+:/i, (scheme) => scheme.toLowerCase());
}

/**
 * The files of REDIS_TLS_CERT, REDIS_TLS_KEY and REDIS_TLS_CA, read and checked; undefined when
 * none is set. Refused with STORE=memory, which uses no Redis (as SCHEDULER_CONCURRENCY is), and
 * with a redis:// REDIS_URL, which connects without TLS: either would not use them.
 */
function readRedisTls(env: Pick<Env, 'STORE' | 'REDIS_URL' | 'REDIS_TLS_CERT' | 'REDIS_TLS_KEY' | 'REDIS_TLS_CA'>): RedisTls | undefined {
  const given = (['REDIS_TLS_CERT', 'REDIS_TLS_KEY', 'REDIS_TLS_CA'] as const).filter((name) => env[name] !== undefined);
  if (given.length === 0) return undefined;
  const [verb, them] = given.length === 1 ? ['is for TLS and needs', 'it'] : ['are for TLS and need', 'them'];
  if (env.STORE !== 'redis') {
    throw new ConfigError(`Invalid configuration: ${given.join(', ')} ${verb} STORE=redis (STORE=${env.STORE} uses no Redis and would not use ${them})`);
  }
  if (!redisUrl(env.REDIS_URL).startsWith('rediss://')) {
    throw new ConfigError(`Invalid configuration: ${given.join(', ')} ${verb} a rediss:// REDIS_URL (redis:// connects without TLS and would not use ${them})`);
  }
  try {
    const files = readRedisTlsFiles({ cert: env.REDIS_TLS_CERT, key: env.REDIS_TLS_KEY, ca: env.REDIS_TLS_CA });
    return files === undefined ? undefined : redisTls(files);
  } catch (error) {
    if (!(error instanceof RedisTlsFileError)) throw error;
    throw new ConfigError(`Invalid configuration: ${error.message}`, { cause: error });
  }
}

/** A variable's pattern in words (its `x-pattern-description`), never the regular expression. */
function patternWords(name: string): string | undefined {
  const schema = (EnvSchema.properties as unknown as Record<string, Record<string, unknown> | undefined>)[name];
  const words = schema?.['x-pattern-description'];
  return typeof words === 'string' ? words : undefined;
}

/** Turns Ajv's errors into `NAME must be … (got "value")`, one clause per variable, on one line. */
function describe(error: unknown, data: Record<string, unknown>): string {
  const errors = ((error as { errors?: AjvError[] }).errors ?? []).filter((e) => e.keyword !== 'anyOf');
  const seen = new Set<string>();
  const clauses: string[] = [];
  for (const e of errors) {
    const name = e.instancePath.replace(/^\//, '');
    if (seen.has(name)) continue;
    seen.add(name);
    const choices = CHOICES[name];
    const words = e.keyword === 'pattern' ? patternWords(name) : undefined;
    const rule =
      e.keyword === 'const' && choices !== undefined
        ? `must be one of ${choices.join(', ')}`
        : words !== undefined
          ? `must be ${words}`
          : (ruleWords(e) ?? e.message ?? 'is invalid');
    const shown = SECRET_VARIABLES.has(name) ? '' : ` (got ${JSON.stringify(typeof data[name] === 'string' ? maskedUrl(data[name]) : data[name])})`;
    clauses.push(`${name} ${rule}${shown}`);
  }
  return `Invalid configuration: ${clauses.join('; ') || (error as Error).message}`;
}
