/**
 * The `route` of a request rule, compiled once. Three forms, segment by segment:
 * - a literal path: `/v1/sim/intents` (equal to the request's path, or to its route pattern);
 * - a route pattern: `/api/v1/orders/:orderId` (a `:name` segment is any one segment, whatever
 *   name the dialect's router gives it);
 * - a glob: `*` inside a segment is any characters but `/` (`/v1/sim/*`), and a `**` segment is
 *   any number of segments, none included (`/api/**` matches `/api` and `/api/v1/orders/o_1`).
 * One trailing slash is ignored on both sides, as the router ignores it. The query string is not
 * part of the path.
 */

export type CompiledRoute =
  | { kind: 'exact'; path: string }
  /** `prefix`: the literal start every matching path has (up to the first parameter or glob), checked before the expression. */
  | { kind: 'regex'; source: string; regex: RegExp; prefix: string };

const ROUTE_CHARS = /^\/[A-Za-z0-9._~%!$&'()+,;=@:*/-]*$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `route` is not a route this module can compile, or undefined. */
export function routeIssue(route: string): string | undefined {
  if (!ROUTE_CHARS.test(route)) return 'must be a path starting with "/" (no query string, no spaces), e.g. /v1/sim/intents, /api/v1/orders/:orderId or /v1/sim/*';
  let anySegments = 0;
  for (const segment of route.split('/').slice(1)) {
    if (segment.includes('**') && segment !== '**') return 'may use ** only as a whole segment (/api/**)';
    if (segment === '**' && ++anySegments > 1) return 'may use ** once';
    if (segment !== '**' && segment.indexOf('*') !== segment.lastIndexOf('*')) return 'may use * once per segment';
    if (segment.includes(':') && !PARAM.test(segment)) return 'may use ":" only to start a whole parameter segment such as :orderId';
  }
  if (route.includes('//')) return 'must not have an empty segment ("//")';
  return undefined;
}

export function compileRoute(route: string): CompiledRoute {
  const path = trimSlash(route);
  if (!path.includes('*') && !path.includes(':')) return { kind: 'exact', path };
  let source = '^';
  let prefix = '';
  let literal = true;
  for (const segment of path.split('/').slice(1)) {
    if (segment === '**') {
      source += '(?:/[^/]*)*';
      literal = false;
    } else if (PARAM.test(segment)) {
      source += '/[^/]+';
      if (literal) prefix += '/';
      literal = false;
    } else {
      source += `/${segment.split('*').map(escapeRegex).join('[^/]*')}`;
      if (literal) prefix += `/${segment.split('*')[0] ?? ''}`;
      if (segment.includes('*')) literal = false;
    }
  }
  if (source === '^') source += '/';
  source += '$';
  return { kind: 'regex', source, regex: new RegExp(source), prefix };
}

/**
 * Paths longer than this are never matched by a pattern or a glob (only by a literal route). With
 * one `**` per route and one `*` per segment an expression is linear in the path for each place
 * `**` may end, so this bounds what one match can cost whatever the path.
 */
export const MAX_PATTERN_PATH = 2048;

/**
 * Whether a request is on the route: its path (without query string or trailing slash), or the
 * router's pattern for it, equals a literal route; its path matches a pattern or a glob. (A
 * pattern is not compared with the router's pattern: its parameter names may differ.)
 */
export function routeMatches(route: CompiledRoute, path: string, routePattern: string | undefined): boolean {
  if (route.kind === 'exact') return path === route.path || routePattern === route.path;
  return path.length <= MAX_PATTERN_PATH && path.startsWith(route.prefix) && route.regex.test(path);
}

/** The path part of a URL as the request line has it: no query string, no trailing slash (but `/`). */
export function requestPath(url: string): string {
  const query = url.indexOf('?');
  return trimSlash(query === -1 ? url : url.slice(0, query));
}

function trimSlash(path: string): string {
  return path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : path;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
