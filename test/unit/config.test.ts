import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, getCACertificates } from 'node:tls';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, ENV_VARIABLES, loadConfig } from '../../src/config.ts';
import { DEFAULT_PERFORMANCES } from '../../src/core/bookings/performances.ts';
import { BATCH } from '../../src/core/scheduler.ts';
import { longestHandlerWaitMs } from '../../src/adapters/redis/index.ts';
import { readRedisTlsFiles } from '../../src/adapters/redis/tls-files.ts';
import { hasOpenssl, makeTestCa, type TestCa } from '../helpers/test-ca.ts';

const GENERATED_SECRET = /^whsec_[A-Za-z0-9+/]{32}$/;

afterEach(() => {
  vi.unstubAllEnvs();
});

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('an empty environment gives exactly the documented defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8080,
      host: '0.0.0.0',
      logLevel: 'info',
      logFormat: 'json',
      publicUrl: 'http://localhost:8080',
      webhookSecret: expect.stringMatching(GENERATED_SECRET),
      webhookSecretGenerated: true,
      scenarios: { approveDelayMs: 200, failDelayMs: 100, delayDelayMs: 3000, randomApproveRate: 0.8, timeScale: 1 },
      randomSeed: undefined,
      timeScale: 1,
      webhook: {
        timeoutMs: 1000,
        maxRetries: 5,
        backoffMs: 1000,
        backoffMaxMs: 60_000,
        maxRps: 500,
        previousSecret: undefined,
        schemes: ['standard', 'legacy'],
        concurrency: 64,
        originConcurrency: 32,
        queueMax: 100_000,
        logTtlMs: 86_400_000,
        logMax: 100_000,
        maxDisabledUrls: 10_000,
        claimIdleMs: 30_000,
      },
      eventsStream: { maxLen: 100_000 },
      otel: { endpoint: undefined, serviceName: 'paysim' },
      idempotency: { ttlMs: 86_400_000, maxKeys: 300_000 },
      store: { backend: 'memory', intentTtlMs: 86_400_000, maxIntents: 1_000_000 },
      redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'paysim:' },
      scheduler: { pollMs: 0, leaseMs: 30_000, concurrency: 1 },
      clusterWorkers: 1,
      bodyLimitBytes: 65_536,
      http: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 72_000, connectionTimeoutMs: 0, trustProxy: false },
      shutdownTimeoutMs: 10_000,
      shutdownDelayMs: 0,
      overload: { maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterS: 1 },
      bookings: {
        performancesFile: undefined,
        performances: DEFAULT_PERFORMANCES,
        seatHoldMs: 600_000,
        eventProcessingDelayMs: 50,
        mockMinDelayMs: 500,
        mockMaxDelayMs: 1500,
        ttlMs: 86_400_000,
        maxBookings: 100_000,
      },
      jwtSecret: undefined,
      v2: {
        defaultScenario: 'approve',
        completeDelayMs: 0,
        // No PAYMENT_WEBHOOK_SECRET: the callbacks are signed with the (generated) webhook secret.
        webhookSecret: expect.stringMatching(GENERATED_SECRET),
        serviceAuthToken: undefined,
        requireAuth: false,
        extraSchemes: [],
        paymentTtlMs: 86_400_000,
        maxPayments: 100_000,
      },
      fluxpay: {
        policyFile: undefined,
        policy: expect.objectContaining({ services: expect.any(Map), plans: expect.any(Map) }),
        usageTimeoutMs: 30_000,
        webhookUrl: undefined,
        schemes: ['standard'],
        ttlMs: 86_400_000,
        maxRecords: 100_000,
        maxCreditUsers: 1_000_000,
        maxSubscriptions: 100,
        maxBillingSubscriptions: 50_000,
        dunningDelaysMs: [86_400_000, 259_200_000, 432_000_000],
        maxWaitingTickets: 1_000_000,
        maxWaitingRooms: 1_000,
        waitingTicketTtlMs: 3_600_000,
        rateLimitMaxKeys: 100_000,
      },
      faults: { enabled: true, file: undefined, rules: [], document: undefined, fingerprint: '', maxRules: 1000 },
      namespaces: { max: 64 },
      console: { enabled: true, token: undefined, sessionKey: undefined, sessionTtlMs: 43_200_000, maxLoginFailures: 10, maxRevokedSessions: 100_000 },
    });
    // The built-in billing policy prices at least two services and has plans.
    const { policy } = loadConfig({}).fluxpay;
    expect([...policy.services.keys()]).toEqual(['ai-writer', 'image-studio']);
    expect([...policy.plans.keys()]).toEqual(['basic-monthly', 'pro-monthly', 'pro-yearly']);
  });

  it('reads only the given source, never process.env', () => {
    vi.stubEnv('PORT', '1234');
    vi.stubEnv('LOG_LEVEL', 'nonsense');
    expect(loadConfig({})).toMatchObject({ port: 8080, logLevel: 'info' });
  });

  it('empty-string values count as unset', () => {
    const config = loadConfig({ PORT: '', HOST: '', LOG_LEVEL: '', RANDOM_APPROVE_RATE: '', WEBHOOK_SECRET: '', RANDOM_SEED: '' });
    expect(config).toMatchObject({ port: 8080, host: '0.0.0.0', logLevel: 'info', randomSeed: undefined, webhookSecretGenerated: true });
    expect(config.scenarios.randomApproveRate).toBe(0.8);
    expect(config.webhookSecret).toMatch(GENERATED_SECRET);
  });

  it('values of spaces alone count as unset too (before 2026-12-07 PORT=" " was port 0 and a tab approve rate 0: a review); a number with spaces around it is read', () => {
    const config = loadConfig({ PORT: ' ', WEBHOOK_BACKOFF_MS: '  ', RANDOM_APPROVE_RATE: '\t', HOST: ' ', STORE_MAX_INTENTS: ' 500 ' });
    expect(config).toMatchObject({ port: 8080, host: '0.0.0.0' });
    expect(config.scenarios.randomApproveRate).toBe(0.8);
    expect(config.webhook.backoffMs).toBe(loadConfig({}).webhook.backoffMs);
    expect(config.store.maxIntents).toBe(500);
  });

  it('does not mutate the source', () => {
    const env = { PORT: '9000', FOO: '' };
    loadConfig(env);
    expect(env).toEqual({ PORT: '9000', FOO: '' });
  });

  it('ignores unknown variables', () => {
    expect(loadConfig({ SOMETHING_ELSE: 'x', PATH: '/bin' }).port).toBe(8080);
  });
});

describe('loadConfig values', () => {
  it('reads and coerces every variable', () => {
    const config = loadConfig({
      PORT: '3000',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      PUBLIC_URL: 'https://paysim.example.test/base/',
      WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQ=',
      TIME_SCALE: '1',
      DEFAULT_APPROVE_DELAY_MS: '0',
      DEFAULT_FAIL_DELAY_MS: '5',
      DEFAULT_DELAY_DELAY_MS: '600000',
      RANDOM_APPROVE_RATE: '0.25',
      RANDOM_SEED: '42',
      WEBHOOK_TIMEOUT_MS: '250',
      WEBHOOK_MAX_RETRIES: '0',
      WEBHOOK_BACKOFF_MS: '10',
      WEBHOOK_MAX_RPS: '0',
      WEBHOOK_SECRET_PREVIOUS: 'whsec_b2xkLXNlY3JldA==',
      WEBHOOK_SIGNATURE_SCHEMES: ' stripe , standard,stripe',
      WEBHOOK_CONCURRENCY: '8',
      WEBHOOK_ORIGIN_CONCURRENCY: '3',
      WEBHOOK_QUEUE_MAX: '50',
      WEBHOOK_BACKOFF_MAX_MS: '5000',
      WEBHOOK_LOG_TTL_MS: '1000',
      WEBHOOK_LOG_MAX: '20',
      WEBHOOK_MAX_DISABLED_URLS: '7',
      WEBHOOK_CLAIM_IDLE_MS: '5000',
      EVENTS_STREAM_MAX_LEN: '300',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
      OTEL_SERVICE_NAME: 'paysim-ci',
      IDEMPOTENCY_TTL_MS: '60000',
      IDEMPOTENCY_MAX_KEYS: '10',
      INTENT_TTL_MS: '120000',
      STORE_MAX_INTENTS: '500',
      BODY_LIMIT_BYTES: '1024',
      HTTP_REQUEST_TIMEOUT_MS: '5000',
      HTTP_HEADERS_TIMEOUT_MS: '2000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '4000',
      HTTP_CONNECTION_TIMEOUT_MS: '60000',
      TRUST_PROXY: 'uniquelocal',
      SHUTDOWN_TIMEOUT_MS: '0',
      SHUTDOWN_DELAY_MS: '5000',
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      // 2 GiB and 4 GiB (2026-12-05: the heap's threshold was capped at 10^9, so a 2 GiB one stopped the start).
      OVERLOAD_MAX_HEAP_USED_BYTES: '2147483648',
      OVERLOAD_MAX_RSS_BYTES: '4294967296',
      OVERLOAD_RETRY_AFTER_S: '30',
      SEAT_HOLD_MS: '1000',
      EVENT_PROCESSING_DELAY_MS: '0',
      MOCK_MIN_DELAY_MS: '0',
      MOCK_MAX_DELAY_MS: '0',
      JWT_SECRET: 'your-secret-key-change-in-production',
      BOOKING_TTL_MS: '3600000',
      BOOKINGS_MAX: '10',
      V2_DEFAULT_SCENARIO: 'random',
      V2_COMPLETE_DELAY_MS: '2000',
      PAYMENT_WEBHOOK_SECRET: 'your_webhook_secret_key',
      SERVICE_AUTH_TOKEN: 'ops-token-123',
      V2_REQUIRE_AUTH: 'true',
      V2_EXTRA_SIGNATURE_SCHEMES: 'legacy, standard,legacy',
      V2_PAYMENT_TTL_MS: '600000',
      V2_PAYMENTS_MAX: '7',
      FLUXPAY_USAGE_TIMEOUT_MS: '1500',
      FLUXPAY_WEBHOOK_URL: 'http://127.0.0.1:4000/fluxpay',
      FLUXPAY_SIGNATURE_SCHEMES: 'standard, stripe',
      FLUXPAY_TTL_MS: '60000',
      FLUXPAY_MAX_RECORDS: '9',
      FLUXPAY_MAX_CREDIT_USERS: '4',
      FLUXPAY_MAX_SUBSCRIPTIONS: '3',
      FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: '7',
      FLUXPAY_DUNNING_DELAYS: 'PT1M, PT2M,P1DT1H',
      FLUXPAY_MAX_WAITING_TICKETS: '50',
      FLUXPAY_MAX_WAITING_ROOMS: '4',
      FLUXPAY_WAITING_TICKET_TTL_MS: '1000',
      FLUXPAY_RATE_LIMIT_MAX_KEYS: '7',
      FAULTS_MAX_RULES: '5',
      NAMESPACES_MAX: '0',
      FAULTS_ENABLED: 'false',
      CONSOLE_ENABLED: 'false',
      CONSOLE_TOKEN: 'console-token-1',
      CONSOLE_SESSION_TTL_MS: '3600000',
      CONSOLE_MAX_LOGIN_FAILURES: '5',
      STORE: 'redis',
      REDIS_URL: 'rediss://:s3cret@redis.internal:6380/2',
      REDIS_KEY_PREFIX: 'loadtest-7:',
      SCHEDULER_POLL_MS: '100',
      SCHEDULER_LEASE_MS: '5000',
      CLUSTER_WORKERS: '4',
    });
    expect(config).toEqual({
      port: 3000,
      host: '127.0.0.1',
      logLevel: 'debug',
      logFormat: 'pretty',
      publicUrl: 'https://paysim.example.test/base',
      webhookSecret: 'whsec_dGVzdC1zZWNyZXQ=',
      webhookSecretGenerated: false,
      scenarios: { approveDelayMs: 0, failDelayMs: 5, delayDelayMs: 600_000, randomApproveRate: 0.25, timeScale: 1 },
      randomSeed: 42,
      timeScale: 1,
      webhook: {
        timeoutMs: 250,
        maxRetries: 0,
        backoffMs: 10,
        backoffMaxMs: 5000,
        maxRps: 0,
        previousSecret: 'whsec_b2xkLXNlY3JldA==',
        schemes: ['stripe', 'standard'],
        concurrency: 8,
        originConcurrency: 3,
        queueMax: 50,
        logTtlMs: 1000,
        logMax: 20,
        maxDisabledUrls: 7,
        claimIdleMs: 5000,
      },
      eventsStream: { maxLen: 300 },
      otel: { endpoint: 'http://collector:4317', serviceName: 'paysim-ci' },
      idempotency: { ttlMs: 60_000, maxKeys: 10 },
      store: { backend: 'redis', intentTtlMs: 120_000, maxIntents: 500 },
      redis: { url: 'rediss://:s3cret@redis.internal:6380/2', keyPrefix: 'loadtest-7:' },
      scheduler: { pollMs: 100, leaseMs: 5000, concurrency: 64 },
      clusterWorkers: 4,
      bodyLimitBytes: 1024,
      http: { requestTimeoutMs: 5000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 4000, connectionTimeoutMs: 60_000, trustProxy: ['uniquelocal'] },
      shutdownTimeoutMs: 0,
      shutdownDelayMs: 5000,
      overload: { maxEventLoopDelayMs: 0, maxHeapUsedBytes: 2_147_483_648, maxRssBytes: 4_294_967_296, retryAfterS: 30 },
      bookings: {
        performancesFile: undefined,
        performances: DEFAULT_PERFORMANCES,
        seatHoldMs: 1000,
        eventProcessingDelayMs: 0,
        mockMinDelayMs: 0,
        mockMaxDelayMs: 0,
        ttlMs: 3_600_000,
        maxBookings: 10,
      },
      jwtSecret: 'your-secret-key-change-in-production',
      v2: {
        defaultScenario: 'random',
        completeDelayMs: 2000,
        webhookSecret: 'your_webhook_secret_key',
        serviceAuthToken: 'ops-token-123',
        requireAuth: true,
        extraSchemes: ['legacy', 'standard'],
        paymentTtlMs: 600_000,
        maxPayments: 7,
      },
      fluxpay: {
        policyFile: undefined,
        policy: expect.objectContaining({ services: expect.any(Map) }),
        usageTimeoutMs: 1500,
        webhookUrl: 'http://127.0.0.1:4000/fluxpay',
        schemes: ['standard', 'stripe'],
        ttlMs: 60_000,
        maxRecords: 9,
        maxCreditUsers: 4,
        maxSubscriptions: 3,
        maxBillingSubscriptions: 7,
        dunningDelaysMs: [60_000, 120_000, 90_000_000],
        maxWaitingTickets: 50,
        maxWaitingRooms: 4,
        waitingTicketTtlMs: 1000,
        rateLimitMaxKeys: 7,
      },
      faults: { enabled: false, file: undefined, rules: [], document: undefined, fingerprint: '', maxRules: 5 },
      namespaces: { max: 0 },
      console: { enabled: false, token: 'console-token-1', sessionKey: undefined, sessionTtlMs: 3_600_000, maxLoginFailures: 5, maxRevokedSessions: 100_000 },
    });
  });

  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])('LOG_LEVEL %s is accepted', (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it.each(['json', 'pretty'])('LOG_FORMAT %s is accepted', (format) => {
    expect(loadConfig({ LOG_FORMAT: format }).logFormat).toBe(format);
  });

  it('accepts the rate bounds 0 and 1', () => {
    expect(loadConfig({ RANDOM_APPROVE_RATE: '0' }).scenarios.randomApproveRate).toBe(0);
    expect(loadConfig({ RANDOM_APPROVE_RATE: '1' }).scenarios.randomApproveRate).toBe(1);
  });

  it('accepts PORT bounds 0 and 65535', () => {
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
  });
});

describe('settings that contradict each other, or a 0 that would not mean off (found by a user test: each was taken without a word)', () => {
  it('WEBHOOK_BACKOFF_MAX_MS below WEBHOOK_BACKOFF_MS, WEBHOOK_ORIGIN_CONCURRENCY above WEBHOOK_CONCURRENCY, IDEMPOTENCY_TTL_MS=0: one line each; equal values are taken', () => {
    expect(configError({ WEBHOOK_BACKOFF_MAX_MS: '10' }).message).toBe(
      'Invalid configuration: WEBHOOK_BACKOFF_MAX_MS (10) is below WEBHOOK_BACKOFF_MS (1000): every retry would wait the cap, with no backoff; raise the cap or lower the base',
    );
    expect(configError({ WEBHOOK_ORIGIN_CONCURRENCY: '100', WEBHOOK_CONCURRENCY: '10' }).message).toBe(
      'Invalid configuration: WEBHOOK_ORIGIN_CONCURRENCY (100) is above WEBHOOK_CONCURRENCY (10), the attempts in flight for all receivers together, so it could never be reached; raise WEBHOOK_CONCURRENCY or lower it',
    );
    expect(configError({ IDEMPOTENCY_TTL_MS: '0' }).message).toBe('Invalid configuration: IDEMPOTENCY_TTL_MS must be at least 1 (got "0")');
    expect(loadConfig({ WEBHOOK_BACKOFF_MS: '5000', WEBHOOK_BACKOFF_MAX_MS: '5000', WEBHOOK_CONCURRENCY: '8', WEBHOOK_ORIGIN_CONCURRENCY: '8', IDEMPOTENCY_TTL_MS: '1' }).idempotency.ttlMs).toBe(1);
  });
});

describe('webhook secret', () => {
  it('unset → a generated whsec_ secret, different on each load', () => {
    const a = loadConfig({});
    const b = loadConfig({});
    expect(a.webhookSecretGenerated).toBe(true);
    expect(a.webhookSecret).toMatch(GENERATED_SECRET);
    expect(b.webhookSecret).toMatch(GENERATED_SECRET);
    expect(a.webhookSecret).not.toBe(b.webhookSecret);
  });

  it('set → used as-is', () => {
    expect(loadConfig({ WEBHOOK_SECRET: 'exactly8' })).toMatchObject({ webhookSecret: 'exactly8', webhookSecretGenerated: false });
  });

  it('whsec_ followed by anything but padded base64 stops the start without echoing the value (before, whsec_!!!! signed with an empty key); well-formed ones and secrets without the prefix are taken', () => {
    for (const bad of ['whsec_!!!!!!!!', 'whsec_local-dev-secret', 'whsec_dGVzdC1zZWNyZXQ', 'whsec_dGVz_dC1zZWNyZXQ=', 'whsec_========']) {
      for (const name of ['WEBHOOK_SECRET', 'WEBHOOK_SECRET_PREVIOUS']) {
        const error = configError({ [name]: bad });
        expect(error.message, `${name}=${bad}`).toMatch(new RegExp(`^Invalid configuration: ${name} starts with whsec_ but the rest is not base64 \\(`));
        expect(error.message).not.toContain(bad.slice('whsec_'.length));
      }
    }
    expect(loadConfig({ WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQ=', WEBHOOK_SECRET_PREVIOUS: 'whsec_b2xkLXNlY3JldA==' })).toMatchObject({ webhookSecret: 'whsec_dGVzdC1zZWNyZXQ=' });
    expect(loadConfig({ WEBHOOK_SECRET: 'local-dev-secret' }).webhookSecret).toBe('local-dev-secret');
  });

  it('a too-short secret is rejected without echoing its value', () => {
    const error = configError({ WEBHOOK_SECRET: 'hunter2' });
    expect(error.message).toBe('Invalid configuration: WEBHOOK_SECRET must be at least 8 characters long');
    expect(error.message).not.toContain('hunter2');
  });

  it('the secret stays hidden when other variables are invalid too', () => {
    const error = configError({ WEBHOOK_SECRET: 'pw1', PORT: 'abc' });
    expect(error.message).toBe('Invalid configuration: PORT must be a whole number (got "abc"); WEBHOOK_SECRET must be at least 8 characters long');
    expect(error.message).not.toContain('pw1');
  });
});

describe('invalid configuration', () => {
  it.each([
    [{ PORT: 'abc' }, 'Invalid configuration: PORT must be a whole number (got "abc")'],
    [{ PORT: '70000' }, 'Invalid configuration: PORT must be at most 65535 (got "70000")'],
    [{ PORT: '-1' }, 'Invalid configuration: PORT must be at least 0 (got "-1")'],
    [{ PORT: '80.5' }, 'Invalid configuration: PORT must be a whole number (got "80.5")'],
    [{ RANDOM_APPROVE_RATE: '1.5' }, 'Invalid configuration: RANDOM_APPROVE_RATE must be at most 1 (got "1.5")'],
    [{ RANDOM_APPROVE_RATE: '-0.1' }, 'Invalid configuration: RANDOM_APPROVE_RATE must be at least 0 (got "-0.1")'],
    [{ RANDOM_APPROVE_RATE: 'abc' }, 'Invalid configuration: RANDOM_APPROVE_RATE must be a number (got "abc")'],
    [{ DEFAULT_FAIL_DELAY_MS: '-1' }, 'Invalid configuration: DEFAULT_FAIL_DELAY_MS must be at least 0 (got "-1")'],
    [{ DEFAULT_APPROVE_DELAY_MS: '-200' }, 'Invalid configuration: DEFAULT_APPROVE_DELAY_MS must be at least 0 (got "-200")'],
    [{ DEFAULT_DELAY_DELAY_MS: '600001' }, 'Invalid configuration: DEFAULT_DELAY_DELAY_MS must be at most 600000 (got "600001")'],
    [{ DEFAULT_APPROVE_DELAY_MS: '1.5' }, 'Invalid configuration: DEFAULT_APPROVE_DELAY_MS must be a whole number (got "1.5")'],
    // Ajv reads Infinity as a number within every bound (2026-12-05, a user test: an unbounded store; a limit of -Infinity answered 500).
    [{ STORE_MAX_INTENTS: 'Infinity' }, 'Invalid configuration: STORE_MAX_INTENTS must be a whole number (got "Infinity")'],
    [{ NAMESPACES_MAX: '-Infinity' }, 'Invalid configuration: NAMESPACES_MAX must be a whole number (got "-Infinity")'],
    [{ TIME_SCALE: 'Infinity' }, 'Invalid configuration: TIME_SCALE must be a number (got "Infinity")'],
    [{ TIME_SCALE: '1e999' }, 'Invalid configuration: TIME_SCALE must be a finite number (got "1e999")'],
    // Written in decimal only (before 2026-12-07 Ajv read 0x10 as 16, 1e3 as 1000, 0b1 as 1: a review).
    [{ PORT: '0x10' }, 'Invalid configuration: PORT must be a whole number (got "0x10")'],
    [{ STORE_MAX_INTENTS: '1e3' }, 'Invalid configuration: STORE_MAX_INTENTS must be a whole number (got "1e3")'],
    [{ RANDOM_APPROVE_RATE: '0b1' }, 'Invalid configuration: RANDOM_APPROVE_RATE must be a number (got "0b1")'],
    [
      { LOG_LEVEL: 'loud' },
      'Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    ],
    [{ PUBLIC_URL: 'localhost:8080' }, 'Invalid configuration: PUBLIC_URL must be an absolute http(s) URL (got "localhost:8080")'],
    [{ LOG_FORMAT: 'text' }, 'Invalid configuration: LOG_FORMAT must be one of json, pretty (got "text")'],
    [{ RANDOM_SEED: '-1' }, 'Invalid configuration: RANDOM_SEED must be at least 0 (got "-1")'],
    [{ STORE_MAX_INTENTS: '0' }, 'Invalid configuration: STORE_MAX_INTENTS must be at least 1 (got "0")'],
    [{ WEBHOOK_MAX_RETRIES: '101' }, 'Invalid configuration: WEBHOOK_MAX_RETRIES must be at most 100 (got "101")'],
    [{ WEBHOOK_TIMEOUT_MS: '0' }, 'Invalid configuration: WEBHOOK_TIMEOUT_MS must be at least 1 (got "0")'],
    [{ SEAT_HOLD_MS: '0' }, 'Invalid configuration: SEAT_HOLD_MS must be at least 1 (got "0")'],
    [{ EVENT_PROCESSING_DELAY_MS: '-5' }, 'Invalid configuration: EVENT_PROCESSING_DELAY_MS must be at least 0 (got "-5")'],
    [{ MOCK_MAX_DELAY_MS: '600001' }, 'Invalid configuration: MOCK_MAX_DELAY_MS must be at most 600000 (got "600001")'],
    [{ MOCK_MIN_DELAY_MS: 'fast' }, 'Invalid configuration: MOCK_MIN_DELAY_MS must be a whole number (got "fast")'],
    [{ BOOKINGS_MAX: '0' }, 'Invalid configuration: BOOKINGS_MAX must be at least 1 (got "0")'],
    [{ HTTP_REQUEST_TIMEOUT_MS: '0' }, 'Invalid configuration: HTTP_REQUEST_TIMEOUT_MS must be at least 1 (got "0")'],
    [{ HTTP_HEADERS_TIMEOUT_MS: '9000', HTTP_REQUEST_TIMEOUT_MS: '8000' }, 'Invalid configuration: HTTP_HEADERS_TIMEOUT_MS must not be above HTTP_REQUEST_TIMEOUT_MS (got 9000 > 8000)'],
    [{ BOOKING_TTL_MS: '1.5' }, 'Invalid configuration: BOOKING_TTL_MS must be a whole number (got "1.5")'],
    [{ WEBHOOK_CLAIM_IDLE_MS: '1000', WEBHOOK_TIMEOUT_MS: '1000' }, 'Invalid configuration: WEBHOOK_CLAIM_IDLE_MS must be above WEBHOOK_TIMEOUT_MS (got 1000 <= 1000)'],
    [{ EVENTS_STREAM_MAX_LEN: '0' }, 'Invalid configuration: EVENTS_STREAM_MAX_LEN must be at least 1 (got "0")'],
    [{ WEBHOOK_MAX_DISABLED_URLS: '0' }, 'Invalid configuration: WEBHOOK_MAX_DISABLED_URLS must be at least 1 (got "0")'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector' },
      'Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL',
    ],
    // The exporter's own refusal was a stack trace with the value, password and all (a user test).
    ...['http://', 'http://127.0.0.1:notaport', 'http://user:pw-LEAK@[::1'].map((url): [Record<string, string>, string] => [
      { OTEL_EXPORTER_OTLP_ENDPOINT: url },
      'Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT is not a valid URL (no host, a port that is not a number or above 65535, an unclosed [ of an IPv6 address?), e.g. http://otel-collector:4317 (the value is not shown: it may hold a password)',
    ]),
    // The SDK takes a typo for its default sampler, and a bad ratio for 1: every request traced, silently.
    [
      { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio_typo' },
      'Invalid configuration: OTEL_TRACES_SAMPLER must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio (got "parentbased_traceidratio_typo")',
    ],
    ...['abc', '1%', '1.5', '-0.1', '1e1'].map((arg): [Record<string, string>, string] => [
      { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: arg },
      `Invalid configuration: OTEL_TRACES_SAMPLER=parentbased_traceidratio needs OTEL_TRACES_SAMPLER_ARG, the share of traces to keep, from 0 to 1, e.g. 0.01 (got ${JSON.stringify(arg)})`,
    ]),
    [{ OTEL_TRACES_SAMPLER: 'traceidratio' }, 'Invalid configuration: OTEL_TRACES_SAMPLER=traceidratio needs OTEL_TRACES_SAMPLER_ARG, the share of traces to keep, from 0 to 1, e.g. 0.01 (got none)'],
  ])('%j → %s', (env, message) => {
    const error = configError(env);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigError');
    expect(error.message).toBe(message);
    expect(error.message).not.toContain('\n');
  });

  it('takes a sampler ratio as the OpenTelemetry SDK reads it (a number from 0 to 1, `1e-2` too; a review)', () => {
    for (const arg of ['0', '1', '.5', '1.0', '1e-2', ' 0.25 ']) {
      expect(() => loadConfig({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }), arg).not.toThrow();
    }
  });

  it('never shows an OTLP endpoint it refuses: it may hold a password (a review: a leading space printed it whole)', () => {
    for (const url of [' https://user:s3cret@collector:4317', 'grpc://user:s3cret@collector:4317']) {
      expect(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: url }).message).toBe('Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL');
    }
  });

  it('names every invalid variable, once each, on one line', () => {
    const error = configError({ PORT: 'abc', LOG_LEVEL: 'x', RANDOM_APPROVE_RATE: '2' });
    expect(error.message).toBe(
      'Invalid configuration: PORT must be a whole number (got "abc"); LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "x"); RANDOM_APPROVE_RATE must be at most 1 (got "2")',
    );
  });

  it('a value containing a newline is escaped, keeping the message on one line', () => {
    const error = configError({ LOG_LEVEL: 'info\nerror' });
    expect(error.message).toBe('Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "info\\nerror")');
    expect(error.message.split('\n')).toHaveLength(1);
  });

  it('validation does not fall back to process.env for an invalid value', () => {
    vi.stubEnv('PORT', '9999');
    expect(configError({ PORT: 'abc' }).message).toBe('Invalid configuration: PORT must be a whole number (got "abc")');
  });
});

describe('webhook configuration rules', () => {
  it('rejects an unknown signature scheme naming the variable', () => {
    expect(() => loadConfig({ WEBHOOK_SIGNATURE_SCHEMES: 'standard,hmac' })).toThrow(/^Invalid configuration: WEBHOOK_SIGNATURE_SCHEMES must be a comma-separated list of standard, legacy, stripe \(got "standard,hmac"\)$/);
  });

  it('never echoes CONSOLE_TOKEN, and CONSOLE_ENABLED is true or false', () => {
    expect(() => loadConfig({ CONSOLE_TOKEN: 'short' })).toThrow(/^Invalid configuration: CONSOLE_TOKEN must be at least 8 characters long$/);
    expect(() => loadConfig({ CONSOLE_ENABLED: 'yes' })).toThrow('Invalid configuration: CONSOLE_ENABLED must be one of true, false (got "yes")');
  });

  it('TRUST_PROXY: false, true, or addresses, CIDRs and range names; anything else (a hop count too) stops the start with one line', () => {
    expect(['false', 'true', '10.0.0.0/8, 127.0.0.1', '::1,fd00::/8', 'loopback,uniquelocal'].map((value) => loadConfig({ TRUST_PROXY: value }).http.trustProxy)).toEqual([
      false,
      true,
      ['10.0.0.0/8', '127.0.0.1'],
      ['::1', 'fd00::/8'],
      ['loopback', 'uniquelocal'],
    ]);
    for (const value of ['1', 'yes', '10.0.0.0/33', '10.0.0.300', 'fd00::/129', '10.0.0.0/8/1', '10.0.0.1,', 'private']) {
      expect(configError({ TRUST_PROXY: value }).message, value).toBe(
        `Invalid configuration: TRUST_PROXY must be true, false, or IP addresses, CIDRs and the names loopback, linklocal, uniquelocal separated by commas (got ${JSON.stringify(value)})`,
      );
    }
  });

  it('CONSOLE_SESSION_TTL_MS is at least a minute, CONSOLE_MAX_LOGIN_FAILURES at least 1', () => {
    expect(() => loadConfig({ CONSOLE_SESSION_TTL_MS: '59999' })).toThrow('Invalid configuration: CONSOLE_SESSION_TTL_MS must be at least 60000 (got "59999")');
    expect(() => loadConfig({ CONSOLE_SESSION_TTL_MS: '12h' })).toThrow('Invalid configuration: CONSOLE_SESSION_TTL_MS must be a whole number (got "12h")');
    expect(() => loadConfig({ CONSOLE_MAX_LOGIN_FAILURES: '0' })).toThrow('Invalid configuration: CONSOLE_MAX_LOGIN_FAILURES must be at least 1 (got "0")');
  });

  it('FAULTS_ENABLED is true or false, and false refuses a FAULTS_FILE it would never apply', () => {
    expect(() => loadConfig({ FAULTS_ENABLED: 'off' })).toThrow('Invalid configuration: FAULTS_ENABLED must be one of true, false (got "off")');
    expect(() => loadConfig({ FAULTS_ENABLED: 'false', FAULTS_FILE: '/nonexistent/faults.yaml' })).toThrow(
      'Invalid configuration: FAULTS_FILE is set but FAULTS_ENABLED=false would never apply its rules (unset one of them)',
    );
    expect(loadConfig({ FAULTS_ENABLED: 'false' }).faults).toEqual({ enabled: false, file: undefined, rules: [], document: undefined, fingerprint: '', maxRules: 1000 });
  });

  it('FLUXPAY_DUNNING_DELAYS: ISO 8601 durations (weeks to seconds), positive and increasing', () => {
    expect(loadConfig({ FLUXPAY_DUNNING_DELAYS: 'P1DT12H, P1W' }).fluxpay.dunningDelaysMs).toEqual([129_600_000, 604_800_000]);
    expect(() => loadConfig({ FLUXPAY_DUNNING_DELAYS: 'P3D,P1D' })).toThrow('Invalid configuration: FLUXPAY_DUNNING_DELAYS must be positive and increasing (got P3D,P1D)');
    expect(() => loadConfig({ FLUXPAY_DUNNING_DELAYS: '1 day' })).toThrow(/^Invalid configuration: FLUXPAY_DUNNING_DELAYS must be a comma-separated list of ISO 8601 durations/);
  });

  it('never echoes WEBHOOK_SECRET_PREVIOUS', () => {
    expect(() => loadConfig({ WEBHOOK_SECRET_PREVIOUS: 'short' })).toThrow('Invalid configuration: WEBHOOK_SECRET_PREVIOUS must be at least 8 characters long');
  });

  it('TIME_SCALE: a number from 0.001 to 1000; bad → one line naming it', () => {
    expect(() => loadConfig({ TIME_SCALE: '0' })).toThrow(/^Invalid configuration: TIME_SCALE must be at least 0.001 \(got "0"\)$/);
    expect(() => loadConfig({ TIME_SCALE: 'x' })).toThrow(/^Invalid configuration: TIME_SCALE must be a number \(got "x"\)$/);
    expect(() => loadConfig({ TIME_SCALE: '-1' })).toThrow(/^Invalid configuration: TIME_SCALE must be at least 0.001 \(got "-1"\)$/);
    expect(() => loadConfig({ TIME_SCALE: '1001' })).toThrow(/^Invalid configuration: TIME_SCALE must be at most 1000 \(got "1001"\)$/);
    expect(loadConfig({ TIME_SCALE: '0.001' }).timeScale).toBe(0.001);
    expect(loadConfig({ TIME_SCALE: '1000' }).timeScale).toBe(1000);
  });

  it('TIME_SCALE scales every simulated duration once, at load, in whole ms (a positive one stays ≥ 1 ms); network times and retention do not change', () => {
    const c = loadConfig({ TIME_SCALE: '0.01', V2_COMPLETE_DELAY_MS: '150', MOCK_MIN_DELAY_MS: '0', FLUXPAY_DUNNING_DELAYS: 'PT1S,P1D' });
    expect(c.timeScale).toBe(0.01);
    expect(c.scenarios).toEqual({ approveDelayMs: 2, failDelayMs: 1, delayDelayMs: 30, randomApproveRate: 0.8, timeScale: 0.01 });
    expect(c.bookings).toMatchObject({ seatHoldMs: 6000, eventProcessingDelayMs: 1, mockMinDelayMs: 0, mockMaxDelayMs: 15 });
    expect([c.v2.completeDelayMs, c.fluxpay.usageTimeoutMs, c.fluxpay.dunningDelaysMs]).toEqual([2, 300, [10, 864_000]]);
    expect([c.webhook.backoffMs, c.webhook.backoffMaxMs]).toEqual([10, 600]);
    // Real time: the network, client-facing limits and how long records are kept.
    expect([c.webhook.timeoutMs, c.webhook.claimIdleMs, c.webhook.logTtlMs, c.idempotency.ttlMs, c.store.intentTtlMs, c.bookings.ttlMs, c.fluxpay.waitingTicketTtlMs, c.http.requestTimeoutMs]).toEqual([
      1000, 30_000, 86_400_000, 86_400_000, 86_400_000, 86_400_000, 3_600_000, 30_000,
    ]);
    expect(loadConfig({ TIME_SCALE: '10' }).bookings.seatHoldMs).toBe(6_000_000);
  });

  it('defaults the per-origin concurrency to half the pool, at least 1', () => {
    expect(loadConfig({ WEBHOOK_CONCURRENCY: '1' }).webhook.originConcurrency).toBe(1);
    expect(loadConfig({ WEBHOOK_CONCURRENCY: '9' }).webhook.originConcurrency).toBe(5);
  });
});

describe('Payment Server v3 (/api/v2) configuration rules', () => {
  it('MIX: weights for scenario mix and for payments that name none; /api/v2 defaults to mix when it is set and V2_DEFAULT_SCENARIO is not', () => {
    const plain = loadConfig({});
    expect([plain.scenarios.mix, plain.v2.defaultScenario]).toEqual([undefined, 'approve']);
    const mixed = loadConfig({ MIX: ' approve : 90 , fail:7,delay:3' });
    expect(mixed.scenarios.mix?.entries).toEqual([
      { outcome: 'approve', weight: 90 },
      { outcome: 'fail', weight: 7 },
      { outcome: 'delay', weight: 3 },
    ]);
    expect(mixed.v2.defaultScenario).toBe('mix');
    expect(loadConfig({ MIX: 'fail:1', V2_DEFAULT_SCENARIO: 'approve' }).v2.defaultScenario).toBe('approve');
  });

  it('the callbacks are signed with PAYMENT_WEBHOOK_SECRET, else with WEBHOOK_SECRET', () => {
    expect(loadConfig({ WEBHOOK_SECRET: 'whsec_bWFpbi1zZWNyZXQ=' }).v2.webhookSecret).toBe('whsec_bWFpbi1zZWNyZXQ=');
    expect(loadConfig({ WEBHOOK_SECRET: 'whsec_bWFpbi1zZWNyZXQ=', PAYMENT_WEBHOOK_SECRET: 'doc-secret' }).v2.webhookSecret).toBe('doc-secret');
    const generated = loadConfig({});
    expect(generated.v2.webhookSecret).toBe(generated.webhookSecret);
  });

  it.each([
    [{ V2_DEFAULT_SCENARIO: 'maybe' }, 'Invalid configuration: V2_DEFAULT_SCENARIO must be one of approve, fail, delay, random, mix (got "maybe")'],
    [{ V2_COMPLETE_DELAY_MS: '600001' }, 'Invalid configuration: V2_COMPLETE_DELAY_MS must be at most 600000 (got "600001")'],
    [{ V2_REQUIRE_AUTH: 'yes' }, 'Invalid configuration: V2_REQUIRE_AUTH must be one of true, false (got "yes")'],
    [{ V2_EXTRA_SIGNATURE_SCHEMES: 'payment-v2' }, 'Invalid configuration: V2_EXTRA_SIGNATURE_SCHEMES must be a comma-separated list of standard, legacy, stripe (got "payment-v2")'],
    [{ V2_PAYMENTS_MAX: '0' }, 'Invalid configuration: V2_PAYMENTS_MAX must be at least 1 (got "0")'],
    [{ FLUXPAY_USAGE_TIMEOUT_MS: '0' }, 'Invalid configuration: FLUXPAY_USAGE_TIMEOUT_MS must be at least 1 (got "0")'],
    [{ FLUXPAY_WEBHOOK_URL: 'ftp://x' }, 'Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got "ftp://x")'],
    // As the APIs' webhook URLs (a review, 2026-12-07: these started).
    [{ FLUXPAY_WEBHOOK_URL: 'http://127.0.0.1:99999/x' }, 'Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got "http://127.0.0.1:99999/x")'],
    [{ FLUXPAY_WEBHOOK_URL: 'http://127.0.0.1/a\u0001b' }, 'Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got "http://127.0.0.1/a\\u0001b")'],
    [{ FLUXPAY_SIGNATURE_SCHEMES: 'hmac' }, 'Invalid configuration: FLUXPAY_SIGNATURE_SCHEMES must be a comma-separated list of standard, legacy, stripe (got "hmac")'],
    [{ FLUXPAY_POLICY_FILE: '/nonexistent/policy.yaml' }, "Invalid configuration: FLUXPAY_POLICY_FILE: cannot read /nonexistent/policy.yaml: ENOENT: no such file or directory, open '/nonexistent/policy.yaml'"],
    [{ V2_PAYMENT_TTL_MS: '-1' }, 'Invalid configuration: V2_PAYMENT_TTL_MS must be at least 0 (got "-1")'],
    [{ V2_REQUIRE_AUTH: 'true' }, 'Invalid configuration: V2_REQUIRE_AUTH=true needs SERVICE_AUTH_TOKEN (the token callers must send)'],
    [{ V2_DEFAULT_SCENARIO: 'mix' }, 'Invalid configuration: V2_DEFAULT_SCENARIO=mix needs MIX (the weights, e.g. approve:90,fail:7,delay:3)'],
    [{ MIX: 'approve:90,fail:x' }, 'Invalid configuration: MIX gives fail the weight "x"; a weight is an integer from 0 to 1000000 (got "approve:90,fail:x")'],
    [{ MIX: 'approve:0' }, 'Invalid configuration: MIX must give at least one outcome a weight above 0 (got "approve:0")'],
    [{ MIX: 'approve:1,random:1' }, 'Invalid configuration: MIX names an unknown outcome "random" (outcomes: approve, fail, delay) (got "approve:1,random:1")'],
  ])('%j → %s', (env, message) => {
    expect(configError(env).message).toBe(message);
  });

  it('never echoes SERVICE_AUTH_TOKEN or PAYMENT_WEBHOOK_SECRET', () => {
    const error = configError({ SERVICE_AUTH_TOKEN: 'has space secret', PAYMENT_WEBHOOK_SECRET: 's'.repeat(4097), PORT: 'abc' });
    expect(error.message).toBe(
      'Invalid configuration: PORT must be a whole number (got "abc"); PAYMENT_WEBHOOK_SECRET must be at most 4096 characters long; SERVICE_AUTH_TOKEN must be visible ASCII characters (no spaces)',
    );
    expect(error.message).not.toMatch(/has space|ssss/);
  });
});

describe('fault rules configuration (FAULTS_FILE, FAULTS_MAX_RULES)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const file = (name: string, text: string): string => {
    dir ??= mkdtempSync(join(tmpdir(), 'paysim-faults-'));
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads the rules of a YAML file at start, keeping ids the file gives', () => {
    const path = file('faults.yaml', 'rules:\n  - id: slow-intents\n    match: { route: /v1/sim/intent }\n    action: { type: latency, distribution: fixed, params: { ms: 50 } }\n  - action: { type: error, status: 503 }\n');
    const config = loadConfig({ FAULTS_FILE: path });
    expect(config.faults.file).toBe(path);
    expect(config.faults.rules.map((r) => [r.id, r.input.action])).toEqual([
      ['slow-intents', { type: 'latency', distribution: { kind: 'fixed', ms: 50 } }],
      [undefined, { type: 'error', status: 503, retryAfterSeconds: 1 }],
    ]);
    // Its text's SHA-256: the same text gives the same fingerprint, any other byte another.
    const text = 'rules:\n  - id: slow-intents\n    match: { route: /v1/sim/intent }\n    action: { type: latency, distribution: fixed, params: { ms: 50 } }\n  - action: { type: error, status: 503 }\n';
    expect(config.faults.fingerprint).toBe(createHash('sha256').update(text).digest('hex').slice(0, 32));
    expect(loadConfig({ FAULTS_FILE: file('same.yaml', text) }).faults.fingerprint).toBe(config.faults.fingerprint);
    expect(loadConfig({ FAULTS_FILE: file('commented.yaml', `# a comment\n${text}`) }).faults.fingerprint).not.toBe(config.faults.fingerprint);
  });

  it('stops the start with one line naming FAULTS_FILE and the rule at fault', () => {
    const bad = file('bad.json', JSON.stringify({ rules: [{ action: { type: 'latency', distribution: 'fixed', params: { ms: 1 } } }, { action: { type: 'error', status: 418 } }] }));
    expect(configError({ FAULTS_FILE: bad }).message).toBe('Invalid configuration: FAULTS_FILE: rules[1].action.status must be one of 500, 502, 503, 504, 429');
    expect(configError({ FAULTS_FILE: '/nonexistent/faults.yaml' }).message).toBe("Invalid configuration: FAULTS_FILE: cannot read /nonexistent/faults.yaml: ENOENT: no such file or directory, open '/nonexistent/faults.yaml'");
    // A rule that could never apply (2026-12-04): an outcome rule on no route that takes one. (One whose
    // window is over does not stop the start: the faults plugin leaves it out, with a warning.)
    const over = file('over.yaml', 'rules:\n  - window: { until: "2026-01-01T00:00:00Z" }\n    action: { type: timeout, ms: 5 }\n');
    expect(loadConfig({ FAULTS_FILE: over }).faults.rules).toHaveLength(1);
    const nowhere = file('nowhere.yaml', 'rules:\n  - match: { dialect: bookings, method: GET }\n    action: { type: outcome, approve: true }\n');
    expect(configError({ FAULTS_FILE: nowhere }).message).toMatch(/^Invalid configuration: FAULTS_FILE: rules\[0\]\.match matches none of the routes an outcome rule applies on, so the rule would never apply: its dialect, method and route must allow one of POST \/v1\/sim\/intent \(native\), .*\(fluxpay\)$/);
    const two = file('two.yaml', 'rules:\n  - action: { type: duplicate }\n  - action: { type: duplicate }\n');
    expect(configError({ FAULTS_FILE: two, FAULTS_MAX_RULES: '1' }).message).toBe('Invalid configuration: FAULTS_FILE holds 2 rules, more than FAULTS_MAX_RULES (1)');
    expect(configError({ FAULTS_MAX_RULES: '0' }).message).toBe('Invalid configuration: FAULTS_MAX_RULES must be at least 1 (got "0")');
  });
});

describe('bookings configuration rules', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  function file(name: string, text: string): string {
    dir ??= mkdtempSync(join(tmpdir(), 'paysim-config-'));
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it('MOCK_MIN_DELAY_MS above MOCK_MAX_DELAY_MS is an error naming both; equal values are fine', () => {
    expect(configError({ MOCK_MIN_DELAY_MS: '2000' }).message).toBe('Invalid configuration: MOCK_MIN_DELAY_MS must not be above MOCK_MAX_DELAY_MS (got 2000 > 1500)');
    expect(configError({ MOCK_MIN_DELAY_MS: '10', MOCK_MAX_DELAY_MS: '5' }).message).toBe('Invalid configuration: MOCK_MIN_DELAY_MS must not be above MOCK_MAX_DELAY_MS (got 10 > 5)');
    expect(loadConfig({ MOCK_MIN_DELAY_MS: '700', MOCK_MAX_DELAY_MS: '700' }).bookings).toMatchObject({ mockMinDelayMs: 700, mockMaxDelayMs: 700 });
  });

  it('never echoes JWT_SECRET', () => {
    const secret = 'x'.repeat(4097);
    const error = configError({ JWT_SECRET: secret, PORT: 'abc' });
    expect(error.message).toBe('Invalid configuration: PORT must be a whole number (got "abc"); JWT_SECRET must be at most 4096 characters long');
    expect(error.message).not.toContain('xxxx');
  });

  it('PERFORMANCES_FILE: its catalog replaces the default, with the defaults filled in', () => {
    const path = file('catalog.json', JSON.stringify([{ id: 'perf_tiny', title: 'Tiny', venue: 'Room', startsAt: '2026-05-01T10:00:00Z', rows: ['A'], seatsPerRow: 4 }]));
    expect(loadConfig({ PERFORMANCES_FILE: path }).bookings).toMatchObject({
      performancesFile: path,
      performances: [{ id: 'perf_tiny', title: 'Tiny', venue: 'Room', startsAt: '2026-05-01T10:00:00.000Z', rows: ['A'], seatsPerRow: 4, priceMinor: 30000, currency: 'KRW' }],
    });
  });

  it.each([
    ['a missing file', (): string => '/nonexistent/paysim/catalog.json', /^Invalid configuration: PERFORMANCES_FILE: cannot read \/nonexistent\/paysim\/catalog\.json: ENOENT/],
    ['a file that is not JSON', (): string => file('bad.json', '[{"id": "x",\n'), /^Invalid configuration: PERFORMANCES_FILE: .*bad\.json is not valid JSON: /],
    ['a catalog with a bad field', (): string => file('field.json', JSON.stringify([{ id: 'p', title: 'T', venue: 'V', startsAt: '2026-05-01T10:00:00Z', seatsPerRow: 0 }])), /^Invalid configuration: PERFORMANCES_FILE: .*field\.json: Invalid performances: \/0\/seatsPerRow: /],
    ['an empty catalog', (): string => file('empty.json', '[]'), /^Invalid configuration: PERFORMANCES_FILE: .*empty\.json: Invalid performances: \(root\): /],
  ])('PERFORMANCES_FILE with %s stops the start with one line naming it', (_name, path, message) => {
    const error = configError({ PERFORMANCES_FILE: path() });
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
  });
});

describe('documentation of the variables', () => {
  const root = join(import.meta.dirname, '..', '..');
  it.each(['.env.example', 'README.md'])('%s names every variable the service reads', (file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const missing = ENV_VARIABLES.filter((name) => !new RegExp(`(^|[^A-Z_])${name}([^A-Z_]|$)`, 'm').test(text));
    expect(missing).toEqual([]);
  });
});

describe('store back end and processes (issue 14)', () => {
  it('the scheduler polls every 250 ms with STORE=redis unless SCHEDULER_POLL_MS says otherwise (0: off); never with memory unless set', () => {
    expect(loadConfig({ STORE: 'redis' }).scheduler.pollMs).toBe(250);
    expect(loadConfig({ STORE: 'redis', SCHEDULER_POLL_MS: '0' }).scheduler.pollMs).toBe(0);
    expect(loadConfig({ STORE: 'memory' }).scheduler.pollMs).toBe(0);
    expect(loadConfig({ SCHEDULER_POLL_MS: '40' }).scheduler.pollMs).toBe(40);
  });

  it('due jobs run 64 at once with STORE=redis unless SCHEDULER_CONCURRENCY says otherwise (up to a claimed batch, 512); one after another with memory', () => {
    expect(loadConfig({ STORE: 'redis' }).scheduler.concurrency).toBe(64);
    expect(loadConfig({ STORE: 'redis', SCHEDULER_CONCURRENCY: '512' }).scheduler.concurrency).toBe(BATCH);
    expect(loadConfig({ STORE: 'redis', SCHEDULER_CONCURRENCY: '1' }).scheduler.concurrency).toBe(1);
    expect(loadConfig({ STORE: 'memory' }).scheduler.concurrency).toBe(1);
    // Empty counts as unset (.env.example lists it so).
    expect(loadConfig({ STORE: 'memory', SCHEDULER_CONCURRENCY: '' }).scheduler.concurrency).toBe(1);
  });

  it('a claimed job is its replica’s for 30 s unless SCHEDULER_LEASE_MS says otherwise', () => {
    expect(loadConfig({ STORE: 'redis' }).scheduler.leaseMs).toBe(30_000);
    expect(loadConfig({ STORE: 'redis', SCHEDULER_LEASE_MS: '2000' }).scheduler.leaseMs).toBe(2000);
  });

  it.each([
    [{ STORE: 'postgres' }, 'Invalid configuration: STORE must be one of memory, redis (got "postgres")'],
    [{ REDIS_KEY_PREFIX: 'has space:' }, 'Invalid configuration: REDIS_KEY_PREFIX must be visible ASCII characters (no spaces) (got "has space:")'],
    [{ SCHEDULER_POLL_MS: '60001' }, 'Invalid configuration: SCHEDULER_POLL_MS must be at most 60000 (got "60001")'],
    [{ SCHEDULER_LEASE_MS: '999' }, 'Invalid configuration: SCHEDULER_LEASE_MS must be at least 1000 (got "999")'],
    [{ CLUSTER_WORKERS: '0' }, 'Invalid configuration: CLUSTER_WORKERS must be at least 1 (got "0")'],
    [{ STORE: 'redis', SCHEDULER_CONCURRENCY: '0' }, 'Invalid configuration: SCHEDULER_CONCURRENCY must be at least 1 (got "0")'],
    [{ STORE: 'redis', SCHEDULER_CONCURRENCY: '513' }, 'Invalid configuration: SCHEDULER_CONCURRENCY must be at most 512 (got "513")'],
    [{ STORE: 'redis', SCHEDULER_CONCURRENCY: 'many' }, 'Invalid configuration: SCHEDULER_CONCURRENCY must be a whole number (got "many")'],
    [
      { SCHEDULER_CONCURRENCY: '8' },
      'Invalid configuration: SCHEDULER_CONCURRENCY=8 needs STORE=redis (with STORE=memory due work runs one job after another, in due order, with no round trips to wait on)',
    ],
    [
      { CLUSTER_WORKERS: '2' },
      'Invalid configuration: CLUSTER_WORKERS=2 needs STORE=redis (with STORE=memory each worker would keep its own intents, keys and seats, and a request could reach a worker that does not know them)',
    ],
  ])('%j → %s', (env, message) => {
    expect(configError(env).message).toBe(message);
  });

  it('never echoes REDIS_URL, which may carry a password', () => {
    const error = configError({ REDIS_URL: 'http://user:hunter22@redis:6379' });
    expect(error.message).toBe('Invalid configuration: REDIS_URL must be a redis:// or rediss:// URL, without spaces or line breaks (a value read from a file keeps its last newline)');
    expect(error.message).not.toContain('hunter22');
  });

  it('a REDIS_URL with a line break (read from a file) is refused saying so; a scheme in capitals is taken, in lower case (the Redis client takes REDISS:// for a plain connection)', () => {
    expect(configError({ REDIS_URL: 'redis://:hunter22@redis:6379\n' }).message).toBe(
      'Invalid configuration: REDIS_URL must be a redis:// or rediss:// URL, without spaces or line breaks (a value read from a file keeps its last newline)',
    );
    expect(loadConfig({ REDIS_URL: 'REDISS://:Pass@Host:6380/2' }).redis.url).toBe('rediss://:Pass@Host:6380/2');
    expect(loadConfig({ REDIS_URL: 'Redis://host' }).redis.url).toBe('redis://host');
  });

  it.each([
    ['redis://:hunter22@127.0.0.1:99999', 'is not a valid URL (a port above 65535, an unclosed [ of an IPv6 address, or a /, ? or # in the password that is not percent-encoded?)'],
    ['redis://:hunter22@[::1:6379', 'is not a valid URL (a port above 65535, an unclosed [ of an IPv6 address, or a /, ? or # in the password that is not percent-encoded?)'],
    ['redis://:hunter22%zz@127.0.0.1:6379', 'has a user name or password with a % that starts no percent-encoding (write % as %25)'],
    ['redis://:hunter22@127.0.0.1:6379/db0', 'names a database that is not a number (the path is /0, /1, …)'],
  ])('a REDIS_URL the Redis client could not take (%s) stops the start with one line, its password never shown', (url, problem) => {
    const error = configError({ REDIS_URL: url });
    expect(error.message).toBe(`Invalid configuration: REDIS_URL ${problem}, e.g. redis://user:password@host:6379/0 (the value is not shown: it may hold a password)`);
    expect(error.message).not.toContain('hunter22');
  });

  it('the REDIS_URL forms the Redis client takes are taken', () => {
    for (const url of ['redis://localhost', 'redis://:pass@host:6379/', 'rediss://host', 'redis://[::1]:6379/0', 'redis://host:6379/0/', 'redis://host/?path=/tmp/redis.sock', 'redis://user:p%25ss@host:6380/15']) {
      expect(loadConfig({ REDIS_URL: url }).redis.url).toBe(url);
    }
  });

  describe.skipIf(!hasOpenssl)('REDIS_TLS_CERT, REDIS_TLS_KEY and REDIS_TLS_CA (a client certificate, its key, CAs for Redis\' certificate)', () => {
    let ca: TestCa;
    let other: TestCa;
    let dir: string;
    beforeAll(() => {
      [ca, other] = [makeTestCa(), makeTestCa()];
      dir = mkdtempSync(join(tmpdir(), 'paysim-redis-tls-'));
    });
    afterAll(() => {
      ca?.remove();
      other?.remove();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });
    const file = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const URL = 'rediss://127.0.0.1:6380';

    it('read at the start: the certificate and key as they are, the CAs with Node\'s own', () => {
      const files = readRedisTlsFiles({ cert: ca.clientCertFile, key: ca.clientKeyFile, ca: ca.caFile });
      expect(files).toEqual({ cert: readFileSync(ca.clientCertFile, 'utf8'), key: readFileSync(ca.clientKeyFile, 'utf8'), ca: [...getCACertificates('default'), readFileSync(ca.caFile, 'utf8').trim()] });
      expect(loadConfig({ REDIS_URL: URL }).redis).toEqual({ url: URL, keyPrefix: 'paysim:' });
    });

    /** Node's TLS context (what `tls.createSecureContext` makes), not text. */
    const A_CONTEXT = expect.objectContaining({ constructor: createSecureContext({}).constructor, context: expect.anything() });

    it('made into one TLS context at the start, which every connection reuses; the configuration holds neither the key nor the certificates as text', () => {
      const tls = loadConfig({ STORE: 'redis', REDIS_URL: URL, REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: ca.clientKeyFile, REDIS_TLS_CA: ca.caFile }).redis.tls;
      // Before (a review): { cert, key, ca } as text, of which Node made a context at each connection
      // and reconnect (its ~120 CAs and more: 30-100 ms of the event loop each), the key's text in the configuration.
      expect(tls).toEqual({ secureContext: A_CONTEXT, clientCertificate: true });
      const key = readFileSync(ca.clientKeyFile, 'utf8').split('\n')[1] as string;
      expect(inspect(tls, { depth: null })).not.toContain(key);
      expect(loadConfig({ STORE: 'redis', REDIS_URL: URL, REDIS_TLS_CA: ca.caFile }).redis.tls).toEqual({ secureContext: A_CONTEXT, clientCertificate: false });
    });

    it.each([
      ['the key without the certificate', (): Record<string, string> => ({ REDIS_TLS_KEY: ca.clientKeyFile }), (): string => 'REDIS_TLS_KEY is set without REDIS_TLS_CERT: the client certificate (REDIS_TLS_CERT) and its private key (REDIS_TLS_KEY) go together; set both or neither'],
      ['the certificate without the key', (): Record<string, string> => ({ REDIS_TLS_CERT: ca.clientCertFile }), (): string => 'REDIS_TLS_CERT is set without REDIS_TLS_KEY: the client certificate (REDIS_TLS_CERT) and its private key (REDIS_TLS_KEY) go together; set both or neither'],
      ['a missing certificate', (): Record<string, string> => ({ REDIS_TLS_CERT: '/nonexistent/client.pem', REDIS_TLS_KEY: ca.clientKeyFile }), (): string => 'REDIS_TLS_CERT: cannot read /nonexistent/client.pem (ENOENT)'],
      ['a missing key', (): Record<string, string> => ({ REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: '/nonexistent/client.key' }), (): string => 'REDIS_TLS_KEY: cannot read /nonexistent/client.key (ENOENT)'],
      ['a directory for the CA', (): Record<string, string> => ({ REDIS_TLS_CA: dir }), (): string => `REDIS_TLS_CA: cannot read ${dir} (EISDIR)`],
      ['a certificate that is not PEM', (): Record<string, string> => ({ REDIS_TLS_CERT: file('cert.der', 'MIIB not pem'), REDIS_TLS_KEY: ca.clientKeyFile }), (): string => `REDIS_TLS_CERT: ${join(dir, 'cert.der')} is not a PEM file of certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)`],
      ['a certificate whose PEM block is broken', (): Record<string, string> => ({ REDIS_TLS_CERT: file('broken.pem', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'), REDIS_TLS_KEY: ca.clientKeyFile }), (): string => `REDIS_TLS_CERT: ${join(dir, 'broken.pem')} is not a PEM file of certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)`],
      ['a certificate given as the key', (): Record<string, string> => ({ REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: ca.clientCertFile }), (): string => `REDIS_TLS_KEY: ${ca.clientCertFile} is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, or of RSA or EC; a key with a passphrase is not supported)`],
      ['a key of another certificate', (): Record<string, string> => ({ REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: other.clientKeyFile }), (): string => `REDIS_TLS_KEY: ${other.clientKeyFile} is not the private key of the certificate in REDIS_TLS_CERT (${ca.clientCertFile}); give the key the certificate was made for`],
      ['a CA file that is a key', (): Record<string, string> => ({ REDIS_TLS_CA: ca.clientKeyFile }), (): string => `REDIS_TLS_CA: ${ca.clientKeyFile} is not a PEM file of certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)`],
    ])('%s stops the start with one line naming the setting and the path, never a file\'s contents', (_name, settings, problem) => {
      const error = configError({ STORE: 'redis', REDIS_URL: URL, ...settings() });
      expect(error.message).toBe(`Invalid configuration: ${problem()}`);
      const key = readFileSync(ca.clientKeyFile, 'utf8').split('\n')[1] as string;
      expect(error.message).not.toContain(key);
    });

    it('with a redis:// REDIS_URL (no TLS, which would not use them): refused on one line naming those set', () => {
      expect(configError({ STORE: 'redis', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: ca.clientKeyFile }).message).toBe(
        'Invalid configuration: REDIS_TLS_CERT, REDIS_TLS_KEY are for TLS and need a rediss:// REDIS_URL (redis:// connects without TLS and would not use them)',
      );
      expect(configError({ STORE: 'redis', REDIS_TLS_CA: ca.caFile }).message).toBe('Invalid configuration: REDIS_TLS_CA is for TLS and needs a rediss:// REDIS_URL (redis:// connects without TLS and would not use it)');
    });

    it('with STORE=memory (no Redis, which would not use them): refused on one line naming those set, before any file is read', () => {
      expect(configError({ REDIS_URL: URL, REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: ca.clientKeyFile, REDIS_TLS_CA: ca.caFile }).message).toBe(
        'Invalid configuration: REDIS_TLS_CERT, REDIS_TLS_KEY, REDIS_TLS_CA are for TLS and need STORE=redis (STORE=memory uses no Redis and would not use them)',
      );
      expect(configError({ REDIS_URL: URL, REDIS_TLS_CA: '/nonexistent/ca.pem' }).message).toBe('Invalid configuration: REDIS_TLS_CA is for TLS and needs STORE=redis (STORE=memory uses no Redis and would not use it)');
    });
  });

  it('a URL setting that is refused is shown without its password', () => {
    const error = configError({ FLUXPAY_WEBHOOK_URL: 'ftp://hooks:hunter22@127.0.0.1:4000/fluxpay' });
    expect(error.message).toBe('Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got "ftp://hooks:***@127.0.0.1:4000/fluxpay")');
  });

  it("a URL setting that is refused is shown without a user name given alone or its query's secrets (a user test, 2026-12-07: both were shown)", () => {
    expect(configError({ FLUXPAY_WEBHOOK_URL: 'ftp://fu:p4ss@127.0.0.1/x?token=q1&x=1' }).message).toBe(
      'Invalid configuration: FLUXPAY_WEBHOOK_URL must be an absolute http(s) URL (got "ftp://fu:***@127.0.0.1/x?token=[redacted]&x=1")',
    );
    expect(configError({ FLUXPAY_WEBHOOK_URL: 'http://usertok3n@ bad host/x?api_key=q2' }).message).toMatch(/^Invalid configuration: FLUXPAY_WEBHOOK_URL .*\(got "http:\/\/\*\*\*@ bad host\/x\?api_key=\[redacted\]"\)$/);
  });
});

describe('the longest wait inside a handler (the Redis hold of a running request’s Idempotency-Key)', () => {
  it('counts each wait a request can make while its key is held, scaled by TIME_SCALE', () => {
    // Defaults: a FluxPay subscription change of five attempts, each a 3 s `delay` confirm.
    expect(longestHandlerWaitMs(loadConfig({}))).toBe(5 * 3_000);
    // A /api/v2 create decided by the `delay` scenario waits it, then its callback's first attempt.
    const base = { DEFAULT_DELAY_DELAY_MS: '1000', MOCK_MAX_DELAY_MS: '1500', WEBHOOK_TIMEOUT_MS: '10000' };
    expect(longestHandlerWaitMs(loadConfig(base))).toBe(1_000 + 10_000);
    expect(longestHandlerWaitMs(loadConfig({ ...base, V2_COMPLETE_DELAY_MS: '30000' }))).toBe(30_000 + 10_000);
    expect(longestHandlerWaitMs(loadConfig({ ...base, MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '90000' }))).toBe(90_000);
    expect(longestHandlerWaitMs(loadConfig({ ...base, DEFAULT_DELAY_DELAY_MS: '600000', TIME_SCALE: '2' }))).toBe(5 * 1_200_000);
  });
});
