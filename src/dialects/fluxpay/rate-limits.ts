import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Type, type TObject, type TSchema } from 'typebox';
import { Counter } from 'prom-client';
import { invalid } from '../../core/fluxpay/errors.ts';
import { RATE_LIMIT_GROUPS, type RateLimitGroup, type RateLimitPolicy } from '../../core/fluxpay/policy.ts';
import { errorResponses, RATE_LIMITED, withExtraAnswers, withHeaders, type ExtraAnswer } from '../../http/openapi.ts';
import { rateLimitStoreClass } from '../../http/rate-limit-store.ts';
import { err, fluxpayErrorDocs } from './examples.ts';
import { ErrorBody } from './schemas.ts';

/**
 * FluxPay's rate limits (issue 12 "Rate limiting") with @fastify/rate-limit, registered inside
 * the dialect's scope so no other API is limited. Each client (`X-Client-Id`, else its address)
 * has one fixed window per route group, sized by the billing policy's `rateLimits:`; the counters
 * live behind the RateLimitStore port (src/http/rate-limit-store.ts) on the service's clock, so
 * replicas sharing a Redis store will share the limits.
 *
 * Counted in `onRequest`, before the body is read: a refused request costs no parsing. Every
 * answer of a FluxPay route carries the IETF draft headers `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (errors included: a 400, a 404 for an unknown id,
 * a 409 were counted too); a 429 adds `Retry-After` and is `COMMON_429` in the wrapper. Not
 * counted, without the headers: a malformed `X-Client-Id` (400 COMMON_400: there is no client to
 * count against), and what is answered before any FluxPay route is chosen (404 for an unknown
 * path, 405, load shedding's 503).
 * @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
 */

export interface FluxPayRateLimitOptions {
  limits: Readonly<Record<RateLimitGroup, RateLimitPolicy>>;
}

export const CLIENT_ID_HEADER = 'x-client-id';
/** 1–64 letters, digits, '.', '_' or '-' (no ':', which separates the parts of a store key). */
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CLIENT_ID_WORDS = "1–64 letters, digits, '.', '_' or '-', starting with a letter or digit";
const CLIENT_ID_RULE = `must be ${CLIENT_ID_WORDS}`;
/** The header as the OpenAPI document shows it on every FluxPay operation. */
const ClientIdHeader = Type.Optional(
  Type.String({
    pattern: CLIENT_ID.source,
    'x-pattern-description': CLIENT_ID_WORDS,
    description: `Who the rate limits (the billing policy's \`rateLimits:\`) count this request against: ${CLIENT_ID_WORDS}. Without it, the remote address; a malformed one is a 400 COMMON_400.`,
    examples: ['checkout-web'],
  }),
);

/** The FluxPay resources whose writes have a group of their own. */
const WRITE_GROUPS: ReadonlyMap<string, RateLimitGroup> = new Map([
  ['orders', 'orders'],
  ['payments', 'payments'],
  ['credits', 'credits'],
  ['events', 'events'],
  ['subscriptions', 'subscriptions'],
]);

/**
 * The route group of a FluxPay route: every waiting-room route (entering and polling a sale
 * together), else every read (`GET`) is `reads`, else a write counts in its resource's group;
 * the other writes (webhook subscriptions) count as `orders`.
 */
export function rateLimitGroupOf(method: string, url: string): RateLimitGroup {
  const resource = url.split('/')[3] ?? '';
  if (resource === 'waiting-rooms') return 'waiting-rooms';
  if (method === 'GET' || method === 'HEAD') return 'reads';
  return WRITE_GROUPS.get(resource) ?? 'orders';
}

/** The client a request counts against, as the start of its store key (@fastify/rate-limit appends the group). */
function clientKey(request: FastifyRequest): string {
  const id = request.headers[CLIENT_ID_HEADER];
  if (id === undefined) return `fluxpay:ip:${normalizeIP(request.ip)}:`;
  if (typeof id !== 'string' || !CLIENT_ID.test(id)) throw invalid(`header.${CLIENT_ID_HEADER}`, CLIENT_ID_RULE);
  return `fluxpay:client:${id}:`;
}

const groupOfRequest = (request: FastifyRequest): RateLimitGroup => (request.routeOptions.config as { rateLimit?: { groupId?: RateLimitGroup } }).rateLimit?.groupId ?? 'reads';

/** A route's header schema with X-Client-Id (or only X-Client-Id); one that is not a plain object schema is left as it is. */
function withClientId(headers: TSchema | undefined): TSchema {
  if (headers === undefined) return Type.Object({ [CLIENT_ID_HEADER]: ClientIdHeader });
  const { type, properties } = headers as Partial<TObject> & { type?: unknown };
  if (type !== 'object' || properties === undefined) return headers;
  return { ...headers, properties: { ...properties, [CLIENT_ID_HEADER]: ClientIdHeader } };
}

/** The 429's message: the route group's limit, and when to retry. */
function rateLimitMessage(group: RateLimitGroup, max: number, windowSeconds: number, retryInSeconds: number): string {
  return `Rate limit exceeded: ${max} requests per ${windowSeconds} s for ${group}; retry in ${retryInSeconds} s.`;
}

/** A malformed X-Client-Id, as every FluxPay route answers it (before 2026-12-07 documented on the routes that had a 400 of their own only: a user test). */
const BAD_CLIENT_ID: ExtraAnswer = (() => {
  const reason = `header.${CLIENT_ID_HEADER}: ${CLIENT_ID_RULE}`;
  const description = `COMMON_400: \`X-Client-Id\` is not ${CLIENT_ID_WORDS}: nothing was done, and nothing counted against a rate limit (there is no client to count it against).`;
  return {
    status: 400,
    description,
    also: `Also: ${description}`,
    name: 'bad_client_id',
    example: { ...err('COMMON_400', reason, { errors: [{ field: `header.${CLIENT_ID_HEADER}`, reason: CLIENT_ID_RULE }] }), summary: 'X-Client-Id malformed' },
    headers: [],
  };
})();

/**
 * Every documented answer of a route with the rate-limit headers, a malformed X-Client-Id's 400,
 * and the 429 with the example of its own group's limit as configured (before 2026-12-05 every
 * route's example was a made-up 100 per second for orders).
 */
function documentRateLimits(response: Record<string, TSchema>, group: RateLimitGroup, limit: RateLimitPolicy): Record<string, TSchema> {
  const documented = Object.fromEntries(Object.entries(response).map(([status, schema]) => [status, withHeaders(schema, RATE_LIMITED)]));
  documented['400'] = withExtraAnswers(documented, ErrorBody, [BAD_CLIENT_ID], [])['400'] as TSchema;
  if (documented['429'] === undefined) Object.assign(documented, errorResponses(fluxpayErrorDocs, [429]));
  const example = err('COMMON_429', rateLimitMessage(group, limit.max, limit.windowSeconds, limit.windowSeconds));
  documented['429'] = { ...withHeaders(documented['429'] as TSchema, RATE_LIMITED), 'x-examples': { rate_limited: example } } as TSchema;
  return documented;
}

export default fp<FluxPayRateLimitOptions>(
  async (scope, { limits }) => {
    const { clock, stores } = scope.core;
    const rejections = new Counter({
      name: 'fluxpay_rate_limit_rejections_total',
      help: 'FluxPay requests refused with 429 COMMON_429 (over the billing policy’s rateLimits), by route group.',
      labelNames: ['group'],
      registers: [scope.metrics.registry],
    });
    for (const group of RATE_LIMIT_GROUPS) rejections.inc({ group }, 0);

    // Before @fastify/rate-limit's own onRoute hook, which reads `config.rateLimit`.
    scope.addHook('onRoute', (route) => {
      const method = Array.isArray(route.method) ? String(route.method[0]) : route.method;
      const group = rateLimitGroupOf(method, route.url);
      const { max, windowSeconds } = limits[group];
      route.config = { ...route.config, rateLimit: { max, timeWindow: windowSeconds * 1000, groupId: group } };
      const schema = route.schema;
      if (schema?.response !== undefined) {
        route.schema = { ...schema, headers: withClientId(schema.headers as TSchema | undefined), response: documentRateLimits(schema.response as Record<string, TSchema>, group, limits[group]) };
      }
    });

    await scope.register(rateLimit, {
      global: true,
      enableDraftSpec: true,
      store: rateLimitStoreClass(stores.rateLimits, clock),
      keyGenerator: clientKey,
      onExceeded: (request) => rejections.inc({ group: groupOfRequest(request) }),
      // Rendered by the dialect's error handler: a 4xx error with a status is COMMON_<status> in the wrapper.
      errorResponseBuilder: (request, context) => {
        const group = groupOfRequest(request);
        const message = rateLimitMessage(group, context.max, limits[group].windowSeconds, Math.ceil(context.ttl / 1000));
        return Object.assign(new Error(message), { statusCode: context.statusCode });
      },
    });
  },
  { name: 'paysim-fluxpay-rate-limits', dependencies: ['paysim-core', 'paysim-metrics'] },
);
