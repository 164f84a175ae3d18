import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
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
    pressureHandler: (request, reply, type) => {
      sendProblem(reply, app.errorShapes.forUrl(request.url), {
        status: 503,
        code: 'OVERLOADED',
        message: `The simulator is overloaded (${type}); retry after ${overload.retryAfterS} s.`,
        retryAfterS: overload.retryAfterS,
      });
    },
  });
}
