import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.ts';
import type { RevokedSessionStore } from '../core/ports.ts';
import type { RateLimitStore } from '../core/rate-limit/ports.ts';
import type { PageShape } from '../http/error-shapes.ts';
import { MAX_URL_LENGTH } from '../plugins/app/request-context.ts';
import { clearedCookie, type ConsoleAuth, cookieValue, CSRF_FIELD, CSRF_HEADER, sessionCookie } from './auth.ts';
import type { FormBody } from './forms.ts';
import type { Html } from './html.ts';
import type { PageContext } from './layout.ts';
import { errorPage, loginPage, type ErrorLink } from './pages/other.ts';
import type { SessionStreams } from './session-streams.ts';

/**
 * Who may use the console, and how (issue 13): the session every request carries (logged in with
 * CONSOLE_TOKEN, or anonymous without it), the CSRF check of every state-changing request, the
 * refusal of a read whose query repeats a parameter, and the login and logout routes with their
 * per-address limit on failed logins. The pages themselves are in ./index.ts.
 */

const LOGIN_PATH = '/console/login';
/** Paths reachable without a logged-in session (the login form and what it needs). */
const OPEN_PATHS: ReadonlySet<string> = new Set([LOGIN_PATH, '/console/assets/console.css']);
/** The window failed logins are counted in, per client address. */
const LOGIN_WINDOW_MS = 60_000;

export interface AccessOptions {
  auth: ConsoleAuth;
  clock: Clock;
  revokedSessions: RevokedSessionStore;
  /** Failed logins per client address (a rate-limit store of its own). */
  logins: RateLimitStore;
  /** Failed logins per client address and LOGIN_WINDOW_MS before its logins are refused. */
  maxLoginFailures: number;
  sessionStreams: SessionStreams;
  /** The page frame of a request (its CSRF token, the navigation). */
  context: (request: FastifyRequest) => PageContext;
  /** The frame of an error page: undefined for one nobody logged in to see. */
  errorFrame: (request: FastifyRequest) => PageContext | undefined;
}

/** The policy of a refusal's page: its style sheet, nothing else. */
const REFUSAL_CSP = "default-src 'none'; style-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * A console request refused at the door (a drain's or an overload's 503, a 414): a page, not the
 * APIs' JSON, without the console's frame (no session was read then). Its status and headers
 * (`Retry-After`) are set by `sendProblem`; the console's own headers (helmet's) are not, so its
 * policy is here.
 */
export const REFUSAL_PAGES: PageShape = {
  render: (reply, problem) => {
    // As `send`: a form's refusal keeps the page's address.
    if (!isRead(reply.request.method)) void reply.header('hx-push-url', 'false');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', REFUSAL_CSP)
      .header('x-content-type-options', 'nosniff')
      .send(errorPage(undefined, reply.statusCode, problem.message, errorLink(reply.request)).text);
  },
};

/** A console page as the answer: HTML, never cached. */
export function send(reply: FastifyReply, body: Html, status = 200): FastifyReply {
  // An error page shown by htmx for a boosted form keeps the address: a reload then opens the page, not the form's POST path.
  // A link's error page takes its own address, so that a reload tries it again and Back goes to the page before (a review).
  if (status >= 400 && !isRead(reply.request.method)) void reply.header('hx-push-url', 'false');
  // How long the page took to make: the live updates of an open page wait longer after a costly one (assets/console.js).
  void reply.header('server-timing', `app;dur=${reply.elapsedTime.toFixed(1)}`);
  return reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(body.text);
}

/** A same-console path to go back to after an action (never another origin, nor a path outside the console). */
export function backPath(value: string | undefined, fallback: string): string {
  if (value === undefined || !/^\/console(\/[\w\-./%]*)?(\?[\w\-.=&%+:]*)?$/.test(value)) return fallback;
  // Dot segments (`/console/../x`, `%2e%2e` too) are resolved as the browser would, then the path must still be the console's.
  const resolved = new URL(value, 'http://console.invalid');
  return resolved.pathname === '/console' || resolved.pathname.startsWith('/console/') ? `${resolved.pathname}${resolved.search}` : fallback;
}

/** A page's address without its notice (`?notice=refund`): going back to it must not say again that the last action was done. */
export function withoutNotice(pathAndQuery: string): string {
  let out = pathAndQuery;
  // Every `notice=` (an address can hold several): one at a time, since each takes the `&` before the next.
  for (let before = ''; before !== out; ) {
    before = out;
    out = out.replace(/([?&])notice=[^&]*&?/, '$1');
  }
  return out.replace(/[?&]$/, '');
}

/** The console page a request came from (its `Referer`, same origin only), as a path to go back to. */
function refererPath(request: FastifyRequest): string | undefined {
  const referer = request.headers.referer;
  // Longer than any address the service serves (it answers those 414): no page it showed.
  if (referer === undefined || referer.length > MAX_URL_LENGTH || !URL.canParse(referer)) return undefined;
  const url = new URL(referer);
  // As origins (an explicit default port, `:80`, is the same origin).
  const own = `${request.protocol}://${request.host}`;
  if (!URL.canParse(own) || url.origin !== new URL(own).origin) return undefined;
  const path = backPath(withoutNotice(`${url.pathname}${url.search}`), '');
  return path === '' ? undefined : path;
}

/**
 * The link of an error page: for a refused form (a write), back to the page it was sent from; else
 * none of its own (the console's first page). With JavaScript the page is not shown at all: the
 * error goes above the form, which keeps what was typed (assets/console.js).
 */
export function errorLink(request: FastifyRequest): ErrorLink | undefined {
  const from = isRead(request.method) ? undefined : refererPath(request);
  return from === undefined ? undefined : { href: from, label: 'Back' };
}

/**
 * Why a request from `origin` is refused. Behind a proxy that ends TLS or sets another Host, every
 * form came from "another origin" until TRUST_PROXY names the proxy (the console then takes the
 * scheme and host it forwards): said when the request carries a proxy's `X-Forwarded-*` headers
 * that the console did not take (a user test, behind an HTTPS proxy: no login possible, and nothing
 * said why; a review: the hint showed with TRUST_PROXY naming the proxy too).
 */
function otherOrigin(request: FastifyRequest, origin: string, own: string): string {
  const shown = origin.length > 200 ? `${origin.slice(0, 200)}…` : origin;
  const refused = `Refused: the request came from another origin (${shown}; this console is ${own}).`;
  // Forwarded values the console did not take (the proxy is not one TRUST_PROXY names); taken, they are its own, and the origin is another indeed.
  const forwardedProto = request.headers['x-forwarded-proto'];
  const forwardedHost = request.headers['x-forwarded-host'];
  const untrusted = (forwardedProto !== undefined && forwardedProto !== request.protocol) || (forwardedHost !== undefined && forwardedHost !== request.host);
  return untrusted ? `${refused} Behind a proxy that ends TLS or changes the host, set TRUST_PROXY to the proxy's address so the console sees the address the browser used.` : refused;
}

/** The session cookie's name for `request`: by the port its browser sent it to (its `Host`'s, else the scheme's default). */
function cookieNameOf(auth: ConsoleAuth, request: FastifyRequest): string {
  return auth.cookieName(request.port ?? (request.protocol === 'https' ? 443 : 80));
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/**
 * An unrouted request with another method than GET or HEAD is not the console's to answer: it gets
 * the application's answer (404, or 405 with `Allow` when the path takes other methods), as it
 * would without the console's not-found page, with none of the console's session or CSRF checks.
 */
export function passedOn(request: FastifyRequest): boolean {
  return request.is404 && !isRead(request.method);
}

/**
 * The session and CSRF hooks. With CONSOLE_TOKEN, a logged-in session or the login form; without,
 * an anonymous session made on first visit (it carries the CSRF token's nonce). The login form has
 * an anonymous session too, so its POST carries a CSRF token like every other (no login CSRF);
 * logging in replaces it with a new, logged-in one.
 */
export function addAccessHooks(app: FastifyInstance, options: AccessOptions): void {
  const { auth, clock, revokedSessions, errorFrame } = options;
  app.addHook('onRequest', async (request, reply) => {
    if (passedOn(request)) return;
    const path = request.url.split('?', 1)[0] as string;
    const now = clock.now();
    let session = auth.verify(cookieValue(request.headers.cookie, cookieNameOf(auth, request)), now);
    // Logged out (on any replica): as no session. Only logged-in sessions end early.
    if (session?.authenticated === true && (await revokedSessions.isRevoked(session.nonce, now))) session = undefined;
    if (auth.required && session?.authenticated !== true && path !== LOGIN_PATH) session = undefined;
    // Not on asset requests: a first visit's parallel requests would each set another cookie,
    // and the page's CSRF token belongs to the one its own answer set.
    if (session === undefined && (!auth.required || path === LOGIN_PATH) && !path.startsWith('/console/assets/')) {
      const issued = auth.issue(false, now);
      session = issued.session;
      reply.header('set-cookie', sessionCookie(cookieNameOf(auth, request), issued.value, request.protocol === 'https'));
    }
    if (session !== undefined) {
      request.consoleSession = session;
      return;
    }
    if (OPEN_PATHS.has(path) || (!auth.required && path.startsWith('/console/assets/'))) return;
    if (request.method === 'GET' && path !== '/console/events') return reply.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(request.url)}`, 303);
    // A form sent after the session ended (or a log-out): the login form comes back to its page.
    const next = refererPath(request) ?? '/console/payments';
    return send(reply, errorPage(undefined, 401, 'Log in first: this console needs CONSOLE_TOKEN, and a session ends at its log-out or after its time. Nothing was changed.', { href: `${LOGIN_PATH}?next=${encodeURIComponent(next)}`, label: 'Log in' }), 401);
  });

  // Reads: a query parameter given more than once is refused (400). CSRF: every state-changing request carries its session's token; a cross-origin Origin is refused outright.
  app.addHook('preHandler', async (request, reply) => {
    if (passedOn(request)) return;
    if (isRead(request.method)) {
      // A filter or cursor given twice (`?status=a&status=b`): which one was meant is not the page's to guess.
      const repeated = Object.entries((request.query ?? {}) as Record<string, unknown>).flatMap(([name, value]) => (Array.isArray(value) ? [`“${name}”`] : []));
      if (repeated.length === 0) return;
      return send(reply, errorPage(errorFrame(request), 400, `The address gives ${repeated.join(', ')} more than once: each takes one value. Remove the repeats, or use the page’s own filters and links.`), 400);
    }
    const origin = request.headers.origin;
    const own = `${request.protocol}://${request.host}`;
    if (origin !== undefined && origin !== own) return send(reply, errorPage(errorFrame(request), 403, otherOrigin(request, origin, own), errorLink(request)), 403);
    // A login form sent by a tab left on it while another logged in: already in, it goes to its page (it changes nothing).
    if (request.routeOptions.url === LOGIN_PATH && request.consoleSession?.authenticated === true) return;
    const body = (request.body ?? {}) as FormBody;
    // A form's own field wins over the header htmx adds from the page's <meta>, which a boosted
    // navigation does not renew: after a log-in from an ended session's page it was the old one (a review).
    const field: unknown = body[CSRF_FIELD];
    const given = typeof field === 'string' ? field : typeof request.headers[CSRF_HEADER] === 'string' ? (request.headers[CSRF_HEADER] as string) : undefined;
    if (request.consoleSession === undefined || !auth.csrfMatches(request.consoleSession, given)) {
      return send(reply, errorPage(errorFrame(request), 403, 'Refused: the form’s CSRF token is missing or wrong. Reload the page and try again.', errorLink(request)), 403);
    }
  });
}

/** The login form, logging in and logging out, under the console's prefix. */
export function addLoginRoutes(app: FastifyInstance, options: AccessOptions): void {
  const { auth, clock, revokedSessions, logins, maxLoginFailures, sessionStreams, context } = options;
  const hide = { schema: { hide: true } } as const;
  // The session here is anonymous (made by the hook above) unless already logged in; its CSRF
  // token is in the form, and the CSRF hook refuses a POST without it.
  app.get('/login', hide, async (request, reply) => {
    const next = backPath((request.query as { next?: string }).next, '/console/payments');
    if (!auth.required || request.consoleSession?.authenticated === true) return reply.redirect(next, 303);
    return send(reply, loginPage(undefined, next, context(request).csrf));
  });
  // Every attempt counts in its address' window (a rate-limit store of its own, shared by the
  // replicas on Redis: in FluxPay's, new X-Client-Id values could push it out); a success ends the
  // window, so what it counts is the failures since the last success. Past maxLoginFailures, a
  // login is refused with 429 until the window ends, whatever its token.
  app.post('/login', hide, async (request, reply) => {
    const body = (request.body ?? {}) as FormBody;
    const next = backPath(body.next, '/console/payments');
    if (!auth.required || request.consoleSession?.authenticated === true) return reply.redirect(next, 303);
    const address = request.ip;
    const key = `console-login:${normalizeIP(address)}`;
    const now = clock.now();
    const window = await logins.hit(key, LOGIN_WINDOW_MS, now);
    if (window.current > maxLoginFailures) {
      const retryAfterS = Math.max(1, Math.ceil((window.resetAt - now) / 1000));
      // Once per window (the first refusal; the count is shared, so one replica says it), not per attempt of a flood.
      if (window.current === maxLoginFailures + 1) {
        request.log.warn({ address, retryAfterS }, `console login refused: ${maxLoginFailures} failed logins from ${address} within a minute; logins from it are refused for ${retryAfterS} s`);
      }
      const message = `Too many failed logins from your address: try again in ${retryAfterS} s.`;
      return send(reply.header('Retry-After', String(retryAfterS)), loginPage(message, next, context(request).csrf), 429);
    }
    if (!auth.tokenMatches(body.token ?? '')) {
      request.log.warn({ address, failures: window.current }, `console login failed: wrong token from ${address}`);
      return send(reply, loginPage('Wrong token.', next, context(request).csrf), 401);
    }
    await logins.reset(key);
    const issued = auth.issue(true, now);
    request.log.info({ address }, `console login from ${address}`);
    return reply.header('set-cookie', sessionCookie(cookieNameOf(auth, request), issued.value, request.protocol === 'https', auth.ttlMs)).redirect(next, 303);
  });
  // Ends a logged-in session on every replica: its nonce is kept as revoked until its expiry.
  app.post('/logout', hide, async (request, reply) => {
    const session = request.consoleSession;
    if (session?.expiresAt !== undefined) {
      await revokedSessions.revoke(session.nonce, session.expiresAt);
      sessionStreams.endSession(session.nonce);
      request.log.info({ address: request.ip }, `console logout from ${request.ip}`);
    }
    return reply.header('set-cookie', clearedCookie(cookieNameOf(auth, request))).redirect(LOGIN_PATH, 303);
  });
}
