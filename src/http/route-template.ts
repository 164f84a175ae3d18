/**
 * A route as clients, dashboards and traces name it: the router's pattern with each parameter's
 * regular expression left out, as the OpenAPI document writes the path
 * (`/api/v1/payments/:paymentKey(^pk_…$)` → `/api/v1/payments/:paymentKey`). Before 2026-12-06 the
 * metrics' `route` label, the request line's `route` and the span's name carried the expression, so
 * a dashboard selecting the route found nothing (a user test). A parameter's expression is
 * find-my-way's `:name(…)`, its parentheses balanced, a backslash escaping the next character.
 */
export function routeTemplate(pattern: string): string {
  if (!pattern.includes('(')) return pattern;
  let known = templates.get(pattern);
  if (known === undefined) {
    known = withoutExpressions(pattern);
    templates.set(pattern, known);
  }
  return known;
}

/** The template of the route a request matched (`routeTemplate`), or undefined when it matched none. */
export function routeOf(request: { routeOptions: { url?: string | undefined } }): string | undefined {
  const pattern = request.routeOptions.url;
  return pattern === undefined ? undefined : routeTemplate(pattern);
}

/** Routes are registered once: a handful of patterns, each worked out once. */
const templates = new Map<string, string>();

function withoutExpressions(pattern: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '(' && /:[A-Za-z0-9_]+$/.test(out)) depth = 1;
    else out += c;
  }
  return out;
}
