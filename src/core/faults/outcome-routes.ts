import type { FaultDialect, HttpMethod, RequestMatch } from './model.ts';
import { matchesDialectAndMethod } from './matcher.ts';
import { compileRoute, routeMatches } from './route.ts';

/**
 * The routes that take a fault rule's `outcome` (they create or decide a payment and hand the
 * rule's decision to the core): an outcome rule matches these only (matcher.ts, `takesOutcome`).
 * The dialects mark them with `TAKES_OUTCOME` (http/scenario.ts); the faults plugin checks at
 * start that the routes so marked are exactly these, under the dialect that owns each path, so
 * the list cannot drift from the routes. Validation refuses an outcome rule that can match none
 * of them (`canMatchOutcomeRoute`); README and the FaultAction_outcome description list them.
 * @see issue 15 "Rules"
 */
export interface OutcomeRoute {
  dialect: FaultDialect;
  method: HttpMethod;
  /** The router's pattern, prefix included (`/api/v1/subscriptions/:subscriptionId/change-plan`). */
  route: string;
}

export const OUTCOME_ROUTES: readonly OutcomeRoute[] = Object.freeze([
  { dialect: 'native', method: 'POST', route: '/v1/sim/intent' },
  { dialect: 'payment-server-v2', method: 'POST', route: '/api/v2/payments' },
  { dialect: 'bookings', method: 'POST', route: '/payments/execute' },
  { dialect: 'fluxpay', method: 'POST', route: '/api/v1/payments/confirm' },
  { dialect: 'fluxpay', method: 'POST', route: '/api/v1/subscriptions' },
  { dialect: 'fluxpay', method: 'POST', route: '/api/v1/subscriptions/:subscriptionId/change-plan' },
]);

/** `POST /v1/sim/intent (native), …`: the list as a message names it. */
export const OUTCOME_ROUTE_LIST = OUTCOME_ROUTES.map((r) => `${r.method} ${r.route} (${r.dialect})`).join(', ');

/** The listed route of this dialect, method and router pattern, if any. */
export function outcomeRouteOf(dialect: string | undefined, method: string, route: string): OutcomeRoute | undefined {
  return OUTCOME_ROUTES.find((r) => r.dialect === dialect && r.method === method && r.route === route);
}

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/** A route a request rule may shape: the dialect that owns it, a method, its router pattern. */
export interface DialectRoute {
  dialect: string;
  method: string;
  /** The router's pattern, prefix included: `:name` parameters, a trailing `*` wildcard. */
  route: string;
}

/**
 * Whether a request rule's dialect, method and route let it match a request on some outcome
 * route (`whyNoRoute` on OUTCOME_ROUTES).
 */
export function canMatchOutcomeRoute(match: Pick<RequestMatch, 'dialect' | 'method' | 'route'>): boolean {
  return whyNoRoute(match, OUTCOME_ROUTES) === undefined;
}

/**
 * Why a request rule's dialect, method, route and body conditions let it match a request on none
 * of `routes`, in words; undefined when it can match one. Decided by the matcher's own checks:
 * `matchesDialectAndMethod` as the matcher's buckets use it, and `routeMatches` on the paths each
 * route answers. A route pattern's parameter takes any one segment, so the paths tried for it are
 * enough to decide: each parameter is filled with each segment of the rule's route made concrete
 * (`sub_*` as `sub_x`, `:id` as `x`) and with `x`, since a rule's segment that lines up with the
 * parameter matches one of those whenever it matches any segment, and a `**` matches any. A router
 * wildcard (`/api/v2/payments/*`) takes any rest of the path: the rule is let through when its
 * route's literal beginning and the wildcard's agree. Body conditions need a body: a GET or HEAD
 * route has none. A rule without a route, or whose route has a percent escape (it names the raw
 * path of an escaped request, which the router decodes), is never refused for its route.
 */
export function whyNoRoute(match: Pick<RequestMatch, 'dialect' | 'method' | 'route'> & { body?: RequestMatch['body'] }, routes: readonly DialectRoute[]): string | undefined {
  const api = match.dialect === null ? undefined : `the ${match.dialect} API`;
  let candidates = routes.filter((r) => matchesDialectAndMethod(match, r.dialect, r.method));
  if (candidates.length === 0) return api === undefined ? `no API has ${/^[AEIOU]/.test(match.method ?? '') ? 'an' : 'a'} ${match.method ?? ''} route` : `${api} has no ${match.method ?? ''} route`;
  if (match.body !== undefined && Object.keys(match.body).length > 0) {
    candidates = candidates.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    if (candidates.length === 0) return `a body condition needs a body, and ${match.method ?? ''} requests${api === undefined ? '' : ` to ${api}`} have none`;
  }
  if (match.route === null || match.route.includes('%')) return undefined;
  const compiled = compileRoute(match.route);
  const literal = compiled.kind === 'exact' ? compiled.path : compiled.prefix;
  const fillers = [...new Set(['x', ...match.route.split('/').slice(1).map((s) => (s === '**' || PARAM.test(s) ? 'x' : s.replaceAll('*', 'x'))).filter((s) => s !== '')])];
  const reachable = candidates.some((r) => {
    const star = r.route.indexOf('*');
    if (star !== -1) {
      const base = r.route.slice(0, star);
      return literal.startsWith(base) || (compiled.kind !== 'exact' && base.startsWith(literal));
    }
    return pathsOf(r.route, fillers).some((path) => routeMatches(compiled, path, r.route));
  });
  return reachable ? undefined : `no ${match.method === null ? '' : `${match.method} `}route${api === undefined ? '' : ` of ${api}`} matches ${match.route}`;
}

/** The paths a router pattern answers, each parameter filled with each of `fillers`. */
function pathsOf(pattern: string, fillers: readonly string[]): string[] {
  let paths = [''];
  for (const segment of pattern.split('/').slice(1)) {
    // Any segment with a parameter (`:id`, or one with its own expression such as FluxPay's
    // `:paymentKey(^pk_…$)`) takes each filler: a rule is never refused for what the expression
    // would refuse (a lenient check: it refuses only rules no request could reach).
    const options = segment.includes(':') ? fillers : [segment];
    paths = paths.flatMap((path) => options.map((option) => `${path}/${option}`));
  }
  return paths;
}
