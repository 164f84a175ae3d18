import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { AggregatorRegistry } from 'prom-client';
import { RedisNamespaceList, type Listing } from '../../adapters/redis/namespace-list.ts';
import { loggedListening } from '../../adapters/redis/notices.ts';
import { errorFields } from '../../adapters/redis/unavailable.ts';
import { DomainError } from '../../core/errors.ts';
import { DEFAULT_NAMESPACE } from '../../core/faults/service.ts';
import { isNamespaceName } from '../../core/namespace.ts';
import { CUMULATIVE, type MetricsJson } from '../../metrics-json.ts';

/**
 * The registry of namespaces (issue 15, `X-Sim-Namespace`): parallel CI jobs share one paysim
 * without seeing each other. Each namespace other than `default` is a whole simulator of its own,
 * built by `buildApp` on its first request: its own stores (memory, or Redis keys under
 * `<prefix>ns:<name>:`), seat maps, scheduler, webhook dispatcher and delivery log, fault rules and
 * random stream (RANDOM_SEED mixed with its name). Isolation therefore holds by construction, for
 * every port at once, and the `default` namespace is the service exactly as it is without namespaces.
 *
 * - `reset` (DELETE /v1/sim/namespaces/{ns}) waits for the requests the namespace's app is
 *   answering (at most RESET_WAIT_MS), then closes it without draining its due work and drops its
 *   state (Redis: its keys); its next request, which waits for the reset, starts it afresh.
 * - With Redis, the namespaces that exist are a hash shared by the replicas; each replica starts
 *   the apps of namespaces made elsewhere (so their due work and webhooks run everywhere) and
 *   closes those reset elsewhere, every NAMESPACE_SYNC_MS.
 * - The drain at shutdown drains every namespace (one reset elsewhere meanwhile is closed, not
 *   drained: `sync`); closing the root closes them all.
 *
 * No route here: the namespaces plugin (./namespaces.ts) decorates the root app with this
 * registry, hands each request that names a namespace to its app (`handOver`), and answers in the
 * dialect's shape what cannot be handed over.
 */

/**
 * How long a reset waits for the requests its namespace's app is still answering (a latency rule's
 * wait, a payment's mock delay) before it closes the app and drops the state: a request answered
 * after the reset's answer would name a payment the reset had dropped (before 2026-12-05 it did).
 */
const RESET_WAIT_MS = 10_000;
/** How often a replica looks at the namespaces the others made or reset (STORE=redis). */
const NAMESPACE_SYNC_MS = 1000;
/** At most one warning this often when the shared namespace list cannot be read. */
const SYNC_ERROR_LOG_INTERVAL_MS = 10_000;
/**
 * STORE=redis: how long a reset waits, once the namespace is off the shared list, before it deletes
 * its keys: every other replica's sync (each NAMESPACE_SYNC_MS) closes its app of it meanwhile, so
 * that no request after the reset's answer is served by one (its work would be wiped, or orphaned).
 */
const RESET_SETTLE_MS = NAMESPACE_SYNC_MS + 500;
/** STORE=redis: how long a request waits for a reset under way on another replica before it is answered 503 (retry). */
const RESET_WAIT_MAX_MS = 10_000;
/** How often a request waiting for a reset on another replica asks again. */
const RESET_POLL_MS = 50;
/** More namespaces than NAMESPACES_MAX: the request is refused, nothing is made. */
export class NamespaceLimitError extends DomainError {
  constructor(max: number) {
    super(
      'NAMESPACE_LIMIT',
      max === 0
        ? 'Namespaces are switched off (NAMESPACES_MAX=0): send no X-Sim-Namespace, or X-Sim-Namespace: default.'
        : `${max} namespaces exist already (NAMESPACES_MAX); reset one with DELETE /v1/sim/namespaces/{namespace} or use an existing one.`,
    );
  }
}

export interface NamespaceInfo {
  namespace: string;
  /** When it was first used (ms since the epoch). */
  createdAt: number;
}

/** The namespaces of this process, as the namespaces plugin (./namespaces.ts) uses them. */
export interface NamespaceRegistry {
  /** The max besides `default` (NAMESPACES_MAX). */
  readonly max: number;
  /** How many namespaces besides `default` have an app in this process now. */
  readonly started: number;
  /** STORE=redis: the namespaces and their state are shared by the replicas and outlive a restart. */
  readonly shared: boolean;
  /** The app of a namespace other than `default`, made and started on first use. Rejects with NamespaceLimitError when there is no room. */
  get(namespace: string): Promise<FastifyInstance>;
  /** The app of a namespace that exists in this process (`default`: the root app), without making one. */
  peek(namespace: string): Promise<FastifyInstance | undefined>;
  /** Every namespace that exists besides `default` (on Redis: on any replica), oldest first. */
  list(): Promise<NamespaceInfo[]>;
  /** Drops everything a namespace holds; whether it existed. */
  reset(namespace: string): Promise<boolean>;
  /**
   * The metrics of this process's namespaces, for /metrics to add to the root's: each live one's,
   * and the counters and histograms of those reset (so the sums never go backwards).
   */
  metrics(): Promise<MetricsJson[]>;
  /** The app of a namespace started in this process, once it is ready: a request is handed to it without waiting. */
  ready(namespace: string): FastifyInstance | undefined;
  /** Hands a request to a namespace's app, counted until it is answered (a reset waits for it). */
  handOver(child: FastifyInstance, req: IncomingMessage, res: ServerResponse): void;
}

export interface NamespacesOptions {
  max: number;
  /** Builds a namespace's app (not yet ready) with its own stores. */
  build(namespace: string): Promise<FastifyInstance>;
  /** STORE=redis: the shared client, and the root's key prefix (namespace keys are `<prefix>ns:<name>:…`). */
  redis?: { client: Redis; keyPrefix: string } | undefined;
  /**
   * How often this replica reads the shared list (NAMESPACE_SYNC_MS by default). Tests lengthen it,
   * so that only a reset told on the channel can close a namespace's app in time. A reset still
   * waits RESET_SETTLE_MS for the others, whatever their interval.
   */
  syncMs?: number | undefined;
}

/**
 * Counts that go with the namespace all the same: each series of `fault_rule_hits_total` is one
 * rule's, and a rule's series leaves /metrics with the rule (the namespace's rules go with it).
 */
const GONE_WITH_THE_NAMESPACE: ReadonlySet<string> = new Set(['fault_rule_hits_total']);

interface Entry {
  app: Promise<FastifyInstance>;
  /** Set once the app is ready: requests are handed over without waiting. */
  ready: FastifyInstance | undefined;
  createdAt: number;
  /** STORE=redis: the listing's token when this app was started (or its createdAt, listed by an earlier version); another one there means it was reset and made again since. */
  listedAs: string | undefined;
  /** Order of start in this process: a sync leaves alone what started after it read the list. */
  seq: number;
}

/**
 * Makes the registry of the root app `app` (its clock, lifecycle and log), with its hooks on `app`:
 * the sync with the other replicas from onReady (STORE=redis), each namespace's drain in the root's,
 * and every namespace's app closed with the root.
 */
export function createNamespaceRegistry(app: FastifyInstance, options: NamespacesOptions): NamespaceRegistry {
  const { max, redis } = options;
  const { clock } = app.core;
  const entries = new Map<string, Entry>();
  /** STORE=redis: the namespaces every replica of the key prefix sees. */
  const shared = redis === undefined ? undefined : new RedisNamespaceList(redis.client, redis.keyPrefix);
  /** The requests each namespace's app is answering, and who waits for it to have none (a reset). */
  const answering = new WeakMap<FastifyInstance, { count: number; idle: Array<() => void> }>();
  const handOver = (child: FastifyInstance, req: IncomingMessage, res: ServerResponse): void => {
    let state = answering.get(child);
    if (state === undefined) answering.set(child, (state = { count: 0, idle: [] }));
    state.count++;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (--state.count === 0) for (const resolve of state.idle.splice(0)) resolve();
    };
    res.once('finish', end);
    res.once('close', end);
    child.routing(req, res);
  };
  /** Resolves once the app answers no request, or after `ms` (true: it was idle). */
  const idle = (child: FastifyInstance, ms: number): Promise<boolean> => {
    const state = answering.get(child);
    if (state === undefined || state.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      timer.unref();
      state.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  };
  let started = 0;
  let closed = false;

  const start = (namespace: string, createdAt: number, listedAs?: string): Entry => {
    const entry: Entry = { app: Promise.resolve(undefined as never), ready: undefined, createdAt, listedAs, seq: ++started };
    entry.app = (async () => {
      // A build that fails closes what it set up (buildApp); a ready that fails, here.
      const child = await options.build(namespace);
      try {
        await child.ready();
      } catch (error) {
        await child.close().catch(() => undefined);
        throw error;
      }
      if (closed || entries.get(namespace) !== entry) {
        // Reset or shut down while it was being built.
        await child.close();
        throw new DomainError('NAMESPACE_UNAVAILABLE', `The namespace ${namespace} was reset while it was being set up; send the request again.`);
      }
      entry.ready = child;
      app.log.info({ namespace }, 'namespace started');
      return child;
    })();
    entry.app.catch((error: unknown) => {
      if (entries.get(namespace) === entry) entries.delete(namespace);
      if (!(error instanceof DomainError)) app.log.error({ err: error, namespace }, 'a namespace could not be set up');
    });
    entries.set(namespace, entry);
    return entry;
  };

  /** The app of a namespace (undefined only with `onlyListed`, for one not listed). */
  const obtain = async (namespace: string, onlyListed: boolean): Promise<FastifyInstance | undefined> => {
    // A request during a reset is served by the fresh namespace, once the old one is gone.
    await resetting.get(namespace)?.catch(() => undefined);
    const known = entries.get(namespace);
    if (known !== undefined) return known.app;
    // None is started once the drain has begun: its app would not be drained (its deliveries cut by the close).
    if (closed || app.lifecycle.shuttingDown) throw new DomainError('NAMESPACE_UNAVAILABLE', 'The service is shutting down.');
    // With Redis the bound is the shared list's, whichever replicas made them (before 2026-12-04 each
    // replica counted its own: two replicas held twice NAMESPACES_MAX, and refused namespaces stayed listed).
    if (max === 0 || (shared === undefined && entries.size >= max)) throw new NamespaceLimitError(max);
    if (shared === undefined) return start(namespace, clock.now()).app;
    const listing = await listed(namespace, clock.now(), onlyListed);
    if (listing === undefined) return undefined;
    const raced = entries.get(namespace);
    if (raced !== undefined) return raced.app;
    return start(namespace, listing.createdAt, listing.listedAs).app;
  };

  const get = async (namespace: string): Promise<FastifyInstance> => (await obtain(namespace, false)) as FastifyInstance;

  /**
   * STORE=redis: the namespace on the shared list (a namespace another replica made first keeps
   * its time), once no reset of it is under way on another replica, and what it is listed as
   * (undefined: not listed, and `onlyListed`); Redis away: the request fails as any store call
   * does (STORE_UNAVAILABLE), and nothing is started.
   */
  const listed = async (namespace: string, createdAt: number, onlyListed: boolean): Promise<Listing | undefined> => {
    const list = shared as RedisNamespaceList;
    const giveUpAt = Date.now() + RESET_WAIT_MAX_MS;
    const token = randomUUID();
    for (;;) {
      const outcome = await list.register(namespace, createdAt, token, max, onlyListed);
      if (outcome.kind === 'full') throw new NamespaceLimitError(max);
      if (outcome.kind === 'not_listed') return undefined;
      if (outcome.kind === 'listed') return outcome.listing;
      if (Date.now() >= giveUpAt) throw new DomainError('NAMESPACE_UNAVAILABLE', `The namespace ${namespace} is being reset on another replica; send the request again.`);
      await delay(RESET_POLL_MS);
    }
  };

  /** The counts of reset namespaces, added up. */
  let retired: MetricsJson = [];
  const stop = async (entry: Entry): Promise<void> => {
    const child = await entry.app.catch(() => undefined);
    if (child === undefined) return;
    const counts = (await child.metrics.registry.getMetricsAsJSON()).filter((metric) => CUMULATIVE.has(String(metric.type)) && !GONE_WITH_THE_NAMESPACE.has(metric.name));
    retired = retired.length === 0 ? counts : await AggregatorRegistry.aggregate([retired, counts]).getMetricsAsJSON();
    await child.close();
  };

  /** Resets under way: a request for the namespace waits for it, and the sync leaves it alone. */
  const resetting = new Map<string, Promise<boolean>>();
  const reset = async (namespace: string): Promise<boolean> => {
    const running = resetting.get(namespace);
    if (running !== undefined) return running;
    const done = (async () => {
      // Its app here first (requests wait for the reset: `resetting`); then off the shared list
      // and marked as under way, so that no replica starts it again while its keys go (a request
      // there waits for the reset's end, as here). The mark goes whatever happens, a lost reply included.
      const entry = entries.get(namespace);
      entries.delete(namespace);
      // New requests wait for the reset (`resetting`); those under way are answered first.
      const child = await entry?.app.catch(() => undefined);
      if (child !== undefined && !(await idle(child, RESET_WAIT_MS))) app.log.warn({ namespace, wait_ms: RESET_WAIT_MS }, 'namespace reset: requests still under way after the wait answer after it, their work dropped with the namespace');
      const token = randomUUID();
      let unlisted = false;
      let keys = 0;
      try {
        try {
          // Off the shared list, the other replicas told at once (they close their apps of it now,
          // not at their next sync: before 2026-12-06 they ran its due work and sent its webhooks,
          // those this app handed back as it closed too, for up to a second of the reset, in a user
          // test), then this replica's app.
          if (shared !== undefined) unlisted = await shared.beginReset(namespace, token);
        } finally {
          if (entry !== undefined) await stop(entry);
        }
        if (shared !== undefined) {
          // The replicas that missed the message close their apps of it meanwhile, at their sync
          // (before 2026-12-04 a request right after the reset's answer could reach one's old app:
          // its payment never decided).
          await delay(RESET_SETTLE_MS);
          keys = await shared.wipe(namespace);
        }
      } finally {
        await shared?.endReset(namespace, token).catch(() => undefined);
      }
      const existed = unlisted || entry !== undefined;
      if (existed) app.log.info({ namespace, ...(shared === undefined ? {} : { redis_keys: keys }) }, 'namespace reset');
      return existed;
    })();
    resetting.set(namespace, done);
    try {
      return await done;
    } finally {
      resetting.delete(namespace);
    }
  };

  const list = async (): Promise<NamespaceInfo[]> => {
    if (shared === undefined) return [...entries].map(([namespace, entry]) => ({ namespace, createdAt: entry.createdAt })).sort(byAge);
    return [...(await shared.all())].map(([namespace, listing]) => ({ namespace, createdAt: listing.createdAt })).sort(byAge);
  };

  /**
   * STORE=redis: start what other replicas made, close what they reset. Draining (shutting down),
   * only the latter: its drain keeps running the apps it has, and one of a namespace reset
   * elsewhere would go on making its due work and sending its webhooks, writing their records
   * after the reset wiped its keys (before 2026-12-06 a draining replica synced no more).
   */
  let lastSyncErrorAt = Number.NEGATIVE_INFINITY;
  const sync = async (): Promise<void> => {
    if (shared === undefined || closed) return;
    try {
      const readAfter = started;
      const listed = await shared.all();
      for (const [namespace, listing] of listed) {
        // None is started once the drain has begun (as `obtain`): its app would not be drained.
        if (app.lifecycle.shuttingDown) break;
        // The shared list holds NAMESPACES_MAX at most (its script): each listed one runs here too.
        if (!entries.has(namespace) && !resetting.has(namespace) && isNamespaceName(namespace)) start(namespace, listing.createdAt, listing.listedAs);
      }
      for (const [namespace, entry] of entries) {
        // Started after the list was read (a request's, while this sync waited on a close): not in it yet.
        if (resetting.has(namespace) || entry.seq > readAfter) continue;
        const listedAs = listed.get(namespace)?.listedAs;
        // Not listed (reset elsewhere), or listed anew since this app started (reset and made again
        // elsewhere, a sync of this replica missed meanwhile): this app's state is gone.
        if (listedAs !== undefined && (entry.listedAs === undefined || listedAs === entry.listedAs)) continue;
        entries.delete(namespace);
        // Still starting: no longer the entry, its start closes it once ready (else it ran until the next sync).
        if (entry.ready === undefined) continue;
        await stop(entry);
        app.log.info(
          { namespace },
          listedAs === undefined
            ? 'namespace no longer in the shared list (reset on another replica, or lost by a Redis restarted without persistence): closed here'
            : 'namespace reset and made again on another replica since it started here: closed here, started afresh at the next sync or request',
        );
      }
    } catch (error) {
      const now = Date.now();
      if (now - lastSyncErrorAt < SYNC_ERROR_LOG_INTERVAL_MS) return;
      lastSyncErrorAt = now;
      app.log.warn(errorFields(error), 'the shared list of namespaces could not be read; trying again');
    }
  };
  // One sync at a time: one asked for while another runs (a reset told on the channel) follows it.
  let syncing: Promise<void> | undefined;
  let syncAgain = false;
  const syncOnce = (): Promise<void> => {
    if (syncing !== undefined) {
      syncAgain = true;
      return syncing;
    }
    syncing = sync().finally(() => {
      syncing = undefined;
      if (syncAgain && !closed) {
        syncAgain = false;
        void syncOnce();
      }
    });
    return syncing;
  };
  let syncTimer: NodeJS.Timeout | undefined;
  const scheduleSync = (): void => {
    syncTimer = setTimeout(() => void syncOnce().finally(() => !closed && scheduleSync()), options.syncMs ?? NAMESPACE_SYNC_MS);
    syncTimer.unref();
  };

  const metrics = async (): Promise<MetricsJson[]> => {
    const live = await Promise.all([...entries.values()].flatMap((e) => (e.ready === undefined ? [] : [e.ready.metrics.registry.getMetricsAsJSON()])));
    return retired.length === 0 ? live : [...live, retired];
  };
  const peek = async (namespace: string): Promise<FastifyInstance | undefined> => {
    if (namespace === DEFAULT_NAMESPACE) return app;
    const known = entries.get(namespace);
    if (known !== undefined) return known.app.catch(() => undefined);
    // Listed by another replica and not started here yet (its sync would within a second): started
    // now, never listed by a peek. Shutting down, or Redis away: its error (503).
    if (shared === undefined || max === 0) return undefined;
    return obtain(namespace, true);
  };

  // Each namespace's app drains within the root's whole budget (its deadline), not only the
  // root's producers' phase: its own phases leave its deliveries their reserve.
  app.lifecycle.onDrain(async (_budgetMs, deadline) => {
    const handOff = app.lifecycle.handingOff;
    await Promise.all([...entries.values()].map(async (entry) => (await entry.app.catch(() => undefined))?.lifecycle.drain(Math.max(0, deadline - Date.now()), { handOff })));
  });
  let stopListening: (() => void) | undefined;
  const syncS = (options.syncMs ?? NAMESPACE_SYNC_MS) / 1000;
  app.addHook('onReady', async () => {
    if (shared === undefined) return;
    scheduleSync();
    // A reset elsewhere: its app here is closed now, not at the next sync.
    stopListening = shared.listen(
      (namespace) => {
        if (entries.has(namespace) && !resetting.has(namespace)) void syncOnce();
      },
      // Refused (an ACL without the channel or @pubsub): said once, since a reset then waits for the sync.
      loggedListening(app.log, {}, {
        notices: 'namespace reset notices',
        meanwhile: `a namespace reset on another replica is closed here at the next sync (within ${syncS} s), not at once`,
        again: 'a reset on another replica closes its namespace here at once again',
        othersMeanwhile: `a namespace reset here is closed on the other replicas at their next sync (within ${syncS} s), not at once`,
        othersAgain: 'a reset here closes its namespace on the other replicas at once again',
      }),
    );
  });
  app.addHook('preClose', async () => {
    closed = true;
    clearTimeout(syncTimer);
    stopListening?.();
  });
  app.addHook('onClose', async () => {
    const all = [...entries.values()];
    entries.clear();
    await Promise.all(all.map(stop));
  });

  return {
    max,
    shared: shared !== undefined,
    get started() {
      return entries.size;
    },
    get,
    peek,
    list,
    reset,
    metrics,
    ready: (namespace) => entries.get(namespace)?.ready,
    handOver,
  };
}

function byAge(a: NamespaceInfo, b: NamespaceInfo): number {
  return a.createdAt - b.createdAt || (a.namespace < b.namespace ? -1 : 1);
}