import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import FindMyWay from 'find-my-way';
import { createErrorHandler, sendProblem } from '../../http/error-handler.ts';
import type { ErrorShapes } from '../../http/error-shapes.ts';

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
