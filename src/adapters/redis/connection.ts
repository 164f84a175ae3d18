import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisTls } from './tls-files.ts';

/**
 * Where the Redis back end lives: `REDIS_URL` (default redis://127.0.0.1:6379), the prefix of every
 * key (`REDIS_KEY_PREFIX`, default `paysim:`), and with rediss:// the client certificate, its key
 * and the CAs of `REDIS_TLS_CERT`, `REDIS_TLS_KEY` and `REDIS_TLS_CA` (tls-files.ts).
 */
export interface RedisConnectionOptions {
  url: string;
  keyPrefix: string;
  tls?: RedisTls;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_REDIS_KEY_PREFIX = 'paysim:';

/**
 * One client for the adapters of a process. ioredis reconnects by itself; a command issued while
 * the connection is down waits in its offline queue for at most `maxRetriesPerRequest` reconnects
 * and then fails, so a store call answers an error instead of hanging. The key prefix is not set
 * on the client: each adapter takes it and names every key itself (its Lua scripts build the
 * names of keys that depend on a record, which a client-side prefix would not reach).
 *
 * No ready check (`enableReadyCheck: false`): with it, ioredis holds every command while a Redis
 * it has reached is still loading its data set (a restart with a large AOF) and sends them when the
 * load ends, so a request waited as long as the load (11 s of a 17 s load, measured) and a command
 * whose reply a dropped connection lost was run again then, however late. Without it the commands
 * go at once and Redis refuses them (`LOADING`, never run), which the adapters answer as
 * STORE_UNAVAILABLE; `redisLoading` tells /readyz and the start that Redis is loading. (ioredis'
 * 'ready' event no longer means that Redis serves: the stores' plugin emits `LOADED` when a load
 * it saw ends.)
 *
 * The TLS context of the files goes in the client's options, which `duplicate()` copies: every connection of the
 * process (the stream readers, the notices' subscriber) sends the same client certificate.
 */
export function createRedisClient(options: Pick<RedisConnectionOptions, 'url' | 'tls'>): Redis {
  return new Redis(options.url, {
    ...(options.tls === undefined ? {} : { tls: { secureContext: options.tls.secureContext } }),
    maxRetriesPerRequest: 2,
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableAutoPipelining: true,
    enableReadyCheck: false,
    retryStrategy: reconnectDelay,
    reconnectOnError: readonlyReconnects(),
  });
}

/**
 * The last bound on a command's wait for its reply (ioredis' `commandTimeout`, whose error the
 * guarded stores answer as STORE_UNAVAILABLE), for a connection the process' own watch does not
 * look at: one whose first exchange goes unanswered (a silent Redis took it). On a serving
 * connection the watch (`openRedis`) finds a silent Redis sooner (2 s) and fails what is in flight
 * then. Long, because ioredis' timer runs before the reply waiting in the socket is read: a stall
 * of this process as long as it (a VM paused, a throttled container) would fail commands Redis ran.
 * The delivery queue's blocking reader has none (`delivery-queue.ts`).
 */
export const COMMAND_TIMEOUT_MS = 10_000;

/** After a `READONLY` reply that made the client connect again, the time before another may. */
export const READONLY_RECONNECT_MS = 1000;

/**
 * A reply of a replica to a write (`READONLY`): after a failover the open connection stays on the
 * old primary, now a replica, which refuses every write. The client connects again, so that a
 * `REDIS_URL` whose name follows the primary (a managed Redis, a Service in front of Sentinel)
 * reaches the new one; at most once per READONLY_RECONNECT_MS, so that while the name has not moved
 * (or REDIS_URL names a replica) the reads and /readyz go on working, as with a Redis full or
 * unable to write its AOF. Before 2026-12-06 each refused write dropped the connection, and the
 * service's own writes kept /readyz at 503 "the connection closed" nearly all the time (a user
 * test). The refused call itself is not sent again: it answers 503 (STORE_UNAVAILABLE) and its
 * client retries.
 */
export function readonlyReconnects(now: () => number = Date.now): (this: unknown, error: Error) => boolean {
  // One second per client: ioredis calls it as its options' method, and `duplicate()` (the stream
  // readers, the reset subscriber) gives each client a copy of them (a review: one shared second
  // left a reader on the old primary while the busy main client took every slot).
  const lastBy = new WeakMap<object, number>();
  return function reconnectOnReadonly(this: unknown, error: Error): boolean {
    if (!error.message.startsWith('READONLY')) return false;
    const client = typeof this === 'object' && this !== null ? this : lastBy;
    const at = now();
    if (at - (lastBy.get(client) ?? Number.NEGATIVE_INFINITY) < READONLY_RECONNECT_MS) return false;
    lastBy.set(client, at);
    return true;
  };
}

/** Redis loading its data set (after a restart, from its AOF or RDB): how far it is, when its `INFO persistence` says. */
export interface RedisLoading {
  /** Share loaded, 0–100; undefined when Redis would not say (`INFO` refused to the user by an ACL). */
  percent: number | undefined;
}

/** Redis' refusal of a command while it loads its data set. */
export function isLoadingError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('LOADING ');
}

/**
 * Whether Redis is loading its data set now: a `PING`, which it refuses meanwhile (`LOADING`), then
 * `INFO persistence` for how far it is. Rejects as the `PING` does otherwise (Redis unreachable).
 */
export async function redisLoading(client: Redis): Promise<RedisLoading | undefined> {
  try {
    await client.ping();
    return undefined;
  } catch (error) {
    if (!isLoadingError(error)) throw error;
  }
  const info = await client.info('persistence').catch(() => '');
  const percent = /^loading_loaded_perc:(.*)$/m.exec(info)?.[1];
  return { percent: percent === undefined ? undefined : Number(percent) };
}

/**
 * `loading` in words, for /readyz and the log: "43 % loaded". Not Redis' own estimate of the time
 * left (`loading_eta_seconds`), which said "about 1 s left" at 3 % of a 10 s load.
 */
export function shownLoading(loading: RedisLoading): string {
  return loading.percent === undefined ? 'how far, Redis does not say' : `${Math.floor(loading.percent)} % loaded`;
}

/**
 * Events of the service's own on its Redis client (not ioredis'): a store call that Redis refused
 * because it is loading its data set (`LOADING_SEEN`: it may have started on a live connection, a
 * replica's resync, where no reconnect tells), and the end of a load the stores' plugin watched
 * (`LOADED`: what is laid out on each reconnect is laid out again then).
 */
export const LOADING_SEEN = 'paysim:loading-seen';
export const LOADED = 'paysim:loaded';

/**
 * Waits between reconnects: 50 ms more each time, at most `RECONNECT_MAX_MS` (ioredis' default
 * goes to 2 s). A command waits for at most `maxRetriesPerRequest` reconnects (with
 * auto-pipelining, one reconnect more: measured with ioredis 6 against a closed port, 1.2 s at
 * 200 ms, 3.0 s at 500 ms), so this bounds how long a call made while Redis is away takes to
 * answer 503 STORE_UNAVAILABLE (about a second), and how soon the service is back after Redis is.
 * A reconnect that is refused costs next to nothing, five a second included.
 */
export const RECONNECT_MAX_MS = 200;

function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 50, RECONNECT_MAX_MS);
}

/** Options of a REDIS_URL's query that are shown as they are: none of the others (`password`, `username`, `sentinelPassword`, …) is. */
const SHOWN_URL_OPTIONS: ReadonlySet<string> = new Set(['db', 'family']);

/**
 * `url` without its password, for logs and /readyz: the password, a user part without one (a
 * password written without its colon, which Redis then takes as a user name), and the value of
 * every query option but the database and address family (ioredis takes `?password=` too).
 */
export function shownRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    else if (parsed.username !== '') parsed.username = '***';
    for (const name of new Set(parsed.searchParams.keys())) if (!SHOWN_URL_OPTIONS.has(name)) parsed.searchParams.set(name, '***');
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'REDIS_URL';
  }
}

/** A Lua script run with EVALSHA (loaded by an EVAL the first time Redis does not know it): one atomic store operation. */
export type Script = (keys: readonly string[], args: ReadonlyArray<string | number>) => Promise<unknown>;

/**
 * `lua` as a function of its keys and arguments, run with EVALSHA; when Redis does not know the
 * script (its first use, or Redis restarted and lost its script cache) the call is made again with
 * EVAL, which also loads it. `name` names the script for the reader of its call site; Redis knows
 * it by its SHA-1.
 *
 * Not ioredis' `defineCommand`: every auto-pipelined batch of commands is a new ioredis Pipeline,
 * and a Pipeline copies every defined command onto itself as it is built (about 200 properties
 * for this service's scripts, for each batch): under `make bench-cluster` that was 3 % of the
 * service's time and much of its garbage.
 */
export function defineScript(client: Redis, _name: string, lua: string): Script {
  const sha = createHash('sha1').update(lua).digest('hex');
  return (keys, args) =>
    client.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT')) return client.eval(lua, keys.length, ...keys, ...args);
      throw error;
    });
}

/** At most this many expired records go per script run (an insert after a long pause stays short); a store's `sweep` loops. */
export const SWEEP_BATCH = 500;

/** Runs a sweep script until a run looks at fewer than `SWEEP_BATCH` records; `run` answers [removed, looked at]. */
export async function sweepInBatches(run: () => Promise<[number, number]>): Promise<number> {
  let removed = 0;
  for (;;) {
    const [gone, looked] = await run();
    removed += gone;
    if (looked < SWEEP_BATCH) return removed;
  }
}

/**
 * How long a call kept by its token alone (a FluxPay change's reply, a delivery queued, a fault
 * rule's claim) is recognised when run again: ioredis sends a command again on its next connection,
 * within a couple of reconnects (about a second, `RECONNECT_MAX_MS`) or fails it, and Redis refuses
 * it while it loads (no ready check, above), so ten seconds is ample; only behind a proxy that takes
 * connections while Redis is away can it come later (README). Redis' own expiry (`PX`).
 */
export const RESENT_WITHIN_MS = 10_000;

/**
 * A token of one store call whose script changes a record, for the script to keep on what it
 * changed: the same call run again, as ioredis sends a command again whose reply a dropped
 * connection lost, finds its token and answers what it did, instead of doing it twice (a second
 * refund) or refusing its own change (a 409 for its own cancel or payment, an outbox event counted
 * by no relay). Another call has a token of its own. Used by intents' refunds and cancels (`rt`,
 * `ct`), bookings' begin, record, transition and expiry (`ct`), the outbox's marks (`mk`),
 * idempotency begins, seat holds and billing updates (`ct`), and FluxPay's changes whose reply is
 * kept under it (`fluxpay.ts`, `KEEPS_REPLY`).
 */
export function callToken(): string {
  return randomUUID();
}
