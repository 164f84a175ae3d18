import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';

/**
 * The trace a piece of deferred work belongs to, carried as a W3C `traceparent` string from where
 * it was asked for (a request) to where it runs (a scheduler job, a webhook attempt, maybe on
 * another replica), and made the active context again there. Without it, deferred work ran in
 * whatever context armed the timer or started the worker: one scheduler timer for many jobs, so
 * under load webhooks joined another request's trace (a user test found six intents' webhooks in
 * the first one's trace), and on Redis every webhook began a new trace.
 *
 * Without a tracing SDK (OTEL_EXPORTER_OTLP_ENDPOINT unset) the API's propagator is a no-op: no
 * string is made or kept, and work runs as it did.
 */

/** The active context's trace as a `traceparent` (sampled or not), or undefined when there is none. */
export function currentTraceparent(): string | undefined {
  const carrier: { traceparent?: string } = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * Runs `work` in the trace of `traceparent`, or in no trace at all: never in the context it was
 * called from, which belongs to whatever happened to start the loop that runs it.
 */
export function inTrace<T>(traceparent: string | undefined, work: () => T): T {
  return context.with(traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, { traceparent }), work);
}

/**
 * The traces of deferred work this process was asked for whose records carry none (FluxPay's outbox
 * events; scheduled jobs keep theirs in the job, `Job.trace`), by key, until it ran: work another
 * replica takes runs in no trace. Bounded: past `max` the oldest goes (work another replica
 * completed is never taken here).
 */
export class DeferredTraces {
  readonly #byKey = new Map<string, string>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Notes the active trace, if any, as each of `keys`' (one look at the context for all). */
  capture(...keys: string[]): void {
    const traceparent = currentTraceparent();
    if (traceparent === undefined) return;
    for (const key of keys) {
      this.#byKey.delete(key);
      this.#byKey.set(key, traceparent);
      if (this.#byKey.size > this.#max) this.#byKey.delete(this.#byKey.keys().next().value as string);
    }
  }

  get(key: string): string | undefined {
    return this.#byKey.size === 0 ? undefined : this.#byKey.get(key);
  }

  forget(key: string): void {
    if (this.#byKey.size > 0) this.#byKey.delete(key);
  }
}
