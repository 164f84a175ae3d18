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
  await app.register(underPressure, {
    maxEventLoopDelay: overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: overload.maxHeapUsedBytes,
    maxRssBytes: overload.maxRssBytes,
    retryAfter: overload.retryAfterS,
    pressureHandler: (request, reply, type) => overloaded(app, request, reply, type, overload.retryAfterS),
  });
}

/**
 * A namespace's app (X-Sim-Namespace) sheds load by the root app's measurements: one sampler per
 * process, and the same thresholds for every namespace, since they share the event loop and heap.
 */
export function shedLoadAsRoot(app: FastifyInstance, root: FastifyInstance, config: Config): void {
  const { overload } = config;
  app.addHook('onRequest', (request, reply, done) => {
    if (!root.isUnderPressure()) return done();
    const usage = root.memoryUsage();
    const type = usage.eventLoopDelay > overload.maxEventLoopDelayMs ? 'eventLoopDelay' : usage.heapUsed > overload.maxHeapUsedBytes ? 'heapUsedBytes' : 'rssBytes';
    overloaded(app, request, reply, type, overload.retryAfterS);
  });
}

function overloaded(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, type: string, retryAfterS: number): void {
  sendProblem(reply, app.errorShapes.forUrl(request.url), {
    status: 503,
    code: 'OVERLOADED',
    message: `The simulator is overloaded (${type}); retry after ${retryAfterS} s.`,
    retryAfterS,
  });
}
