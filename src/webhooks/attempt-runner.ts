import { inTrace } from '../trace-context.ts';
import type { Clock } from '../core/clock.ts';
import type { Delivery, DeliveryAttempt, DeliveryChange } from '../core/deliveries.ts';
import type { DeliveryEventType } from '../core/events.ts';
import type { DeliveryExpectation, DeliveryLogStore, DeliveryQueue, DisabledUrlStore, Job } from '../core/ports.ts';
import type { RandomSource } from '../core/random.ts';
import type { Scheduler } from '../core/scheduler.ts';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { attempt } from './attempt.ts';
import type { Drain } from './drain.ts';
import { dropped, type FaultPlans } from './fault-plans.ts';
import type { QueueHoldings } from './holdings.ts';
import { nextStep, type RetrySettings } from './retry-policy.ts';
import type { SignerRegistry } from './signers/registry.ts';
import type { RateCap } from './token-bucket.ts';

/**
 * A delivery's attempt and the record of its result, for the dispatcher (./dispatcher.ts: the
 * queue, the pool and lanes, intake, replays, the retry job, the drain and the close), which hands
 * it each delivery its lanes let go (`attempt`). One attempt: the disabled-URL check, the rate-cap
 * token, the signed request over the Agent, then what the retry policy says: delivered, failed
 * (410 disables the URL) or a retry marked with its job (`retryAt`, `markWithJob`), and the end
 * recorded and published (`finish`, which the intake also uses). A delivery taken from a shared
 * queue is recorded only while the log and the stream still hold it as it was handed over, then
 * acknowledged or handed back.
 * @see issue 14 "Webhook delivery"
 */

export const RETRY_JOB = 'webhook.retry';

/** `onSuperseded`'s `why`: an attempt made here whose result was not recorded. */
export const NOT_RECORDED = 'sent, not recorded: another replica had taken it over or recorded it, or it had left the log';

/** The dispatcher's stores, Agent, signers and settings, and the parts it shares with the attempts. */
export interface AttemptDeps {
  clock: Clock;
  log: DeliveryLogStore;
  disabled: DisabledUrlStore;
  scheduler: Scheduler;
  agent: UndiciDispatcher;
  signers: SignerRegistry;
  settings: RetrySettings & { timeoutMs: number };
  onError: (error: unknown, context: string) => void;
  /** See `DispatcherDeps.onSuperseded`. */
  onSuperseded?: ((id: string, why: string) => void) | undefined;
  /** See `DispatcherDeps.onUrlsReenabled`. */
  onUrlsReenabled?: ((urls: readonly string[], byDelivery: string) => void) | undefined;
  queue: DeliveryQueue;
  holdings: QueueHoldings;
  drain: Drain;
  bucket: RateCap | undefined;
  jitter: RandomSource;
  faultPlans: FaultPlans;
}

/** What the attempts ask of their dispatcher. */
export interface AttemptHost {
  /** The dispatcher has closed: no attempt begins, and one its close cut is not recorded. */
  closed(): boolean;
  /** This process is done with the delivery (the drain no longer waits for it); `forgetPlan`: its fault plan too. */
  settle(id: string, forgetPlan: boolean): void;
  publish(type: DeliveryEventType, delivery: Delivery, attempt?: DeliveryAttempt): void;
}

export class AttemptRunner {
  readonly #deps: AttemptDeps;
  readonly #host: AttemptHost;
  readonly #queue: DeliveryQueue;
  /** The queue is shared by several processes: what this one must finish is what it took from it. */
  readonly #shared: boolean;
  readonly #holdings: QueueHoldings;
  readonly #drain: Drain;
  readonly #bucket: RateCap | undefined;
  readonly #jitter: RandomSource;
  readonly #faultPlans: FaultPlans;
  #requestsInFlight = 0;

  constructor(deps: AttemptDeps, host: AttemptHost) {
    ({ queue: this.#queue, holdings: this.#holdings, drain: this.#drain, bucket: this.#bucket, jitter: this.#jitter, faultPlans: this.#faultPlans } = deps);
    this.#shared = deps.queue.shared;
    this.#deps = deps;
    this.#host = host;
  }

  /** HTTP requests in flight. */
  get inFlight(): number {
    return this.#requestsInFlight;
  }

  get #closed(): boolean {
    return this.#host.closed();
  }

  async attempt(handed: Delivery): Promise<void> {
    if (this.#holdings.superseded(handed)) return;
    // The ticket it was handed over with (a shared queue's), which its end acknowledges: a later
    // entry of it that came while it was in flight is that entry's own to acknowledge.
    const ticket = this.#holdings.ticketOf(handed);
    const inFlight = this.#holdings.inFlightBefore(handed);
    const delivery = ticket !== undefined && inFlight !== undefined ? await this.#unchanged(handed, ticket, inFlight) : handed;
    if (delivery === undefined) return;
    if (ticket !== undefined && this.#drain.tooLateToBegin(delivery.id)) {
      // Too late in the drain to end before the close: back to the queue, for another replica.
      await this.#acknowledge(delivery.id, ticket, false);
      return;
    }
    if (ticket !== undefined) this.#holdings.begin(delivery.id, ticket);
    let recorded = false;
    try {
      const result = await this.#attemptOnce(delivery, ticket);
      if (result === 'superseded') {
        this.#deps.onSuperseded?.(delivery.id, NOT_RECORDED);
        // The log still holds it as the attempt found it: the record was refused because another replica
        // holds the entry now (it took it over while this one stalled) and is attempting it: its to end
        // (rev74e: recorded here, this one's late timeout scheduled a retry, a third send).
        if (ticket !== undefined && (await this.#stillAsFound(delivery))) {
          if (this.#holdings.lost(delivery.id, ticket)) this.#settle(delivery.id, false);
          return;
        }
      }
      // Superseded otherwise (another replica's attempt recorded first, or the delivery gone from the
      // log): nothing left to send, its entry acknowledged as a recorded one's (rev74b: left held, it kept the drain waiting).
      recorded = result !== 'unrecorded';
    } catch (error) {
      // A store that failed mid-attempt: the delivery stays as the log last saw it, and is reported by the drain.
      // Said as what failed, the store during the attempt (before its send, a disabled-URL check or
      // the rate cap, or after it, its record), not the delivery (h76d: "webhook delivery whd_…
      // failed" read as its end, and it was delivered later): from a shared queue it is sent again by
      // whoever takes its entry (handed back, or taken over once idle); else it waits for the drain's report.
      this.#deps.onError(
        error,
        `the store during an attempt of webhook delivery ${delivery.id} (before or after its send${ticket !== undefined ? '; it is sent again by whoever takes its stream entry: handed back, or taken over once idle' : ''})`,
      );
      // Taken from a shared queue in the drain: another replica sends it (before 2026-12-04 the drain's
      // end line then said that every delivery had finished).
      if (ticket !== undefined) this.#drain.unrecorded(delivery.id);
    }
    // Recorded since (read again here): no longer another's to send. One handed back unmade (its rate-cap
    // token too late, the dispatcher closed) still is.
    if (recorded) this.#drain.recorded(delivery.id);
    if (ticket !== undefined) await this.#acknowledge(delivery.id, ticket, recorded);
  }

  /**
   * A delivery handed over while an attempt of it was in flight here, once that attempt has ended:
   * the log's, when the attempt left it as handed over (pending, with as many attempts); else its
   * entry is acknowledged (that attempt, recorded, was the delivery's) and nothing is answered. A
   * store that fails: the entry is handed back to the queue, whose next taker reads the log first.
   */
  async #unchanged(handed: Delivery, ticket: string, inFlight: Promise<void>): Promise<Delivery | undefined> {
    await inFlight;
    // A later entry of it came meanwhile (this one was acknowledged then): that one is read instead.
    if (this.#holdings.superseded(handed)) return undefined;
    let current: Delivery | undefined;
    try {
      current = await this.#deps.log.get(handed.id);
    } catch (error) {
      this.#deps.onError(error, `reading webhook delivery ${handed.id} again`);
      await this.#acknowledge(handed.id, ticket, false);
      return undefined;
    }
    if (current?.status === 'pending' && current.attempts.length === handed.attempts.length) return current;
    await this.#acknowledge(handed.id, ticket, true);
    return undefined;
  }

  /**
   * Acknowledges a delivery taken from a shared queue once its result is recorded; else hands it
   * back to the queue. The delivery is this process's no longer, unless a later entry of it came meanwhile.
   */
  async #acknowledge(id: string, ticket: string, recorded: boolean): Promise<void> {
    // Its fault plan stays: a retry's attempt (from the stream, here) still follows it; #finish forgets it.
    if (await this.#holdings.end(id, ticket, recorded)) this.#settle(id, false);
  }

  /** Whether the log holds `delivery` as it was handed over (pending, that many attempts). */
  async #stillAsFound(delivery: Delivery): Promise<boolean> {
    const current = await this.#deps.log.get(delivery.id);
    return current?.status === 'pending' && current.attempts.length === delivery.attempts.length;
  }

  /**
   * Makes one attempt and records its result: `recorded`; `unrecorded` when the dispatcher closed
   * first (nothing recorded); `superseded` when, taken from a shared queue under `ticket`, the log
   * no longer held it as it was when the attempt began (another replica's attempt of it was recorded
   * meanwhile) or the entry was no longer this consumer's (another took it over): nothing recorded,
   * so a 2xx recorded there is never undone by this attempt's failure.
   */
  async #attemptOnce(delivery: Delivery, ticket: string | undefined): Promise<'recorded' | 'unrecorded' | 'superseded'> {
    const { clock, settings, disabled, signers, agent } = this.#deps;
    // What the log and the stream must still hold for this attempt's result to be recorded (a shared
    // queue's: another replica may have taken it over while this process stalled, and be attempting it or have recorded it).
    const expect: DeliveryExpectation | undefined =
      ticket === undefined ? undefined : { statuses: ['pending'], attempts: delivery.attempts.length, heldAs: this.#queue.heldAs?.(ticket) };
    const ended = async (change: Pick<DeliveryChange, 'status' | 'failureReason' | 'attempt'>): Promise<'recorded' | 'superseded'> =>
      (await this.finish(delivery, change, expect)) ? 'recorded' : 'superseded';
    // The jitter of a retry is drawn as the attempt starts, in the order attempts are taken, not
    // as they end: with RANDOM_SEED, attempts that overlap get the same draws on every run.
    const draw = this.#jitter.next();
    if (this.#closed) return 'unrecorded';
    // Before its rate-cap token: a delivery to a disabled URL makes no attempt, so it takes none (before
    // 2026-12-07 it did, and 100 of them held a healthy receiver's webhooks back 2 s: a user test).
    if (await disabled.isDisabled(delivery.url)) return ended({ status: 'failed', failureReason: 'endpoint_disabled' });
    if (this.#bucket !== undefined) {
      await this.#bucket.take();
      // A token that came too late in a drain for the attempt to end before the close: handed back (not recorded).
      if (this.#drain.tooLateToBegin(delivery.id)) return 'unrecorded';
    }
    if (this.#closed) return 'unrecorded';
    // Disabled while it waited for its token (its receiver answered 410 to another delivery): no attempt (rev74c).
    if (this.#bucket !== undefined && (await disabled.isDisabled(delivery.url))) return ended({ status: 'failed', failureReason: 'endpoint_disabled' });
    const at = clock.now();
    const headers = { ...delivery.extraHeaders, ...signers.headers(delivery.schemes, delivery.eventId, delivery.body, at) };
    let outcome = dropped(delivery);
    if (outcome === undefined) {
      this.#requestsInFlight++;
      // In the delivery's trace, not the context of whatever started this worker.
      outcome = await inTrace(delivery.traceparent, () => attempt({ url: delivery.url, body: delivery.body, headers, timeoutMs: settings.timeoutMs, agent, deliveryId: delivery.id, eventType: delivery.type })).finally(() => {
        this.#requestsInFlight--;
      });
      // Cut by this process's own close (its connections destroyed after the drain), not by the
      // receiver: not an attempt to record nor a failure to retry. Left as the log has it (the
      // drain reported it); a shared queue's entry goes back to the group at once.
      if (this.#closed && outcome.statusCode === null) return 'unrecorded';
    }
    const made: DeliveryAttempt = { at, statusCode: outcome.statusCode, durationMs: outcome.durationMs, error: outcome.error };
    this.#publish('webhook.attempted', delivery, made);
    const attemptsInSeries = delivery.attempts.length + 1 - delivery.seriesStart;
    const step = nextStep(outcome, attemptsInSeries, settings, { next: () => draw });
    switch (step.kind) {
      case 'delivered':
        return ended({ status: 'delivered', failureReason: null, attempt: made });
      case 'gone': {
        // 410 Gone: the receiver says this URL is no more; stop sending to it until re-enabled
        // (past the bound, the URL disabled first is re-enabled: told, not silent).
        const reenabled = await disabled.disable(delivery.url, clock.now());
        const result = await ended({ status: 'failed', failureReason: 'gone', attempt: made });
        // Told after the delivery's own end (its `webhook URL disabled` line comes first).
        if (reenabled.length > 0) this.#deps.onUrlsReenabled?.(reenabled, delivery.id);
        return result;
      }
      case 'give_up':
        return ended({ status: 'failed', failureReason: step.reason, attempt: made });
      case 'retry': {
        const now = clock.now();
        const nextAttemptAt = now + step.delayMs;
        const updated = await this.retryAt(delivery.id, { status: 'retrying', attempt: made, nextAttemptAt, failureReason: null, updatedAt: now }, expect);
        if (updated !== undefined) this.#publish('webhook.retry_scheduled', updated);
        else if (expect !== undefined) return 'superseded';
        return 'recorded';
      }
    }
  }

  /**
   * Marks a delivery retrying (`change`) with its retry's job due at its `nextAttemptAt`. With a log
   * that can (Redis, shared with other processes' schedulers), both in one store call: scheduled first, the job
   * could be run by another replica before the mark (due at once, as after `Retry-After: 0`), find
   * the delivery still pending and end, leaving it retrying with no job for good. Otherwise the job
   * first (a mark without its job would wait for ever), then the mark. With `expect`, only while the
   * delivery is so: undefined when it was not (nothing marked).
   */
  retryAt(id: string, change: DeliveryChange & { nextAttemptAt: number }, expect?: DeliveryExpectation): Promise<Delivery | undefined> {
    return this.markWithJob(id, change, this.#deps.scheduler.job(RETRY_JOB, id, change.nextAttemptAt), expect);
  }

  /** A delivery's `change` and `job` (its retry, or a reorder hold's backstop): in one store call where the log can, else the job first (see `#retryAt`). */
  async markWithJob(id: string, change: DeliveryChange, job: Job, expect?: DeliveryExpectation): Promise<Delivery | undefined> {
    const { log, scheduler } = this.#deps;
    if (log.updateScheduled !== undefined) {
      const updated = await log.updateScheduled(id, change, job, expect);
      if (updated !== undefined) scheduler.scheduled(job);
      return updated;
    }
    await scheduler.add(job);
    if (expect === undefined) return log.update(id, change);
    // A job left without its mark finds the delivery not retrying when it runs, and ends.
    const updated = await log.updateIf(id, expect, change);
    return updated?.changed === true ? updated.delivery : undefined;
  }

  /**
   * Records a delivery's end and tells it; with `expect`, only while the log holds the delivery so:
   * false when it did not (nothing recorded nor told: another replica's attempt was recorded first).
   */
  async finish(delivery: Delivery, change: Pick<DeliveryChange, 'status' | 'failureReason' | 'attempt'>, expect?: DeliveryExpectation): Promise<boolean> {
    const full: DeliveryChange = { ...change, nextAttemptAt: null, updatedAt: this.#deps.clock.now() };
    let updated: Delivery | undefined;
    if (expect === undefined) updated = await this.#deps.log.update(delivery.id, full);
    else {
      const conditional = await this.#deps.log.updateIf(delivery.id, expect, full);
      if (conditional?.changed !== true) return false;
      updated = conditional.delivery;
    }
    // With a shared queue the delivery is settled once acknowledged (#acknowledge).
    if (this.#shared) this.#faultPlans.forget(delivery.id);
    else this.#settle(delivery.id);
    this.#publish(change.status === 'delivered' ? 'webhook.delivered' : 'webhook.failed', updated ?? delivery);
    return true;
  }

  #settle(id: string, forgetPlan = true): void {
    this.#host.settle(id, forgetPlan);
  }

  #publish(type: DeliveryEventType, delivery: Delivery, attempt?: DeliveryAttempt): void {
    this.#host.publish(type, delivery, attempt);
  }
}
