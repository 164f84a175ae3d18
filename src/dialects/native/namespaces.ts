import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { validationFailed } from '../../core/errors.ts';
import { DEFAULT_NAMESPACE } from '../../core/faults/service.ts';
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from '../../core/namespace.ts';
import { documented, errorResponses } from '../../http/openapi.ts';
import { NO_FAULTS } from '../../http/scenario.ts';
import * as ex from './examples.ts';

/**
 * Namespaces (issue 15), under `/v1/sim/namespaces`: which exist, and resetting one. A namespace
 * comes to exist when a request first names it in `X-Sim-Namespace`; these routes answer the
 * same whichever namespace the request itself names (the registry is the process's). Never
 * shaped by fault rules (a rule must not lock a reset out).
 * @see issue 15 "Load-test controls"
 */

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.nativeErrorDocs, statuses, options);

const NamespaceParams = Type.Object({
  namespace: Type.String({ pattern: NAMESPACE_PATTERN, 'x-pattern-description': NAMESPACE_RULE, description: 'The namespace, as `X-Sim-Namespace` names it', examples: ['ci-job-1842'] }),
});
const NamespaceView = Type.Object(
  {
    namespace: Type.String({ description: 'Its name' }),
    created_at: Type.String({ format: 'date-time', description: 'When a request first named it (since the start or its last reset)' }),
  },
  { title: 'Namespace' },
);
const NamespaceList = Type.Object(
  {
    data: Type.Array(NamespaceView, { description: 'Every namespace besides `default`, oldest first' }),
    max: Type.Integer({ minimum: 0, description: 'How many may exist at once besides `default` (NAMESPACES_MAX)' }),
  },
  { title: 'NamespaceList' },
);
const ResetNamespace = Type.Object(
  {
    namespace: Type.String({ description: 'The namespace' }),
    existed: Type.Boolean({ description: 'Whether it held anything: false when no request had named it (nothing was done)' }),
  },
  { title: 'NamespaceReset' },
);

const namespaceRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const registry = app.namespaces;

  app.get(
    '/namespaces',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'listNamespaces',
        summary: 'List the namespaces',
        description:
          'Every namespace that exists besides `default`: each came to exist when a request first named it in `X-Sim-Namespace`, and holds its own payments, bookings, seat maps, rules, webhook log and random stream until it is reset. With `STORE=redis`, the namespaces of every replica.',
        tags: ['namespaces'],
        response: { 200: documented(NamespaceList, { description: 'The namespaces.', examples: ex.listNamespacesResponses }), ...errors([500, 503]) },
      },
    },
    async () => ({
      data: (await registry.list()).map((info) => ({ namespace: info.namespace, created_at: new Date(info.createdAt).toISOString() })),
      max: registry.max,
    }),
  );

  app.delete(
    '/namespaces/:namespace',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'resetNamespace',
        summary: 'Reset a namespace',
        description:
          'Drops everything the namespace holds — payments of every API, bookings and seat maps, the ledger, idempotency keys, fault rules (and their `fault_rule_hits_total` series in /metrics, the only counts a reset takes out of its sums), the webhook log and the deliveries still waiting (never sent), its due work — and starts its random stream again. Its next request finds it empty, as on a fresh start (with FAULTS_FILE’s rules). Answered once it is done; a request to it while it is reset waits for the fresh one. With STORE=redis it takes about 1.5 s: every replica closes its app of the namespace before its keys go. `default` cannot be reset (restart the service, or give each run a namespace of its own; with STORE=redis, whose state a restart keeps, a namespace of its own or another REDIS_KEY_PREFIX).',
        tags: ['namespaces'],
        params: NamespaceParams,
        response: {
          200: documented(ResetNamespace, { description: 'Reset (or there was nothing to reset).', examples: ex.resetNamespaceResponses }),
          ...errors([400, 500, 503], { overrides: { 400: ex.badNamespace } }),
        },
      },
    },
    async (request) => {
      const { namespace } = request.params;
      if (namespace === DEFAULT_NAMESPACE) {
        // With Redis a restart keeps the state: the advice is another prefix (an operator's user test, 2026-12-05).
        const instead = registry.shared ? 'give each run a namespace of its own, or start on another REDIS_KEY_PREFIX (a restart keeps what Redis holds)' : 'restart the service, or give each run a namespace of its own';
        throw validationFailed([{ in: 'params', field: '/namespace', rule: 'not_default', message: `the default namespace cannot be reset: ${instead}` }]);
      }
      return { namespace, existed: await registry.reset(namespace) };
    },
  );
};

export default namespaceRoutes;
