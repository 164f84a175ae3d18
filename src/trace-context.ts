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
 * The traces of scheduled jobs this process was asked for, by job, until they ran (or were
 * cancelled): a job's record carries none, so a job another replica claims runs in no trace.
 * Bounded: past `max` the oldest goes (a job completed by another replica is never taken here).
 */
export class JobTraces {
  readonly #byJob = new Map<string, string>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Notes the active trace, if any, as `job`'s. */
  capture(job: string): void {
    const traceparent = currentTraceparent();
    if (traceparent === undefined) return;
    this.#byJob.delete(job);
    this.#byJob.set(job, traceparent);
    if (this.#byJob.size > this.#max) this.#byJob.delete(this.#byJob.keys().next().value as string);
  }

  get(job: string): string | undefined {
    return this.#byJob.size === 0 ? undefined : this.#byJob.get(job);
  }

  forget(job: string): void {
    if (this.#byJob.size > 0) this.#byJob.delete(job);
  }

  get size(): number {
    return this.#byJob.size;
  }
}
