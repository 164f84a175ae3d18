import type { IncomingMessage, ServerResponse } from 'node:http';
import fp from 'fastify-plugin';
import { DomainError, validationFailed } from '../../core/errors.ts';
import { DEFAULT_NAMESPACE } from '../../core/faults/service.ts';
import { isNamespaceName, NAMESPACE_RULE } from '../../core/namespace.ts';
import { renderedBody, sendProblem, type ErrorShape } from '../../http/error-handler.ts';
import { EXAMPLE_TRACE_ID, type ExtraAnswer } from '../../http/openapi.ts';
import { problemOf, type Problem } from '../../http/problem.ts';
import { createNamespaceRegistry, NamespaceLimitError, type NamespaceRegistry, type NamespacesOptions } from './namespace-registry.ts';
import { lineWrittenElsewhere } from './request-context.ts';
import { SAFE_METHODS } from './lifecycle.ts';

/**
 * Namespaces (issue 15, `X-Sim-Namespace`): parallel CI jobs share one paysim without seeing each
 * other, each namespace other than `default` a whole simulator of its own (its app, made, reset,
 * synced with the other replicas and drained by the registry: ./namespace-registry.ts). This
 * plugin decorates the root app with the registry and brings each request to its namespace's app:
 *
 * - The HTTP server hands a request that names a namespace to that namespace's app (`route`,
 *   called from the server's request listener, before the root app sees it): no per-request cost
 *   for requests without the header. Paths no dialect owns (health, metrics, docs, console) stay
 *   with the root app. `app.inject` reaches the root app, whose hook forwards the request the same
 *   way (tests), and which answers what cannot be routed (a bad name, too many namespaces) in the
 *   dialect's shape.
 */

export const NAMESPACE_HEADER = 'x-sim-namespace';
/** Seconds a client is told to wait when its namespace was being reset or the service is shutting down. */
const NAMESPACE_RETRY_AFTER_S = 1;

/** The answer to a request whose X-Sim-Namespace is no namespace's name (or was sent twice). */
function badNamespaceProblem(): Problem {
  return problemOf(validationFailed([{ in: 'headers', field: '/x-sim-namespace', rule: 'pattern', message: `must be ${NAMESPACE_RULE}, sent once` }]), { VALIDATION_FAILED: 400 });
}

/** The answer to a request whose namespace could not be had: no room for one more, shutting down, a reset under way elsewhere, the store away. */
function refusalProblem(error: Error): Problem {
  const problem = problemOf(error, { NAMESPACE_LIMIT: 409, NAMESPACE_UNAVAILABLE: 503 });
  return problem.status === 503 && problem.retryAfterS === undefined ? { ...problem, retryAfterS: NAMESPACE_RETRY_AFTER_S } : problem;
}

/**
 * What the namespace hook answers on every route of a dialect, in `shape`, as the OpenAPI document
 * shows it (plugins/external/swagger.ts): a bad X-Sim-Namespace, no room for one more namespace
 * (`max`: NAMESPACES_MAX), and a namespace that cannot be had now. Before 2026-12-07 only the
 * header's description said so, and no operation listed them (a user test).
 */
export function namespaceAnswers(shape: ErrorShape, max: number): ExtraAnswer[] {
  const answer = (problem: Problem, name: string, summary: string, description: string, headers: ExtraAnswer['headers'] = [], sent = 'ci-job-1842'): ExtraAnswer => ({
    status: shape.statusFor?.(problem) ?? problem.status,
    description,
    also: `Also: ${description}`,
    name,
    example: { summary, value: renderedBody(shape, problem, EXAMPLE_TRACE_ID, { [NAMESPACE_HEADER]: sent }) },
    headers,
    ...(problem.code === 'VALIDATION_FAILED' && shape.validationSchema !== undefined ? { schema: shape.validationSchema } : {}),
  });
  return [
    answer(badNamespaceProblem(), 'bad_namespace', 'X-Sim-Namespace is no namespace name (here `a b`)', `\`X-Sim-Namespace\` is not ${NAMESPACE_RULE}, or was sent twice: nothing was done.`, [], 'a b'),
    answer(
      refusalProblem(new NamespaceLimitError(max)),
      'namespace_limit',
      'No room for another namespace',
      '`X-Sim-Namespace` names a namespace that does not exist yet, and NAMESPACES_MAX exist already (or namespaces are switched off, `0`): nothing was made; reset one (`DELETE /v1/sim/namespaces/{namespace}`) or use an existing one.',
    ),
    answer(
      refusalProblem(new DomainError('NAMESPACE_UNAVAILABLE', 'The namespace ci-job-1842 is being reset on another replica; send the request again.')),
      'namespace_unavailable',
      'The namespace is being reset',
      'The namespace `X-Sim-Namespace` names cannot be had now (it is being reset, on this replica or another; a read while the service shuts down): nothing was done; send the request again after `Retry-After` seconds.',
      ['Retry-After'],
    ),
  ];
}

/** The namespaces of this process, as `app.namespaces` gives them to every app. */
export interface Namespaces extends Omit<NamespaceRegistry, 'ready' | 'handOver'> {
  /** For the HTTP server: hands the request to its namespace's app and says true, or says false (the root app serves it). */
  route(req: IncomingMessage, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void): boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The namespaces of this process (the root app's registry, shared by every namespace's app). */
    namespaces: Namespaces;
    /** The namespace this app serves (`default` for the root app; decorated by buildApp). */
    namespace: string;
  }
}


/** The namespace a request names: `default` without the header; undefined when the header is not a valid name. */
export function namespaceOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return DEFAULT_NAMESPACE;
  return typeof header === 'string' && isNamespaceName(header) ? header : undefined;
}

export default fp<NamespacesOptions>(
  async (app, options) => {
    const registry = createNamespaceRegistry(app, options);

    const shapes = app.errorShapes;
    /** Why `route` could not hand a request over: the root app's hook answers it without trying again. */
    const refused = new WeakMap<IncomingMessage, unknown>();
    /** The root refuses writes (its drain began): the request-context plugin answers them 503 SHUTTING_DOWN. */
    const refusingWrite = (method: string | undefined): boolean => app.lifecycle.shuttingDown && !SAFE_METHODS.has(method ?? '');
    const route: Namespaces['route'] = (req, res, fallback) => {
      const header = req.headers[NAMESPACE_HEADER];
      if (header === undefined) return false;
      const namespace = namespaceOf(header);
      // A bad name, `default`, and the paths no dialect owns: the root app's (its hook answers a bad name).
      if (namespace === undefined || namespace === DEFAULT_NAMESPACE || shapes.ownerOf(req.url ?? '/') === undefined) return false;
      // From the root drain's start a write is the root's to refuse, in a started namespace too (a
      // review: before, a namespace's app took them until its own drain began, in the root's producers' phase).
      if (refusingWrite(req.method)) return false;
      const ready = registry.ready(namespace);
      if (ready !== undefined) {
        registry.handOver(ready, req, res);
        return true;
      }
      registry.get(namespace).then(
        (child) => registry.handOver(child, req, res),
        // No room, shutting down or the store away: the root app answers it (its hook tells why).
        (error: unknown) => {
          refused.set(req, error);
          fallback(req, res);
        },
      );
      return true;
    };

    app.decorate('namespaces', {
      max: registry.max,
      shared: registry.shared,
      get started() {
        return registry.started;
      },
      get: registry.get,
      peek: registry.peek,
      list: registry.list,
      reset: registry.reset,
      metrics: registry.metrics,
      route,
    } satisfies Namespaces);

    // What reaches the root app with a namespace: a bad name, no room or the store away (answered
    // here, in the dialect's shape), or a request made with `inject` (handed over as the server would).
    app.addHook('onRequest', (request, reply, done) => {
      const header = request.headers[NAMESPACE_HEADER];
      if (header === undefined) return done();
      const namespace = namespaceOf(header);
      if (namespace === DEFAULT_NAMESPACE || shapes.ownerOf(request.url) === undefined || refusingWrite(request.method)) return done();
      const shape = shapes.forUrl(request.url);
      if (namespace === undefined) {
        sendProblem(reply, shape, badNamespaceProblem());
        return;
      }
      const handedOver = refused.has(request.raw) ? Promise.reject(refused.get(request.raw)) : registry.get(namespace);
      handedOver.then(
        (child) => {
          reply.hijack();
          // The namespace's app writes its line (one that closed first would have two: rev74d).
          lineWrittenElsewhere(request);
          registry.handOver(child, request.raw, reply.raw);
        },
        (error: Error) => sendProblem(reply, shape, refusalProblem(error)),
      );
    });
  },
  { name: 'paysim-namespaces', dependencies: ['paysim-core', 'paysim-lifecycle', 'paysim-error-shapes'] },
);
