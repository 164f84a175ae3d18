import type { ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import { isStoreUnavailable, unavailableReason } from '../../core/errors.ts';

/**
 * Shutdown in the order an orchestrator expects: readiness fails first (so load balancers stop
 * sending), pending work is drained while the server still answers reads, then the server closes
 * and in-flight requests finish. From the drain's start a request that may change something (any
 * method but GET, HEAD and OPTIONS) is refused, 503 SHUTTING_DOWN (the request-context plugin),
 * and the drain first waits for those it was answering: so the work it then waits for is all
 * there is. Before 2026-12-05 such requests were taken during the drain, and a create made after
 * the decisions' phase had its decision and webhook neither waited for nor reported (a user test).
 */

/** `budgetMs`: the drainer's phase's share of the budget; `deadline`: when the whole drain's budget ends (epoch ms, real time). */
export type Drainer = (budgetMs: number, deadline: number) => Promise<void>;

/**
 * `start`: what must hold from the drain's first moment (the webhook dispatcher's deadline for
 * beginning attempts), run at once. Then the requests that may change something still being
 * answered end (the lifecycle's own wait). Producers (pending decisions, payments in flight) drain
 * next; then `shared`, what a replica alone on a shared store sends of every replica's work once
 * the producers have made theirs (the shared queue's webhooks and retries), within the producers'
 * time; then delivery: the webhooks that producers' last decisions create are then in the
 * dispatcher's queue when it drains.
 */
export type DrainPhase = 'start' | 'producers' | 'shared' | 'delivery';

export interface Lifecycle {
  /**
   * Set when the drain starts: readiness fails, the server still answers reads, and a request that
   * may change something is refused, 503 SHUTTING_DOWN (the request-context plugin).
   */
  shuttingDown: boolean;
  /**
   * Set by `leave`, before the drain (SHUTDOWN_DELAY_MS): readiness fails and nothing else changes,
   * so a load balancer checking /readyz takes the replica out while it still serves everything.
   */
  leaving: boolean;
  /** Fails readiness (`leaving`) for `delayMs` of real time while the service runs as usual, then resolves. */
  leave(delayMs: number): Promise<void>;
  /**
   * Set as the drain starts (`handOffWhen`): the store is shared and another replica is alive to do
   * this one's shared work (due decisions, the delivery stream), so drainers wait only for what is
   * this process's own (payments in flight on its timers, attempts it began, requests it holds).
   */
  handingOff: boolean;
  /** Set when the server closes, after the drain: new requests get 503 in their dialect's shape. */
  closing: boolean;
  /** Registers work to finish before the server closes (pending decisions, queued webhooks). */
  onDrain(drainer: Drainer, phase?: DrainPhase): void;
  /**
   * The delivery phase needs this much of the budget (attempts begun by then end within it): the
   * producers' phase ends that much earlier, at most half the budget earlier. Default 0.
   */
  reserveForDelivery(ms: number): void;
  /** How a drain learns whether it hands its shared work off: the number of other replicas alive to take it (asked once, as it starts; unset: never). */
  handOffWhen(othersAlive: () => Promise<number>): void;
  /**
   * Work a request waits for inside this process before it answers (an /api/v2 create's callback, a
   * delayed FluxPay confirm): the drain waits for it before its producers' phase, handing off or
   * not, so that the request is answered before the close. Answers `work`.
   */
  hold<T>(work: Promise<T>): Promise<T>;
  /** Requests waiting inside this process now (`hold`). */
  readonly held: number;
  /**
   * Counts a request that may change something (any method but GET, HEAD, OPTIONS), once its body
   * has arrived, until its response closes or `endWrite`: the drain waits for these first. Once per response.
   */
  trackWrite(response: ServerResponse): void;
  /** A tracked write will change nothing after all (a fault rule's `timeout` holds it, then resets it): no longer counted. */
  endWrite(response: ServerResponse): void;
  /** Such requests being answered now. */
  readonly writes: number;
  /**
   * Marks the service not ready and runs the drainers, phase by phase, within `budgetMs` of real
   * time in all; `handOff` given (a namespace's app, told by the root's drain) instead of asking.
   */
  drain(budgetMs: number, options?: { handOff?: boolean }): Promise<void>;
  /**
   * A drainer's wait (`waitUntil`) that also ends once this app closes: a namespace's app, its
   * namespace reset on another replica during the drain, whatever it waited for deleted with it.
   */
  waitWhileOpen<T>(budgetMs: number, read: () => Promise<T>, done: (left: T) => boolean, beforeWait?: () => void): Promise<T>;
}

/** The most a drain waits to learn whether others are alive (a Redis away answers late or never: no hand-off). */
const HAND_OFF_CHECK_MS = 500;

const PHASES: readonly DrainPhase[] = ['producers', 'shared', 'delivery'];

/** Methods that change nothing: served during the drain; any other is refused from its start. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** How often `waitUntil` reads again what a drainer waits for. */
const DRAIN_POLL_MS = 10;

/**
 * A drainer's wait: reads what is left (`read`) until `done` says it is, or `budgetMs` of real
 * time runs out (a test's manual clock never moves on its own), every 10 ms, and answers the last
 * reading, for the drainer's end line. `beforeWait` runs before each wait (to hurry the work on).
 */
export async function waitUntil<T>(budgetMs: number, read: () => Promise<T>, done: (left: T) => boolean, beforeWait?: () => void): Promise<T> {
  const deadline = Date.now() + budgetMs;
  let left = await read();
  while (!done(left) && Date.now() < deadline) {
    beforeWait?.();
    await delay(Math.min(DRAIN_POLL_MS, deadline - Date.now()), undefined, { ref: false });
    left = await read();
  }
  return left;
}

/** Whether others are alive to take this replica's shared work: false without a check, or when it fails or is late. */
async function askOthers(check: (() => Promise<number>) | undefined, withinMs: number, log: FastifyBaseLogger): Promise<boolean> {
  if (check === undefined) return false;
  try {
    // Late: none (the timer, unref'd, is left to fire).
    const others = await Promise.race([check(), delay(withinMs, 0, { ref: false })]);
    if (others > 0) {
      log.info(
        { other_replicas: others },
        'shutdown: other replicas are alive: the due work and the webhook deliveries this one has not begun are left to them; it waits only for its own (attempts it began, payments on its timers, requests waiting in it)',
      );
    }
    return others > 0;
  } catch (error) {
    log.warn({ err: error }, 'shutdown: whether other replicas are alive could not be learned; draining as if alone');
    return false;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export default fp(
  async (app) => {
    const drainers: Array<{ drainer: Drainer; phase: DrainPhase }> = [];
    let deliveryReserveMs = 0;
    let othersAlive: (() => Promise<number>) | undefined;
    let held = 0;
    let writes = 0;
    /**
     * The responses of writes ended early (`endWrite`) that have not closed yet: rarely any. Neither a
     * per-request closure nor a WeakSet on the hot path: with both, creates ran 0.855× as fast.
     */
    const endedEarly = new Set<ServerResponse>();
    function writeClosed(this: ServerResponse): void {
      if (endedEarly.size > 0 && endedEarly.delete(this)) return;
      writes--;
    }
    // A drainer that fails is reported; the others and the close go on. Those that failed because
    // the store is unavailable (Redis away) are one warning for the phase: what they hold waits in
    // the store (before 2026-12-06 an error each, with its stack: a user test counted 4 per worker
    // for one stop). Closed meanwhile (a namespace's app, its namespace reset on another replica),
    // the phases left are not run: their lines would tell of an app that is gone (its queue "unavailable").
    const runPhase = async (phase: DrainPhase, left: number, deadline: number): Promise<void> => {
      if (lifecycle.closing) return;
      const unavailable: unknown[] = [];
      await Promise.all(
        drainers
          .filter((d) => d.phase === phase)
          .map((d) =>
            d.drainer(left, deadline).catch((error: unknown) => {
              if (isStoreUnavailable(error)) unavailable.push(error);
              else app.log.error({ err: error, phase }, 'shutdown: draining failed; closing without it');
            }),
          ),
      );
      if (unavailable.length > 0) {
        app.log.warn(
          // Redis' words, no stack, as every line of an outage (before 2026-12-08 the first one's err).
          { phase, drainers: unavailable.length, redis_error: unavailableReason(unavailable[0]) },
          `shutdown: ${unavailable.length} part(s) of the ${phase} phase could not drain, the store being unavailable; what they hold stays in it, for the next start or another replica`,
        );
      }
    };
    const lifecycle: Lifecycle = {
      shuttingDown: false,
      leaving: false,
      async leave(delayMs) {
        lifecycle.leaving = true;
        await delay(delayMs);
      },
      handingOff: false,
      closing: false,
      onDrain: (drainer, phase = 'producers') => void drainers.push({ drainer, phase }),
      reserveForDelivery: (ms) => void (deliveryReserveMs = Math.max(deliveryReserveMs, ms)),
      handOffWhen: (check) => void (othersAlive = check),
      hold(work) {
        held++;
        return work.finally(() => held--);
      },
      get held() {
        return held;
      },
      trackWrite(response) {
        writes++;
        response.on('close', writeClosed);
      },
      endWrite(response) {
        if (endedEarly.has(response)) return;
        endedEarly.add(response);
        writes--;
      },
      get writes() {
        return writes;
      },
      waitWhileOpen(budgetMs, read, done, beforeWait) {
        return waitUntil(budgetMs, read, (left) => lifecycle.closing || done(left), beforeWait);
      },
      async drain(budgetMs, options = {}) {
        lifecycle.shuttingDown = true;
        const deadline = Date.now() + budgetMs;
        lifecycle.handingOff = options.handOff ?? (await askOthers(othersAlive, Math.min(HAND_OFF_CHECK_MS, budgetMs), app.log));
        // Handing off, the producers' phase ends at once: nothing to keep for the delivery phase.
        const reserved = lifecycle.handingOff ? 0 : Math.min(deliveryReserveMs, budgetMs / 2);
        await runPhase('start', Math.max(0, deadline - Date.now()), deadline);
        // The requests that may change something, taken before the drain began, end first (those
        // waiting in this process, `hold`, among them; `held` is read too, for work held outside a
        // request): what they make is then there for the producers.
        const answering = await waitUntil(Math.max(0, deadline - Date.now() - reserved), async () => Math.max(writes, held), (n) => n === 0);
        if (answering > 0) app.log.warn({ waiting_requests: answering }, 'shutdown: requests still waiting for their answer when the drain budget ran out (their connections are closed; a retry answers on another replica or after the restart)');
        for (const phase of PHASES) {
          await runPhase(phase, Math.max(0, deadline - Date.now() - (phase === 'delivery' ? 0 : reserved)), deadline);
        }
      },
    };
    app.decorate('lifecycle', lifecycle);
    app.addHook('preClose', async () => {
      lifecycle.shuttingDown = true;
      lifecycle.closing = true;
    });
  },
  { name: 'paysim-lifecycle' },
);
