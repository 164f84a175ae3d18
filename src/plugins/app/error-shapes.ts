import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import FindMyWay from 'find-my-way';
import { createErrorHandler, sendProblem } from '../../http/error-handler.ts';
import type { ErrorShapes } from '../../http/error-shapes.ts';
import type { Problem } from '../../http/problem.ts';
import { CountingThrottle, type SetTimer } from '../../log-throttle.ts';

/** A full store is told at most this often, per store, with the refusals since its last line. */
export const STORE_FULL_LOG_INTERVAL_MS = 60_000;

/**
 * Warns that a store is full of unfinished work when it refuses a request (503 STORE_FULL), at
 * most once per STORE_FULL_LOG_INTERVAL_MS per store, with how many it refused since the last
 * line and what makes room: a load test at a bound is refused thousands of times a second, and
 * before 2026-12-05 only each request's own line (info) and `store_full_total` said so. The
 * refusals after the last line are told once its minute is over and none has come for 5 s,
 * or at the close (`flush`), when none follows to tell them.
 */
export function storeFullLog(log: FastifyBaseLogger, now: () => number = Date.now, setTimer?: SetTimer): ((problem: Problem) => void) & { flush(): void } {
  const throttles = new Map<string, CountingThrottle>();
  const flush = () => {
    for (const throttle of throttles.values()) throttle.flush();
  };
  return Object.assign((problem: Problem) => {
    if (problem.code !== 'STORE_FULL') return;
    const store = problem.store ?? 'unknown';
    // As its clients see it: FluxPay's wrapper answers COMMON_503 (a user test read STORE_FULL in the log and COMMON_503 on the wire).
    const answer = store.startsWith('fluxpay') ? '503 COMMON_503' : '503 STORE_FULL';
    let throttle = throttles.get(store);
    if (throttle === undefined) {
      // The refusals after the last line, when none follows them to tell them (a last burst).
      const trailing = (refused: number) => log.warn({ store, refused }, `the ${store} store was full: ${refused} more request${refused === 1 ? '' : 's'} answered ${answer} since the last line. ${problem.message}`);
      throttles.set(store, (throttle = new CountingThrottle(STORE_FULL_LOG_INTERVAL_MS, now, trailing, setTimer)));
    }
    const refused = throttle.take();
    if (refused !== undefined) log.warn({ store, refused }, `the ${store} store is full: requests answer ${answer}. ${problem.message}`);
  }, { flush });
}

/**
 * The errors answered before any dialect's route runs, each in the shape of the dialect that owns
 * the path: 404 for an unknown route and 405 (with `Allow`) for a known path with another method.
 * The request checks (414, a missing `Host`, 503 while closing) run in the request-context hook;
 * unreadable URLs (Fastify's `frameworkErrors`) and load shedding use the same registry (app.ts).
 * @see issue 7 "One folder per dialect"
 */

export interface ErrorShapesOptions {
  shapes: ErrorShapes;
  ignoreTrailingSlash: boolean;
}

type HTTPMethod = FindMyWay.HTTPMethod;

const METHODS: readonly HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export default fp<ErrorShapesOptions>(
  async (app, { shapes, ignoreTrailingSlash }) => {
    app.decorate('errorShapes', shapes);
    const fullLog = storeFullLog(app.log);
    shapes.onProblem(fullLog);
    // The refusals after the last line, told before the process goes (a load test ending in a burst).
    app.addHook('onClose', async () => fullLog.flush());

    // Every route's methods, to tell "no such path" (404) from "not with this method" (405).
    const routes = FindMyWay({ ignoreTrailingSlash });
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (METHODS.includes(method as HTTPMethod) && routes.find(method as HTTPMethod, route.url) === null) routes.on(method as HTTPMethod, route.url, () => {});
      }
    });

    const unrouted = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
      const path = request.url.split('?', 1)[0] as string;
      const allowed = METHODS.filter((method) => routes.find(method, path) !== null);
      const shape = shapes.forUrl(request.url);
      if (allowed.length > 0 && !allowed.includes(request.method as HTTPMethod)) {
        return sendProblem(reply, shape, { status: 405, code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed on ${path}; use ${allowed.join(', ')}.`, headers: { allow: allowed.join(', ') } });
      }
      return sendProblem(reply, shape, { status: 404, code: 'NOT_FOUND', message: `No route ${request.method} ${path}.` });
    };
    app.setNotFoundHandler(unrouted);
    // The body of a request no route takes is parsed before the not-found handler runs: what is
    // wrong with it (malformed JSON, a form, too large) must not hide that the route does not
    // exist, nor come back in Fastify's own shape. Errors of the ops routes (outside every
    // dialect's scope) take the shape of the path too.
    const byPath = new Map<string, ReturnType<typeof createErrorHandler>>();
    app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (request.is404) return unrouted(request, reply);
      const shape = shapes.forUrl(request.url);
      let handler = byPath.get(shape.name);
      if (handler === undefined) byPath.set(shape.name, (handler = createErrorHandler(shape)));
      return handler(error, request, reply);
    });
  },
  { name: 'paysim-error-shapes' },
);
