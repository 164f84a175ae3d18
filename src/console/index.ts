import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import helmet from '@fastify/helmet';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { DomainError, notFound, validationFailed } from '../core/errors.ts';
import { DEFAULT_NAMESPACE } from '../core/faults/service.ts';
import { isDeliveryEvent, type DomainEvent } from '../core/events.ts';
import { FLUXPAY_SUBJECT_KIND } from '../dialects/fluxpay/webhook-payload.ts';
import { formatMix } from '../core/faults/mix.ts';
import { sendTestWebhook } from '../dialects/native/webhook-payload.ts';
import { problemOf } from '../http/problem.ts';
import { CLIENT_REFERENCE } from '../http/schemas.ts';
import { addAccessHooks, addLoginRoutes, backPath, errorLink, passedOn, REFUSAL_PAGES, send, withoutNotice, type AccessOptions } from './access.ts';
import { ConsoleAuth, type Session } from './auth.ts';
import { LiveFeed } from './feed.ts';
import { SessionStreams } from './session-streams.ts';
import { ActivitySeries } from './series.ts';
import { checkJsonForm, currency, httpUrl, integer, oneOf, parseForm, scenarioChoice, text, type FormBody } from './forms.ts';
import type { PageContext } from './layout.ts';
import { chartsPage, errorPage, panelPage } from './pages/other.ts';
import { detailPage, NOTICES as PAYMENT_NOTICES, paymentsPage } from './pages/payments.ts';
import { listPayments, readPaymentFilters } from './payments-list.ts';
import { NOTICES as RULE_NOTICES, rulesPage } from './pages/rules.ts';
import { listDeliveries, NOTICES as WEBHOOK_NOTICES, readWebhookFilters, webhooksPage } from './pages/webhooks.ts';
import { BOOKING_SUBJECT, bookingSource, bookingsPage } from './sources/bookings.ts';
import { fluxpayPage, fluxpaySource } from './sources/fluxpay.ts';
import { INTENT_SUBJECT, nativeSource } from './sources/native.ts';
import { V2_SUBJECT, v2Source } from './sources/v2.ts';
import type { PanelPage, PaymentSource, Topic } from './sources.ts';

/**
 * The web console at `/console` (issue 13): server-rendered HTML pages made fresh on each request
 * from the same core services the APIs use, made live by Server-Sent Events from the event bus
 * (assets/console.js refreshes the regions whose topics changed, with htmx), with polling as the
 * fallback. Everything it serves comes from this package: htmx from node_modules, its own
 * script and style sheet from assets/.
 *
 * An encapsulated plugin: its Content-Security-Policy (@fastify/helmet), its form parser, its
 * session and CSRF checks and its HTML error pages apply under /console only; the APIs' answers do
 * not change. Its routes are hidden from the OpenAPI document: they answer HTML and an event
 * stream, not JSON data.
 *
 * Who may use it (sessions, CSRF, the login) is ./access.ts; the pages' markup is in ./pages/.
 *
 * Where each dialect comes in: `sources` (one per dialect's payments) and `panelPages` (pages of
 * panels) below; a new dialect adds one entry to each list, and its event types to `topicsOf`.
 * @see issue 13
 */

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession?: Session;
  }
}

export interface ConsoleOptions {
  token: string | undefined;
  /** Without a token: the session key every process shares on Redis (config.console.sessionKey). */
  sessionKey?: string | undefined;
  /** How long a logged-in session lasts (config.console.sessionTtlMs; default DEFAULT_SESSION_TTL_MS). */
  sessionTtlMs?: number | undefined;
  /** Failed logins per client address and minute (access.ts' LOGIN_WINDOW_MS) before its logins are refused (config.console.maxLoginFailures; default 10). */
  maxLoginFailures?: number | undefined;
  /** Told the live feed (tests look whether it is subscribed to the bus). */
  onFeed?: ((feed: LiveFeed) => void) | undefined;
}

const require = createRequire(import.meta.url);
const ASSETS = new URL('./assets/', import.meta.url);
const HIDE = { hide: true } as const;
/** Form bodies are small; anything bigger is not from these forms. */
const FORM_BODY_LIMIT = 16_384;

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(): Map<string, Asset> {
  return new Map<string, Asset>([
    ['htmx.min.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(require.resolve('htmx.org/dist/htmx.min.js')) }],
    ['console.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('console.js', ASSETS)) }],
    ['console.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('console.css', ASSETS)) }],
  ]);
}

/** The status of a console page for a core error (the APIs map the same codes). */
const STATUS_OF: Readonly<Record<string, number>> = {
  VALIDATION_FAILED: 400,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  REFUND_EXCEEDS_AMOUNT: 422,
  FORBIDDEN: 403,
  SOLD_OUT: 409,
  BOOKING_EXPIRED: 409,
  PAYMENT_ALREADY_PROCESSED: 409,
  STORE_FULL: 503,
  STORE_UNAVAILABLE: 503,
};

/** A core error as a page says it: a form field's rule is its own sentence, which names the field (not "amount: amount must …", the APIs' form). */
function messageOf(error: DomainError): string {
  const details = error.details ?? [];
  // Each field's own words, every one of them (two fields given twice, or not text, are both named).
  const own = details.length > 0 && details.every((detail) => detail.message.startsWith(`${detail.field} `));
  return error.code === 'VALIDATION_FAILED' && own ? details.map((detail) => detail.message).join('; ') : error.message;
}

function withNotice(path: string, code: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}notice=${code}`;
}

/** A form's client reference (reservation_id, tx_id) as the APIs' schemas take it. */
const CLIENT_REFERENCE_RULE = { pattern: new RegExp(CLIENT_REFERENCE.pattern), rule: CLIENT_REFERENCE['x-pattern-description'] } as const;

/** The delivery log's subject kinds, for the Webhooks page's subject filter. */
const SUBJECT_KINDS = [INTENT_SUBJECT, V2_SUBJECT, BOOKING_SUBJECT, FLUXPAY_SUBJECT_KIND] as const;

const consolePlugin: FastifyPluginAsync<ConsoleOptions> = async (scope, options) => {
  const app = scope as FastifyInstance;
  const { bus, intents, stores, clock, ids, config } = app.core;
  const { dispatcher, log: deliveries } = app.webhooks;
  const auth = new ConsoleAuth(options.token, options.sessionKey, options.sessionTtlMs);
  const maxLoginFailures = options.maxLoginFailures ?? 10;
  app.core.onSweep((now) => stores.revokedSessions.sweep(now));
  app.core.onSweep((now) => stores.consoleLogins.sweep(now));
  const assets = loadAssets();

  const bookingDeps = { service: app.bookings.service, seats: stores.seats, ledger: stores.ledger, performances: app.bookings.performances, now: () => clock.now() };
  const fluxpayDeps = { service: app.fluxpay.service, store: stores.fluxpay, rooms: app.waitingRooms, billing: stores.billing, defaultWebhookUrl: config.fluxpay.webhookUrl };
  /** One per dialect's payments. */
  const sources: PaymentSource[] = [nativeSource(intents), v2Source(app.v2Payments), bookingSource(bookingDeps), fluxpaySource(fluxpayDeps)];
  /** Pages of panels. */
  const panelPages: PanelPage[] = [bookingsPage(bookingDeps), fluxpayPage(fluxpayDeps)];
  // No Rules page when fault injection is off (FAULTS_ENABLED=false).
  const rulesNav: Array<readonly [string, string]> = app.faults === null ? [] : [['rules', 'Rules']];
  const nav: Array<readonly [string, string]> = [['payments', 'Payments'], ['webhooks', 'Webhooks'], ...panelPages.map((p) => [p.path, p.title] as const), ...rulesNav, ['charts', 'Charts']];

  const topicsOf = (event: DomainEvent): Topic[] => {
    const topics: Topic[] = [];
    if (sources.some((s) => s.concerns(event))) topics.push('payments');
    if (isDeliveryEvent(event)) topics.push('webhooks');
    for (const p of panelPages) if (p.concerns(event) && !topics.includes(p.topic)) topics.push(p.topic);
    return topics;
  };
  // Always on (while the console is enabled), so the charts have history when a page opens: per
  // event, a switch and a counter increment; memory fixed by the window.
  const series = new ActivitySeries(clock);
  const unsubscribeSeries = bus.subscribe((event) => series.onEvent(event));
  app.addHook('onClose', async () => unsubscribeSeries());
  // Through `app` at each check: a test stands in for Redis' outage by replacing it.
  const feed = new LiveFeed(bus, topicsOf, () => app.storeUnavailable() === undefined);
  // The streams of logged-in sessions end with their session (a log out here or on another replica, an expiry).
  const sessionStreams = new SessionStreams({ now: () => clock.now(), isRevoked: (nonce, now) => stores.revokedSessions.isRevoked(nonce, now) });
  app.addHook('preClose', async () => {
    sessionStreams.close();
    feed.close();
  });
  options.onFeed?.(feed);

  // Headers for the console only: a CSP with no inline script or style, no framing, no referrer.
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    // A simulator usually runs on plain http in a local stack: no HSTS, no upgrading requests.
    strictTransportSecurity: false,
    // same-origin, not no-referrer: with no-referrer a form's POST says `Origin: null`, which the
    // origin check (access.ts) could not tell from another site's.
    referrerPolicy: { policy: 'same-origin' },
    // As the policy's frame-ancestors 'none' (helmet's default SAMEORIGIN disagreed with it: a review).
    xFrameOptions: { action: 'deny' },
  });

  // What the door refuses under /console (a drain's writes, an overload, a closing process): a page too.
  app.errorShapes.registerPages('/console', REFUSAL_PAGES);

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, async (_request: unknown, body: string | Buffer) => parseForm(body as string));
  // The application's JSON parser reaches the console's forms too: every field must be text there as well.
  app.addHook('preValidation', async (request) => checkJsonForm(request.body));

  const servedBy = { host: hostname(), pid: process.pid, worker: cluster.isWorker ? cluster.worker?.id : undefined };
  const context = (request: FastifyRequest): PageContext => ({
    csrf: request.consoleSession === undefined ? '' : auth.csrfToken(request.consoleSession),
    loggedIn: auth.required,
    nav,
    servedBy,
  });
  /** The frame of an error page: the console's, unless CONSOLE_TOKEN is set and nobody logged in (the login form's anonymous session). */
  const errorFrame = (request: FastifyRequest): PageContext | undefined => (auth.required && request.consoleSession?.authenticated !== true ? undefined : context(request));

  const access: AccessOptions = { auth, clock, revokedSessions: stores.revokedSessions, logins: stores.consoleLogins, maxLoginFailures, sessionStreams, context, errorFrame };
  addAccessHooks(app, access);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    // Handed to the application's handler, which answers an unrouted request (404, or 405 with Allow).
    if (passedOn(request)) throw error;
    if (error instanceof DomainError) {
      // A store away or full: Retry-After as the APIs give it (problemOf's figure for that error),
      // and counted as theirs are (store_unavailable_total, store_full_total and its warning).
      const problem = problemOf(error, STATUS_OF);
      reply.server.errorShapes?.notify(problem);
      if (problem.retryAfterS !== undefined) void reply.header('Retry-After', String(problem.retryAfterS));
      return send(reply, errorPage(errorFrame(request), STATUS_OF[error.code] ?? 400, messageOf(error), errorLink(request)), STATUS_OF[error.code] ?? 400);
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, 'console request failed');
    return send(reply, errorPage(errorFrame(request), status, status === 500 ? 'Something went wrong; the log has the details.' : error.message, errorLink(request)), status);
  });

  // A path under /console no page has: an HTML page in the console's frame, for reading methods.
  app.setNotFoundHandler(async (request, reply) => {
    if (passedOn(request)) throw Object.assign(new Error(`No route ${request.method} ${request.url}`), { statusCode: 404 });
    const path = request.url.split('?', 1)[0] as string;
    return send(reply, errorPage(errorFrame(request), 404, `There is no console page at ${path}.`), 404);
  });

  app.get('/assets/:name', { schema: HIDE }, async (request, reply) => {
    const asset = assets.get((request.params as { name: string }).name);
    if (asset === undefined) return send(reply, errorPage(undefined, 404, 'No such asset.'), 404);
    return reply.header('content-type', asset.type).header('cache-control', 'public, max-age=300').send(asset.body);
  });

  // ── login and logout ─────────────────────────────────────────────────────────────────────
  addLoginRoutes(app, access);

  app.get('/', { schema: HIDE }, async (_request, reply) => reply.redirect('/console/payments', 303));

  // ── live feed ────────────────────────────────────────────────────────────────────────────
  app.get('/events', { schema: HIDE }, async (request, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    raw.flushHeaders();
    const remove = feed.add({ write: (chunk) => void raw.write(chunk), end: () => raw.end() });
    const session = request.consoleSession;
    const forget =
      session?.expiresAt === undefined
        ? undefined
        : sessionStreams.add(session.nonce, session.expiresAt, () => {
            remove();
            raw.end();
          });
    // The response closes when the browser goes (or the feed or the session ends it); a socket error ends it too.
    const closed = (): void => {
      remove();
      forget?.();
    };
    raw.on('close', closed);
    raw.on('error', closed);
  });

  // ── payments ─────────────────────────────────────────────────────────────────────────────
  /** The MIX setting's weights, which the create forms' scenario mix takes when no weights are given. */
  const defaultMix = config.scenarios.mix === undefined ? undefined : formatMix(config.scenarios.mix);
  const messages = (request: FastifyRequest, notices: Readonly<Record<string, string>>): { notice?: string } => {
    const code = (request.query as { notice?: string }).notice;
    const text = code === undefined ? undefined : notices[code];
    return text === undefined ? {} : { notice: text };
  };

  app.get('/payments', { schema: HIDE }, async (request, reply) => {
    const { filters, invalid } = readPaymentFilters(sources, request.query as Record<string, string | undefined>);
    return send(reply, paymentsPage(context(request), sources, filters, await listPayments(sources, filters, clock.now()), { ...messages(request, PAYMENT_NOTICES), invalid }, defaultMix));
  });

  const sourceOf = (dialect: string): PaymentSource => {
    const source = sources.find((s) => s.dialect === dialect);
    if (source === undefined) throw new DomainError('NOT_FOUND', `There is no payment dialect ${dialect}.`);
    return source;
  };

  app.get('/payments/:dialect/:id', { schema: HIDE }, async (request, reply) => {
    const { dialect, id } = request.params as { dialect: string; id: string };
    const source = sourceOf(dialect);
    const detail = await source.get(id);
    if (detail === undefined) throw new DomainError('NOT_FOUND', `Payment ${id} does not exist (or is no longer kept).`);
    const list = await deliveries.list({ subject: detail.subject, limit: 50 });
    return send(reply, detailPage(context(request), source, detail, list.data, messages(request, PAYMENT_NOTICES)));
  });

  app.post('/payments/:dialect/:id/:action', { schema: HIDE }, async (request, reply) => {
    const { dialect, id, action } = request.params as { dialect: string; id: string; action: string };
    const source = sourceOf(dialect);
    const detail = await source.get(id);
    if (detail === undefined) throw new DomainError('NOT_FOUND', `Payment ${id} does not exist (or is no longer kept).`);
    if (source.act === undefined || !detail.actions.some((a) => a.name === action)) {
      throw new DomainError('INVALID_STATE', `Payment ${id} is ${detail.row.status}; “${action}” is not possible now.`);
    }
    await source.act(id, action, (request.body ?? {}) as FormBody);
    return reply.redirect(withNotice(`/console/payments/${dialect}/${encodeURIComponent(id)}`, action), 303);
  });

  app.post('/payments/new/intent', { schema: HIDE }, async (request, reply) => {
    const body = (request.body ?? {}) as FormBody;
    const cardNumber = text(body, 'card_number', { max: 19, pattern: /^\d+$/, rule: 'digits only' });
    const cvv = text(body, 'card_cvv', { max: 4, pattern: /^\d{3,4}$/, rule: '3 or 4 digits' });
    const card = cardNumber === undefined && cvv === undefined ? undefined : { number: cardNumber, cvv };
    const intent = await intents.create({
      reservationId: text(body, 'reservation_id', { max: 128, required: true, ...CLIENT_REFERENCE_RULE }) as string,
      amount: integer(body, 'amount', { min: 1, max: 100_000_000_000, required: true }) as number,
      currency: currency(body, 'currency') ?? 'KRW',
      scenario: card === undefined ? scenarioChoice(body, config.scenarios.mix) : undefined,
      delayMs: integer(body, 'delay_ms', { min: 0, max: 600_000 }),
      card,
      webhookUrl: httpUrl(body, 'webhook_url'),
    });
    return reply.redirect(withNotice(`/console/payments/intent/${intent.id}`, 'created'), 303);
  });

  app.post('/payments/new/v2', { schema: HIDE }, async (request, reply) => {
    const body = (request.body ?? {}) as FormBody;
    const outcome = await app.v2Payments.create(
      {
        txId: text(body, 'tx_id', { max: 128, required: true, ...CLIENT_REFERENCE_RULE }) as string,
        orderId: integer(body, 'order_id', { min: 0, max: Number.MAX_SAFE_INTEGER, required: true }) as number,
        userId: integer(body, 'user_id', { min: 0, max: Number.MAX_SAFE_INTEGER, required: true }) as number,
        amount: integer(body, 'amount', { min: 1, max: 100_000_000_000, required: true }) as number,
        callbackUrl: httpUrl(body, 'callback_url', true) as string,
      },
      scenarioChoice(body, config.scenarios.mix),
    );
    if (outcome.kind === 'conflict') throw new DomainError('INVALID_STATE', `tx_id ${outcome.payment.txId} already has a payment made by another request.`);
    return reply.redirect(withNotice(`/console/payments/v2/${encodeURIComponent(outcome.payment.id)}`, 'created'), 303);
  });

  // ── webhooks ─────────────────────────────────────────────────────────────────────────────
  app.get('/webhooks', { schema: HIDE }, async (request, reply) => {
    const { filters, invalid, form } = readWebhookFilters(request.query as Record<string, string | undefined>, SUBJECT_KINDS);
    const back = backPath(withoutNotice(request.url), '/console/webhooks');
    const [listed, stats, disabled] = await Promise.all([listDeliveries(deliveries, filters), deliveries.stats(), dispatcher.disabledUrls()]);
    return send(reply, webhooksPage(context(request), { form, filters, invalid, listed, total: stats.size }, disabled, back, messages(request, WEBHOOK_NOTICES)));
  });

  app.post('/webhooks/:id/replay', { schema: HIDE }, async (request, reply) => {
    await dispatcher.replay((request.params as { id: string }).id);
    return reply.redirect(withNotice(backPath(((request.body ?? {}) as FormBody).back, '/console/webhooks'), 'replayed'), 303);
  });

  app.post('/webhooks/enable', { schema: HIDE }, async (request, reply) => {
    const url = text((request.body ?? {}) as FormBody, 'url', { max: 2048, required: true }) as string;
    if (!(await dispatcher.enableUrl(url))) throw new DomainError('NOT_FOUND', `${url} is not disabled.`);
    return reply.redirect(withNotice('/console/webhooks', 'enabled'), 303);
  });

  app.post('/webhooks/test', { schema: HIDE }, async (request, reply) => {
    const body = (request.body ?? {}) as FormBody;
    const intent = await intents.get(text(body, 'payment_intent_id', { max: 64, required: true }) as string);
    const type = oneOf(body, 'type', ['payment.approved', 'payment.failed'] as const) ?? 'payment.approved';
    const url = httpUrl(body, 'webhook_url', true) as string;
    // The same test send as POST /v1/sim/webhook/test.
    const delivery = await sendTestWebhook({ dispatcher, ids, clock, schemes: config.webhook.schemes }, intent, type, url);
    // Failed at once: says why (a reason without a notice of its own shows none rather than a wrong one).
    const notice = delivery.status === 'failed' ? `test_${delivery.failureReason ?? 'failed'}` : 'test_sent';
    return reply.redirect(withNotice('/console/webhooks', notice), 303);
  });

  // ── fault rules: through FaultRuleService and the same delete as DELETE /v1/sim/rules/{id} ──
  const faults = app.faults;
  if (faults !== null) {
    app.get('/rules', { schema: HIDE }, async (request, reply) => send(reply, rulesPage(context(request), await faults.service.list(DEFAULT_NAMESPACE), messages(request, RULE_NOTICES), clock.now())));

    app.post('/rules/:id/enabled', { schema: HIDE }, async (request, reply) => {
      const { id } = request.params as { id: string };
      const enabled = oneOf((request.body ?? {}) as FormBody, 'enabled', ['true', 'false'] as const);
      if (enabled === undefined) throw validationFailed([{ field: 'enabled', rule: 'required', message: 'enabled is required' }]);
      const stored = await faults.service.setEnabled(DEFAULT_NAMESPACE, id, enabled === 'true');
      if (stored === undefined) throw notFound('Fault rule', id);
      return reply.redirect(withNotice('/console/rules', enabled === 'true' ? 'switched_on' : 'switched_off'), 303);
    });

    app.post('/rules/:id/delete', { schema: HIDE }, async (request, reply) => {
      const { id } = request.params as { id: string };
      if ((await faults.delete(DEFAULT_NAMESPACE, id)) === undefined) throw notFound('Fault rule', id);
      return reply.redirect(withNotice('/console/rules', 'deleted'), 303);
    });
  }

  // ── panel pages (bookings, FluxPay) and charts ───────────────────────────────────────────
  for (const panels of panelPages) {
    app.get(`/${panels.path}`, { schema: HIDE }, async (request, reply) => send(reply, await panelPage(context(request), panels, request.query as Record<string, string | undefined>, request.headers['x-console-refresh'] === '1')));
  }

  app.get('/charts', { schema: HIDE }, async (request, reply) => {
    const labels = Object.fromEntries(sources.map((s) => [s.dialect, s.label]));
    return send(reply, chartsPage(context(request), series.read(), labels));
  });
};

export default consolePlugin;
