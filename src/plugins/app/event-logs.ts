import fp from 'fastify-plugin';
import type { Delivery } from '../../core/deliveries.ts';
import type { DomainEvent } from '../../core/events.ts';
import { INVALID_URL, originAndPath } from '../../http/logged-url.ts';
import { WarningLimiter } from '../../webhooks/warning-limiter.ts';

/**
 * What the event bus says that an operator should read in the log, fed from the same facts as the
 * metrics:
 * - webhook trouble at warn: a delivery that ended `failed` (`gone` included), a URL disabled by a
 *   410, a retry scheduled after a failed attempt; each with the delivery id, the target (origin and
 *   path only: no credentials, no query string), the attempt number and the reason. Retry and
 *   failure warnings are rate-limited per receiver origin, with a summary of what was left out;
 * - a webhook dropped because the delivery log was full (`log_full`) at error, the first of each
 *   minute, then the count of the rest;
 * - decisions at debug: an intent decided, a booking's payment decided.
 */

/** Retry warnings, and failure warnings, let through per receiver origin in each interval. */
export const RETRY_WARNINGS_PER_INTERVAL = 10;
export const FAILURE_WARNINGS_PER_INTERVAL = 20;
export const WARNING_INTERVAL_MS = 60_000;
/** A webhook dropped because the delivery log was full: the first of each interval at error, then a count. */
export const LOG_FULL_ERRORS_PER_INTERVAL = 1;
export const LOG_FULL_MSG =
  'webhook dropped: the delivery log is full of unfinished deliveries (WEBHOOK_LOG_MAX), so new webhooks are dropped until some finish; raise WEBHOOK_MAX_RPS or WEBHOOK_LOG_MAX, fix failing receivers, or send fewer webhooks';

function originOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.origin === 'null' ? parsed.protocol : parsed.origin;
  } catch {
    return INVALID_URL;
  }
}

/** The attempts of the current series (a replay starts a new one); 0 when none was made. */
function attemptNumber(delivery: Readonly<Delivery>): number {
  return delivery.attempts.length - delivery.seriesStart;
}

/** What the last attempt got: `HTTP 503`, or the network error or timeout in words. */
function lastAttemptReason(delivery: Readonly<Delivery>): string {
  const last = delivery.attempts.at(-1);
  if (last === undefined) return 'no attempt';
  return last.error ?? `HTTP ${last.statusCode}`;
}

function deliveryFields(delivery: Readonly<Delivery>): Record<string, unknown> {
  return {
    delivery_id: delivery.id,
    event_type: delivery.type,
    ...(delivery.subject === null ? {} : { subject: `${delivery.subject.kind}:${delivery.subject.id}` }),
    url: originAndPath(delivery.url),
    attempt: attemptNumber(delivery),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

export default fp(
  async (app) => {
    const { bus, clock } = app.core;
    const log = app.log;

    const retries = new WarningLimiter(clock, { limit: RETRY_WARNINGS_PER_INTERVAL, intervalMs: WARNING_INTERVAL_MS }, (origin, suppressed, since) =>
      log.warn({ origin, suppressed, since: iso(since) }, `webhook retry warnings suppressed: ${suppressed} more retries to ${origin} since ${iso(since)}`),
    );
    const failures = new WarningLimiter(clock, { limit: FAILURE_WARNINGS_PER_INTERVAL, intervalMs: WARNING_INTERVAL_MS }, (origin, suppressed, since) =>
      log.warn({ origin, suppressed, since: iso(since) }, `webhook failure warnings suppressed: ${suppressed} more failed deliveries to ${origin} since ${iso(since)}`),
    );
    // One delivery log for every receiver: a load that outruns the deliveries drops every new
    // webhook, thousands a second, so only the first of a minute is logged, then their count.
    const logFull = new WarningLimiter(clock, { limit: LOG_FULL_ERRORS_PER_INTERVAL, intervalMs: WARNING_INTERVAL_MS }, (_key, suppressed, since) =>
      log.error({ reason: 'log_full', suppressed, since: iso(since) }, `webhooks dropped as the delivery log was full: ${suppressed} more since ${iso(since)}`),
    );

    const retryScheduled = (delivery: Readonly<Delivery>): void => {
      if (!retries.allow(originOf(delivery.url))) return;
      const next = delivery.nextAttemptAt === null ? null : iso(delivery.nextAttemptAt);
      log.warn({ ...deliveryFields(delivery), reason: lastAttemptReason(delivery), next_attempt_at: next }, 'webhook attempt failed; retry scheduled');
    };

    const failed = (delivery: Readonly<Delivery>): void => {
      const reason = delivery.failureReason ?? 'unknown';
      if (reason === 'gone') {
        // 410 Gone: the dispatcher has disabled the URL. Never rate-limited: it happens once per URL
        // (later deliveries to it fail as endpoint_disabled) until someone re-enables it.
        const fields = deliveryFields(delivery);
        log.warn({ ...fields, reason }, 'webhook delivery gone: the receiver answered 410');
        log.warn(
          { url: fields.url, delivery_id: delivery.id, reason: 'HTTP 410 Gone' },
          'webhook URL disabled: deliveries to it fail as endpoint_disabled until it is re-enabled (DELETE /v1/sim/webhooks/disabled-urls?url=… with the whole URL, its query too, as GET /v1/sim/webhooks/disabled-urls lists it: the log leaves the query out; or WEBHOOK_MAX_DISABLED_URLS later ones)',
        );
        return;
      }
      if (reason === 'log_full') {
        // The delivery is in no log: its event id says which webhook never went out.
        if (logFull.allow(reason)) log.error({ ...deliveryFields(delivery), event_id: delivery.eventId, reason }, LOG_FULL_MSG);
        return;
      }
      if (!failures.allow(originOf(delivery.url))) return;
      log.warn({ ...deliveryFields(delivery), reason }, 'webhook delivery failed');
    };

    bus.subscribe((event: DomainEvent) => {
      switch (event.type) {
        case 'webhook.retry_scheduled':
          retryScheduled(event.delivery);
          break;
        case 'webhook.failed':
          failed(event.delivery);
          break;
        case 'payment.approved':
        case 'payment.failed':
          log.debug(
            { intent_id: event.intent.id, reservation_id: event.intent.reservationId, scenario: event.intent.scenario, status: event.intent.status, failure_code: event.intent.failureCode },
            'payment intent decided',
          );
          break;
        case 'booking.payment_decided':
          log.debug(
            { booking_id: event.booking.id, kind: event.kind, result: event.isSuccess ? 'success' : 'failure', failure_code: event.failureCode },
            'booking payment decided',
          );
          break;
        default:
          break;
      }
    });

    // What the open intervals suppressed is told before the logger goes.
    app.addHook('onClose', async () => {
      retries.flush();
      failures.flush();
      logFull.flush();
    });
  },
  { name: 'paysim-event-logs', dependencies: ['paysim-core'] },
);
