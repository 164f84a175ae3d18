import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import { sendProblem } from '../../http/error-handler.ts';

/**
 * Load shedding with @fastify/under-pressure: above the OVERLOAD_* thresholds, requests get 503
 * OVERLOADED with `Retry-After`, in the shape of the dialect that owns the path. Routes that set
 * their own `pressureHandler` (health, readiness, metrics) are exempt.
 */
export async function registerUnderPressure(app: FastifyInstance, config: Config): Promise<void> {
  const { overload } = config;
  app.addHook('onReady', async () => void READY_AT.set(app, Date.now()));
  await app.register(underPressure, {
    maxEventLoopDelay: overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: overload.maxHeapUsedBytes,
    maxRssBytes: overload.maxRssBytes,
    retryAfter: overload.retryAfterS,
    // Under a threshold's pressure; shed unless that is only the event-loop delay at the start. A
    // reason `shedding` does not weigh (none other is configured) sheds under its own name.
    // It answers itself and returns nothing, after which under-pressure calls the hook's next():
    // Fastify then runs no further hook nor the route only because `reply.sent` is already true,
    // which holds while every onSend hook that can run at onRequest time is synchronous (a fault
    // plan's and an Idempotency-Key's are not yet made then). An async one there would let the
    // route run behind the 503, as an error rule's answer once did (a review, 2026-12-05).
    pressureHandler: (request, reply, type) => {
      const reason = THRESHOLDS.has(type) ? shedding(app, overload) : type;
      if (reason !== undefined) overloaded(app, request, reply, reason, overload.retryAfterS);
    },
  });
}

/**
 * How long after the app is ready its event-loop delay is not a reason to shed: under-pressure
 * samples the delay once a second from its registration, so the samples that last until then can
 * hold the start's own stall (loading modules, compiling routes and schemas: more than a second on
 * a busy machine), not load. Before 2026-12-04 the first requests of a load that began as a replica
 * became ready could all be answered 503 OVERLOADED (a rolling restart behind HAProxy: 68 creates
 * in 20 ms, on two replicas just started).
 */
export const START_GRACE_MS = 2_000;
const READY_AT = new WeakMap<FastifyInstance, number>();
/** The reasons under-pressure gives that `shedding` weighs again. */
const THRESHOLDS: ReadonlySet<string> = new Set(['eventLoopDelay', 'heapUsedBytes', 'rssBytes']);

/** When the root app `app`'s start's grace ends (epoch ms; undefined before it is ready). */
export function startGraceEndsAt(app: FastifyInstance): number | undefined {
  const readyAt = READY_AT.get(app);
  return readyAt === undefined ? undefined : readyAt + START_GRACE_MS;
}

/** Whether the root app `app` became ready less than START_GRACE_MS ago (or is not ready yet). */
function startingUp(app: FastifyInstance): boolean {
  return Date.now() < (startGraceEndsAt(app) ?? Number.POSITIVE_INFINITY);
}

/**
 * A namespace's app (X-Sim-Namespace) sheds load by the root app's measurements: one sampler per
 * process, and the same thresholds for every namespace, since they share the event loop and heap.
 */
export function shedLoadAsRoot(app: FastifyInstance, root: FastifyInstance, config: Config): void {
  const { overload } = config;
  app.addHook('onRequest', (request, reply, done) => {
    const reason = root.isUnderPressure() ? shedding(root, overload) : undefined;
    if (reason === undefined) return done();
    overloaded(app, request, reply, reason, overload.retryAfterS);
  });
}

/**
 * Why the root app `root` sheds a request now: the first threshold (set, not 0) its last samples
 * exceed, the event-loop delay only once the start's grace is over; undefined: none.
 */
function shedding(root: FastifyInstance, overload: Config['overload']): string | undefined {
  const usage = root.memoryUsage();
  if (overload.maxEventLoopDelayMs > 0 && usage.eventLoopDelay > overload.maxEventLoopDelayMs && !startingUp(root)) return 'eventLoopDelay';
  if (overload.maxHeapUsedBytes > 0 && usage.heapUsed > overload.maxHeapUsedBytes) return 'heapUsedBytes';
  if (overload.maxRssBytes > 0 && usage.rssBytes > overload.maxRssBytes) return 'rssBytes';
  return undefined;
}

function overloaded(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, type: string, retryAfterS: number): void {
  sendProblem(reply, app.errorShapes.forRefusal(request.url), {
    status: 503,
    code: 'OVERLOADED',
    message: `The simulator is overloaded (${type}); retry after ${retryAfterS} s.`,
    retryAfterS,
  });
}
