import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { notFound } from '../../core/errors.ts';
import { CreateFaultRuleBody, FaultRuleList, FaultRuleView } from '../../core/faults/schema.ts';
import { RULE_ID_PATTERN, type ParsedRule } from '../../core/faults/validation.ts';
import type { StoredFaultRule } from '../../core/faults/model.ts';
import { faultRuleView } from '../../core/faults/view.ts';
import type { IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import { NO_FAULTS } from '../../http/scenario.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import { validatorOf } from '../../http/validators.ts';
import * as ex from './examples.ts';

/**
 * The fault rules of issue 15, under `/v1/sim/rules`: create, list, read and delete the rules
 * that make every dialect misbehave on demand. The body of a create is checked by the rule
 * parser (core/faults/validation.ts), which names every problem as a JSON pointer; the route's
 * own schema is the full one for the OpenAPI document only, since Ajv reports a bad member of
 * the action union as one error per branch. These routes are never shaped by rules themselves
 * (`config.faults: false`), so a rule on `/v1/sim/**` cannot lock its own removal out.
 * @see issue 15 "Rules"
 */

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.nativeErrorDocs, statuses, options);

const RuleParams = Type.Object({
  id: Type.String({ pattern: RULE_ID_PATTERN.source, 'x-pattern-description': 'a rule id: rule_<ULID>, or the id its create or FAULTS_FILE gave', description: 'rule_<ULID>, or the id its create or its FAULTS_FILE entry gave', examples: [ex.EXAMPLE_IDS.rule] }),
});
const DeletedRules = Type.Object({ deleted: Type.Integer({ minimum: 0, description: 'How many rules were deleted' }) }, { title: 'DeletedFaultRules' });

/** The view's `action` is typed loosely (a record); it is one of FaultAction's members. */
const view = (stored: StoredFaultRule) => faultRuleView(stored) as Static<typeof FaultRuleView>;

/** Fastify hands the body over as parsed (the rule parser says what is wrong with it); the other parts are validated as on every route. */
const acceptAnyBody = (part: { schema: object; httpPart?: string | undefined }) => (part.httpPart === 'body' ? () => true : validatorOf(part));

export interface RuleRoutesOptions {
  /** The native API's Idempotency-Key hooks: a create sent again with its key makes one rule. */
  idempotent: IdempotencyHooks;
}

/** The rule each create's body describes, parsed before its Idempotency-Key is taken. */
const parsedRules = new WeakMap<FastifyRequest, ParsedRule>();

const CREATE_400 = {
  ...ex.badRule,
  description: `${ex.badRule.description} A bad \`Idempotency-Key\` is a 400 naming the header (\`in: headers\`). Neither is stored under the key; a create refused because FAULTS_MAX_RULES rules exist (\`max_rules\`) or because its \`id\` is in use (\`unique\`) is, like any answer: after deleting rules, send it with a new key.`,
};
const CREATE_409 = {
  description: '`IDEMPOTENCY_KEY_IN_USE`: a create with this key is still running.',
  examples: { in_use: { summary: 'The same key, still running', value: ex.problem('IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry later.') } },
};

const ruleRoutes: FastifyPluginAsync<RuleRoutesOptions> = async (fastify, { idempotent }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const faults = app.faults;
  // FAULTS_ENABLED=false: no rules API at all (404, like any unknown path).
  if (faults === null) return;
  const { service } = faults;
  // Rules belong to the namespace this app serves (X-Sim-Namespace).
  const namespace = app.namespace;

  app.post(
    '/rules',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'createFaultRule',
        summary: 'Create a fault rule',
        description:
          'A rule matches requests (by dialect, method, route, headers and body fields) or webhook deliveries (by target URL prefix), applies with a `probability`, at most `count` times, inside its `window`, and does one `action`: `latency`, `error`, `response_lost`, `timeout` or `outcome` for requests (an outcome rule matches only the routes that create or decide a payment: see FaultAction_outcome); `duplicate`, `reorder`, `delay` or `drop_attempts` for webhooks. Every problem of the body is answered at once, as JSON pointers. A rule as GET lists it can be sent back as it is: its `id` is kept (an id in use: 400, `/id`, rule `unique`), `target` must agree with the action, and the counters and times are not used (a new rule starts at 0). A rule that could never apply is refused like any other bad body (400, nothing created): an outcome rule whose `dialect`, `method` and `route` allow none of those routes (`/match`, rule `outcome_route`; the message names the routes), and a `window` whose `until` is not later than the rule’s creation (`/window/until`, rule `window`: an ISO time already past, or 0 ms). Rules apply in creation order; the first applying rule of each kind (latency, outcome, answer) wins. Every answer a rule shaped carries `X-Sim-Rule` with the ids of the rules that shaped it; `fault_rule_hits_total` on /metrics counts applications by rule id, action and sim_namespace. With RANDOM_SEED, probabilities and latencies come from a seeded stream of their own, so a run repeats. With Redis the other replicas are told before this answers, and apply the rule from their next request, all but rarely (one that handles a request a moment before the notice lets it through unshaped; within a second when the notice is lost).',
        tags: ['faults'],
        headers: IdempotencyKeyHeader,
        body: withExamples(CreateFaultRuleBody, ex.createRuleRequests),
        response: {
          201: documented(FaultRuleView, { description: 'Created: the rule as it will be applied, defaults filled in.', examples: ex.createRuleResponses, headers: IDEMPOTENT }),
          ...errors([400, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: CREATE_400, 409: CREATE_409 } }),
        },
      },
      validatorCompiler: acceptAnyBody,
      // The body is parsed before the Idempotency-Key is taken, as a schema would be checked: a
      // body that is not a rule is answered 400 and never stored under the key.
      preValidation: async (request) => void parsedRules.set(request, service.parse(request.body)),
      ...idempotent,
    },
    async (request, reply) => reply.code(201).send(view(await service.add(namespace, parsedRules.get(request) as ParsedRule))),
  );

  app.get(
    '/rules',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'listFaultRules',
        summary: 'List the fault rules',
        description: 'Every rule in creation order (the order they apply in), with its counters: `hits` (applied), `matched` (its filters matched inside its window, applied or not) and `remaining` of its `count`.',
        tags: ['faults'],
        response: { 200: documented(FaultRuleList, { description: 'The rules.', examples: ex.listRulesResponses }), ...errors([500, 503]) },
      },
    },
    async () => ({ data: (await service.list(namespace)).map(view) }),
  );

  app.get(
    '/rules/:id',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'getFaultRule',
        summary: 'Read a fault rule and its counters',
        description: 'The rule as it is applied, with `hits`, `matched`, `remaining` and `last_hit_at`.',
        tags: ['faults'],
        params: RuleParams,
        response: { 200: documented(FaultRuleView, { description: 'The rule.', examples: ex.getRuleResponses }), ...errors([400, 404, 500, 503], { overrides: { 400: ex.badRuleId, 404: ex.ruleNotFound } }) },
      },
    },
    async (request) => {
      const stored = await service.get(namespace, request.params.id);
      if (stored === undefined) throw notFound('Fault rule', request.params.id);
      return view(stored);
    },
  );

  app.delete(
    '/rules/:id',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'deleteFaultRule',
        summary: 'Delete a fault rule',
        description: 'The rule stops applying at once, here and, with Redis, on the other replicas (a rule applies only once Redis counts it, and Redis finds it gone); the answer is the rule with its last counters. Its `fault_rule_hits_total` series leaves /metrics: here at once; with Redis, on the other replicas at their next request or /metrics scrape (a second after their last read of the shared rules when the notice is lost).',
        tags: ['faults'],
        params: RuleParams,
        response: { 200: documented(FaultRuleView, { description: 'Deleted: the rule as it was.', examples: ex.deleteRuleResponses }), ...errors([400, 404, 500, 503], { overrides: { 400: ex.badRuleId, 404: ex.ruleNotFound } }) },
      },
    },
    async (request) => {
      const stored = await faults.delete(namespace, request.params.id);
      if (stored === undefined) throw notFound('Fault rule', request.params.id);
      return view(stored);
    },
  );

  app.delete(
    '/rules',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'deleteFaultRules',
        summary: 'Delete every fault rule',
        description: 'The simulator behaves as configured again (FAULTS_FILE’s rules go too, until the next start; with STORE=redis until the file changes). Their `fault_rule_hits_total` series leave /metrics, as a single delete’s do.',
        tags: ['faults'],
        response: { 200: documented(DeletedRules, { description: 'How many rules were deleted.', examples: ex.deleteRulesResponses }), ...errors([500, 503]) },
      },
    },
    async () => ({ deleted: await faults.deleteAll(namespace) }),
  );
};

export default ruleRoutes;
