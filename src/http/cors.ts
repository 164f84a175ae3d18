import type { FastifyCorsOptions } from '@fastify/cors';

/**
 * Cross-origin calls from a browser (CORS_ORIGINS), with @fastify/cors: a front end served from
 * another origin (a ticketing app on http://localhost:3000) calls the APIs directly. Off unless set:
 * with it on for any origin, any web page a developer opens could drive a local paysim's
 * administration (fault rules, namespaces) from the browser.
 *
 * Registered before the hooks that answer at the door (a 414, a 503 while closing, a load shed),
 * so that those answers carry the headers too and a browser lets the page read them. A preflight
 * (`OPTIONS` with `Access-Control-Request-Method`) is answered 204 with the methods below and the
 * request's own headers allowed; with CORS on, any `OPTIONS` is (not a 405).
 */

/** What a page may read of an answer besides the CORS-safelisted headers. */
export const EXPOSED_HEADERS = ['Idempotent-Replayed', 'Retry-After', 'X-Request-Id', 'X-Next-Cursor', 'Link', 'X-Sim-Rule', 'Allow', 'WWW-Authenticate'] as const;

/** How long a browser may keep a preflight's answer (seconds). */
const PREFLIGHT_MAX_AGE_S = 600;

export function corsOptions(origins: '*' | readonly string[]): FastifyCorsOptions {
  return {
    origin: origins === '*' ? '*' : [...origins],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: [...EXPOSED_HEADERS],
    maxAge: PREFLIGHT_MAX_AGE_S,
    // Any OPTIONS is answered as a preflight (204): not one refused 400 in the plugin's own text, in no dialect's shape.
    strictPreflight: false,
  };
}

/**
 * The CORS header lines of an answer written outside Fastify (what Node's parser refuses, see
 * client-errors.ts) for a request from `origin`, as the plugin writes them on every other answer:
 * without them a page sees a network error instead of the 431 or 408. Empty when CORS is off, the
 * request named no origin, or its origin is not listed.
 */
export function corsHeaderLines(origins: '*' | readonly string[] | undefined, origin: string | undefined): string {
  if (origins === undefined || origin === undefined) return '';
  const exposed = `Access-Control-Expose-Headers: ${EXPOSED_HEADERS.join(', ')}\r\n`;
  if (origins === '*') return `Access-Control-Allow-Origin: *\r\n${exposed}`;
  return origins.includes(origin) ? `Vary: Origin\r\nAccess-Control-Allow-Origin: ${origin}\r\n${exposed}` : '';
}
