import { inTrace } from '../trace-context.ts';
import PQueue from 'p-queue';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { Clock } from '../core/clock.ts';
import { isFinished, type Delivery, type DeliveryAttempt, type DeliveryChange } from '../core/deliveries.ts';
import { DomainError, isStoreUnavailable, notFound } from '../core/errors.ts';
import type { DeliveryEventType, EventBus } from '../core/events.ts';
import type { IdFactory } from '../core/ids.ts';
import type { DeliveryLogStore, DeliveryQueue, DisabledUrlStore, Job, RequeueOutcome } from '../core/ports.ts';
import { MemoryDeliveryQueue } from '../adapters/memory/delivery-queue.ts';
import type { RandomSource } from '../core/random.ts';
import type { Scheduler } from '../core/scheduler.ts';
import { attempt } from './attempt.ts';
import { Drain } from './drain.ts';
import { dropped, FaultPlans, type WebhookFaults } from './fault-plans.ts';
import { QueueHoldings } from './holdings.ts';
import { Intake, type WebhookRequest } from './intake.ts';
import { Lanes } from './lanes.ts';
import { nextStep, type RetrySettings } from './retry-policy.ts';
import type { SignerRegistry } from './signers/registry.ts';
import { bucketCapacity, TokenBucket, type RateCap } from './token-bucket.ts';

/**
 * The one place that makes outbound HTTP calls. Every accepted webhook becomes a delivery in the
 * log and is attempted by a bounded worker pool (p-queue) behind per-origin lanes, over one undici
 * Agent, under a global token-bucket rate cap. After each attempt the retry policy says what
 * next; a retry is due work (a `webhook.retry` job), never a worker waiting. Nothing accepted is
 * dropped silently: a delivery that cannot be made ends `failed` in the log with its reason, and
 * every change is published on the bus (metrics and the logs subscribe there).
 *
 * Deliveries waiting for an attempt go through a delivery queue (a port): in memory it hands them
 * straight to the lanes; a shared one (Redis) lets every replica take them, and a delivery taken
 * is acknowledged only once its attempt is over and its result is in the log, so a replica that
 * dies leaves what it held to the others. The rate cap is a token bucket of this process, or one
 * shared by every replica (`rateCap`).
 * @see issue 3, issue 7 "Webhooks", issue 14 "Webhook delivery"
 */

export const RETRY_JOB = 'webhook.retry';
/**
 * With a shared queue, the backstop of a delivery held for reordering: due its window and a
 * scheduler lease after the hold began, cancelled at its release. It runs only if the replica that
 * held it died (or stalled) meanwhile, and queues the delivery for any replica to send. A kind of
 * its own, so that cancelling it never cancels a retry.
 */
export const REORDER_BACKSTOP_JOB = 'webhook.reorder-backstop';
export type { WebhookFaults } from './fault-plans.ts';
export type { WebhookRequest } from './intake.ts';

/** How much later a closing dispatcher's retry job is due again when it hands it back. */
const HAND_BACK_MS = 1_000;

/** A delivery's change back to pending, to be queued for its next attempt (a retry, a release, a backstop). */
function pendingAt(now: number): DeliveryChange & { status: 'pending' } {
  return { status: 'pending', nextAttemptAt: null, failureReason: null, updatedAt: now };
}

export interface DispatcherSettings extends RetrySettings {
  timeoutMs: number;
  maxRps: number;
  concurrency: number;
  originConcurrency: number;
  /** Deliveries waiting to start at most; a new one beyond it fails with `queue_full` (retries and replays always get in). */
  queueMax: number;
}

export interface DispatcherDeps {
  clock: Clock;
  ids: IdFactory;
  bus: EventBus;
  log: DeliveryLogStore;
  disabled: DisabledUrlStore;
  scheduler: Scheduler;
  agent: UndiciDispatcher;
  signers: SignerRegistry;
  settings: DispatcherSettings;
  /** For backoff jitter; separate from the scenario engine's source so seeded outcomes stay stable. */
  jitter?: RandomSource | undefined;
  /** Told about what cannot be put anywhere else (a failing store). A log that refused a delivery is a `webhook.failed` event (`log_full`). */
  onError: (error: unknown, context: string) => void;
  /** Webhook fault rules (issue 15): what they do to a new delivery to `url`, decided once when it is created. */
  faults?: WebhookFaults | undefined;
  /** Deliveries waiting to be attempted; default: this process's lanes (MemoryDeliveryQueue). */
  queue?: DeliveryQueue | undefined;
  /** The rate cap; default: a token bucket of this process at `settings.maxRps` (none when it is 0). */
  rateCap?: RateCap | undefined;
  /** With a shared queue, the fault plans of deliveries kept at most, the oldest forgotten first; default `settings.queueMax`. */
  maxFaultPlans?: number | undefined;
  /** Told of each delivery a reorder backstop queued: the replica that held it for reordering died or stalled. */
  onBackstopQueued?: ((id: string) => void) | undefined;
}

export class WebhookDispatcher {
  readonly #deps: DispatcherDeps;
  readonly #pool: PQueue;
  readonly #lanes: Lanes<Delivery>;
  readonly #bucket: RateCap | undefined;
  readonly #jitter: RandomSource;
  readonly #queue: DeliveryQueue;
  /** The queue is shared by several processes: what this one must finish is what it took from it. */
  readonly #shared: boolean;
  /** With a shared queue: the deliveries taken from it and not yet acknowledged, under their tickets. */
  readonly #holdings: QueueHoldings;
  /** What the drain waits for, and when an attempt of a delivery taken from a shared queue may still begin. */
  readonly #drain: Drain;
  readonly #faultPlans: FaultPlans;
  /** How a new webhook is taken in: bound, log, queue, and what fault rules do before its first attempt. */
  readonly #intake: Intake;
  #requestsInFlight = 0;
  #closed = false;
  /** With a shared queue: the releases of deliveries held for reordering under way (`releaseHeld` waits for them). */
  readonly #releasing = new Set<Promise<void>>();

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    const { settings } = deps;
    this.#pool = new PQueue({ concurrency: settings.concurrency });
    this.#lanes = new Lanes(this.#pool, settings.originConcurrency, (delivery) => this.#attempt(delivery));
    this.#bucket = deps.rateCap ?? (settings.maxRps > 0 ? new TokenBucket(deps.clock, settings.maxRps, bucketCapacity(settings.maxRps)) : undefined);
    this.#queue = deps.queue ?? new MemoryDeliveryQueue(deps.log);
    this.#shared = this.#queue.shared;
    this.#holdings = new QueueHoldings(this.#queue, deps.onError);
    this.#drain = new Drain({ log: deps.log, queue: this.#queue, holdings: this.#holdings, rateCap: this.#bucket, timeoutMs: settings.timeoutMs });
    this.#queue.start((delivery, origin, ticket) => {
      if (ticket !== null) {
        this.#holdings.take(delivery, ticket);
        this.#drain.add(delivery.id);
      }
      this.#lanes.push(origin, delivery);
    });
    this.#jitter = deps.jitter ?? { next: () => Math.random() };
    deps.scheduler.register(RETRY_JOB, (id) => this.#retry(id));
    deps.scheduler.register(REORDER_BACKSTOP_JOB, (id) => this.#backstop(id));
    this.#faultPlans = new FaultPlans({
      clock: deps.clock,
      faults: deps.faults,
      shared: this.#shared,
      maxPlans: deps.maxFaultPlans ?? settings.queueMax,
      release: (delivery) => void (this.#shared ? this.#release(delivery) : this.#intake.enqueue(delivery, new URL(delivery.url).origin, 0)),
    });
    const { clock, ids, log, signers, faults, onError } = deps;
    this.#intake = new Intake(
      { clock, ids, log, signers, faults, queue: this.#queue, queueMax: settings.queueMax, drain: this.#drain, faultPlans: this.#faultPlans, onError },
      {
        closed: () => this.#closed,
        waitingToStart: () => this.waitingToStart,
        holdShared: (delivery, windowMs) => this.#holdShared(delivery, windowMs),
        retryAt: (id, change) => this.#retryAt(id, change),
        finish: (delivery, change) => this.#finish(delivery, change),
        settle: (id) => this.#settle(id),
        publish: (type, delivery) => this.#publish(type, delivery),
      },
    );
  }

  /** Deliveries waiting for a worker or a rate-cap token (not counting those waiting to retry). */
  get queueDepth(): number {
    return this.#lanes.waiting + this.#pool.size + (this.#bucket?.waiting ?? 0);
  }

  /**
   * Deliveries waiting to start in this process: queued for a worker, plus new ones being logged (so
   * concurrent calls cannot overshoot the bound); what `queueMax` bounds when the queue is this
   * process's own (memory).
   */
  get waitingToStart(): number {
    return this.#lanes.waiting + this.#pool.size + this.#intake.accepting;
  }

  /** Deliveries being accepted: between their bound check and their queueing (their log insert is being awaited). */
  get accepting(): number {
    return this.#intake.accepting;
  }

  /** HTTP requests in flight. */
  get inFlight(): number {
    return this.#requestsInFlight;
  }

  /**
   * Accepts a webhook: logs it and queues its first attempt (`Intake.deliver`). A URL that cannot
   * be parsed, a full queue or a closing dispatcher make it a delivery that has `failed` with that reason.
   */
  deliver(req: WebhookRequest): Promise<Delivery> {
    return this.#intake.deliver(req);
  }

  /**
   * Starts a new attempt series for a finished delivery (same event id, body and signature
   * schemes) and re-enables its URL. NOT_FOUND when unknown; INVALID_STATE while it is still
   * pending or retrying (replaying it would send it twice at once).
   */
  async replay(id: string): Promise<Delivery> {
    const { log, disabled, clock } = this.#deps;
    const found = await log.get(id);
    if (found === undefined) throw notFound('Webhook delivery', id);
    if (!isFinished(found)) throw notReplayable(found);
    await disabled.enable(found.url);
    // Marked pending and queued in one step, only while it is as read: of two replays at once one
    // starts a series, the other is refused (before 2026-12-04 both did, and it went out twice at
    // once); on Redis a replica that dies in between cannot leave it pending with nothing to send it.
    const outcome = await this.#requeue(found, { ...pendingAt(clock.now()), newSeries: true });
    if (outcome.kind === 'gone') throw notFound('Webhook delivery', id);
    if (outcome.kind === 'moved') {
      throw isFinished(outcome.delivery) ? new DomainError('INVALID_STATE', `Webhook delivery ${id} changed while it was being replayed; read it and replay it again.`) : notReplayable(outcome.delivery);
    }
    return outcome.delivery;
  }

  /**
   * The queue's `requeue`, counted as unfinished here from before the hand-over (memory: its attempt
   * may end before the call returns) until it is known not to be this process's to finish.
   */
  async #requeue(read: Delivery, change: DeliveryChange): Promise<RequeueOutcome> {
    const id = read.id;
    const counted = !this.#shared && !this.#drain.has(id);
    if (counted) this.#drain.add(id);
    let outcome: RequeueOutcome;
    try {
      outcome = await this.#queue.requeue(read, change);
    } catch (error) {
      if (counted) this.#settle(id, false);
      throw error;
    }
    if (counted && (outcome.kind === 'gone' || (outcome.kind === 'moved' && isFinished(outcome.delivery)))) this.#settle(id, false);
    return outcome;
  }

  disabledUrls(): Promise<Array<{ url: string; disabledAt: number }>> {
    return this.#deps.disabled.list();
  }

  enableUrl(url: string): Promise<boolean> {
    return this.#deps.disabled.enable(url);
  }

  isUrlDisabled(url: string): Promise<boolean> {
    return this.#deps.disabled.isDisabled(url);
  }

  /** What a drain with a shared queue keeps of its budget for the attempts it has begun (`Drain.reserveMs`). */
  get drainReserveMs(): number {
    return this.#drain.reserveMs;
  }

  /** A shared queue, as a drain that ends at `deadline` (real time) begins: see `Drain.endsAt`. */
  drainEndsAt(deadline: number): void {
    this.#drain.endsAt(deadline);
  }

  /** With a shared queue in a drain: the real time after which no attempt begins (infinite before `drainEndsAt`). */
  get drainBeginBy(): number {
    return this.#drain.beginBy;
  }

  /**
   * Keeps delivering (waiting, rate-limited and retrying deliveries alike) until every delivery
   * this process accepted has finished, or `budgetMs` of real time has passed. Returns the
   * deliveries still unfinished then.
   */
  drain(budgetMs: number): Promise<Delivery[]> {
    // Deliveries held for reordering go now: the drain is for sending what was accepted.
    this.#faultPlans.close();
    return this.#drain.run(budgetMs);
  }

  /** The deliveries whose attempt in the drain could not be recorded, left to a takeover (at most `limit` ids), and how many there were. */
  unrecordedInDrain(limit: number): { count: number; ids: string[] } {
    return this.#drain.unrecordedInDrain(limit);
  }

  /** Stops new attempts (the drain is over): waiters for a rate-cap token and the pool's queue are let go. */
  close(): void {
    this.#closed = true;
    this.#drain.close();
    void this.#queue.stop();
    this.#bucket?.releaseAll();
    this.#lanes.clear();
    this.#pool.clear();
    // Deliveries taken from a shared queue whose attempt never began go back to it, for another replica now.
    for (const id of this.#holdings.releaseWaiting()) this.#settle(id);
  }

  async #retry(id: string): Promise<void> {
    const { log, clock } = this.#deps;
    const found = await log.get(id);
    if (found?.status !== 'retrying') return;
    if (this.#closed) {
      // Closing (the app stops its scheduler within milliseconds): with a shared queue (Redis) the
      // retry is handed back for another replica or this process's next start, due HAND_BACK_MS
      // later, so that this process's scheduler does not claim it again meanwhile; ended here, its
      // job would be completed and the delivery left retrying with nothing to retry it. A hand-back
      // that cannot reach the store (closing too) leaves the job claimed until its lease lapses; any
      // other failure is the job's (the scheduler's retry), as completing it would lose the retry.
      if (this.#shared) await this.#handBack(RETRY_JOB, id);
      return;
    }
    const change = pendingAt(clock.now());
    // A delayed first attempt (a `delay` rule) may also be held for reordering (this process's hold).
    if (found.attempts.length === 0 && this.#faultPlans.reorders(id)) {
      // Only while still retrying as read: a job run again finds it taken.
      const updated = await log.updateIf(id, { statuses: ['retrying'], attempts: 0 }, change);
      if (updated?.changed !== true) return;
      if (!this.#shared) this.#drain.add(id);
      await this.#intake.firstAttempt(updated.delivery, new URL(updated.delivery.url).origin, 0);
      return;
    }
    // Marked pending and queued in one step, only while still retrying as read: a job run again
    // (its replica died, or a store call's reply was lost) finds it queued, and queues it no second
    // time. A failure is the job's (the scheduler runs it again): whether it took effect is unknown,
    // so the delivery is not marked failed (before 2026-12-04 a retry was marked pending, then
    // queued: a replica that died in between left it pending with nothing to send it, for good, and
    // a lost reply of the queueing marked failed a delivery another replica then delivered).
    await this.#requeue(found, change);
  }

  /**
   * With a shared queue, a delivery held for reordering is marked retrying until its window ends
   * (`next_attempt_at`), its backstop job due a scheduler lease later, in one store call; then held
   * here. Before 2026-12-06 it was held in this process's memory alone, logged pending: a replica
   * killed meanwhile left it pending for good, queued nowhere, and a replay refused it (a user test).
   * A hold that is full sends it now.
   */
  async #holdShared(delivery: Delivery, windowMs: number): Promise<undefined> {
    const { clock, scheduler, onError } = this.#deps;
    const now = clock.now();
    const change = { status: 'retrying' as const, nextAttemptAt: now + windowMs, failureReason: null, updatedAt: now };
    let held: Delivery | undefined = delivery;
    try {
      held = await this.#markWithJob(delivery.id, change, scheduler.job(REORDER_BACKSTOP_JOB, delivery.id, now + windowMs + scheduler.leaseMs));
    } catch (error) {
      // The store failed (a review: the delivery was left pending for good): held all the same, as
      // logged before the mark (pending, in this process only), and released as any; had the mark
      // taken effect, the release finds it changed and its backstop sends it.
      onError(error, `marking webhook delivery ${delivery.id} held for reordering (held in this process only, sent at its window's end)`);
    }
    if (held === undefined) return undefined;
    // Full: released now.
    if (!this.#faultPlans.hold(held)) await this.#release(held);
    return undefined;
  }

  /**
   * With a shared queue, lets every delivery held for reordering go now and waits until each is
   * queued (or left to its backstop): a drain alone then sends them from the stream.
   */
  async releaseHeld(): Promise<void> {
    this.#faultPlans.close();
    await Promise.all([...this.#releasing]);
  }

  /** `#releaseHeld`, counted among the releases under way (a drain's `releaseHeld` waits for them). */
  #release(held: Delivery): Promise<void> {
    const releasing = this.#releaseHeld(held).finally(() => this.#releasing.delete(releasing));
    this.#releasing.add(releasing);
    return releasing;
  }

  /**
   * A delivery `#holdShared` held, let go: marked pending and queued in one step, only while it is
   * still as marked (its backstop, run by another replica that thought this one dead, may have
   * queued it already), then its backstop cancelled. Where the store fails, the backstop sends it.
   */
  async #releaseHeld(held: Delivery): Promise<void> {
    const { clock, scheduler, onError } = this.#deps;
    let outcome: RequeueOutcome;
    try {
      const change = pendingAt(clock.now());
      outcome = await this.#requeue(held, change);
      // Held as logged before its mark, which failed here but took effect in the store (its reply
      // lost): marked, never attempted, so queued from that (a review: left to its backstop, a lease later).
      if (outcome.kind === 'moved' && held.status === 'pending' && outcome.delivery.status === 'retrying' && outcome.delivery.attempts.length === 0) {
        outcome = await this.#requeue(outcome.delivery, change);
      }
    } catch (error) {
      onError(error, `releasing webhook delivery ${held.id} held for reordering (its backstop job queues it later)`);
      return;
    }
    // Queued here: its backstop has nothing left to do. Changed meanwhile (a backstop queued it, or
    // a mark that failed for this process took effect): the backstop stays, for the latter.
    if (outcome.kind !== 'queued') return;
    await scheduler.cancel(REORDER_BACKSTOP_JOB, held.id).catch((error: unknown) => {
      onError(error, `cancelling the reorder backstop of webhook delivery ${held.id}, queued (the backstop, when due, finds it sent and does nothing)`);
    });
  }

  /**
   * The backstop of a delivery held for reordering, come due: the replica that held it died or
   * stalled (a live one cancels it at the release). Queued for any replica to send, still unshuffled,
   * only while it is as that replica marked it: retrying, never attempted.
   */
  async #backstop(id: string): Promise<void> {
    const { log, clock } = this.#deps;
    const found = await log.get(id);
    if (found?.status !== 'retrying' || found.attempts.length > 0) return;
    // As a retry job found by a closing dispatcher: handed back for another replica.
    if (this.#closed) return this.#handBack(REORDER_BACKSTOP_JOB, id);
    const outcome = await this.#requeue(found, pendingAt(clock.now()));
    if (outcome.kind === 'queued') this.#deps.onBackstopQueued?.(id);
  }

  /**
   * A job a closing dispatcher found, scheduled again HAND_BACK_MS later for another replica (or the
   * next start); a store that cannot be reached leaves it claimed until its lease lapses.
   */
  async #handBack(kind: string, id: string): Promise<void> {
    await this.#deps.scheduler.schedule(kind, id, this.#deps.clock.now() + HAND_BACK_MS).catch((error: unknown) => {
      if (!isStoreUnavailable(error)) throw error;
    });
  }

  async #attempt(handed: Delivery): Promise<void> {
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
      recorded = await this.#attemptOnce(delivery);
    } catch (error) {
      // A store that failed mid-attempt: the delivery stays as the log last saw it, and is reported by the drain.
      this.#deps.onError(error, `webhook delivery ${delivery.id}`);
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

  /** Makes one attempt and records its result; false when the dispatcher closed first (nothing recorded). */
  async #attemptOnce(delivery: Delivery): Promise<boolean> {
    const { clock, settings, disabled, signers, agent } = this.#deps;
    // The jitter of a retry is drawn as the attempt starts, in the order attempts are taken, not
    // as they end: with RANDOM_SEED, attempts that overlap get the same draws on every run.
    const draw = this.#jitter.next();
    if (this.#bucket !== undefined) {
      await this.#bucket.take();
      // A token that came too late in a drain for the attempt to end before the close: handed back (not recorded).
      if (this.#drain.tooLateToBegin(delivery.id)) return false;
    }
    if (this.#closed) return false;
    if (await disabled.isDisabled(delivery.url)) {
      await this.#finish(delivery, { status: 'failed', failureReason: 'endpoint_disabled' });
      return true;
    }
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
      if (this.#closed && outcome.statusCode === null) return false;
    }
    const made: DeliveryAttempt = { at, statusCode: outcome.statusCode, durationMs: outcome.durationMs, error: outcome.error };
    this.#publish('webhook.attempted', delivery, made);
    const attemptsInSeries = delivery.attempts.length + 1 - delivery.seriesStart;
    const step = nextStep(outcome, attemptsInSeries, settings, { next: () => draw });
    switch (step.kind) {
      case 'delivered':
        await this.#finish(delivery, { status: 'delivered', failureReason: null, attempt: made });
        return true;
      case 'gone':
        // 410 Gone: the receiver says this URL is no more; stop sending to it until re-enabled.
        await disabled.disable(delivery.url, clock.now());
        await this.#finish(delivery, { status: 'failed', failureReason: 'gone', attempt: made });
        return true;
      case 'give_up':
        await this.#finish(delivery, { status: 'failed', failureReason: step.reason, attempt: made });
        return true;
      case 'retry': {
        const now = clock.now();
        const nextAttemptAt = now + step.delayMs;
        const updated = await this.#retryAt(delivery.id, { status: 'retrying', attempt: made, nextAttemptAt, failureReason: null, updatedAt: now });
        if (updated !== undefined) this.#publish('webhook.retry_scheduled', updated);
        return true;
      }
    }
  }

  /**
   * Marks a delivery retrying (`change`) with its retry's job due at its `nextAttemptAt`. With a log
   * that can (Redis, shared with other processes' schedulers), both in one store call: scheduled first, the job
   * could be run by another replica before the mark (due at once, as after `Retry-After: 0`), find
   * the delivery still pending and end, leaving it retrying with no job for good. Otherwise the job
   * first (a mark without its job would wait for ever), then the mark.
   */
  #retryAt(id: string, change: DeliveryChange & { nextAttemptAt: number }): Promise<Delivery | undefined> {
    return this.#markWithJob(id, change, this.#deps.scheduler.job(RETRY_JOB, id, change.nextAttemptAt));
  }

  /** A delivery's `change` and `job` (its retry, or a reorder hold's backstop): in one store call where the log can, else the job first (see `#retryAt`). */
  async #markWithJob(id: string, change: DeliveryChange, job: Job): Promise<Delivery | undefined> {
    const { log, scheduler } = this.#deps;
    if (log.updateScheduled !== undefined) {
      const updated = await log.updateScheduled(id, change, job);
      scheduler.scheduled(job);
      return updated;
    }
    await scheduler.add(job);
    return log.update(id, change);
  }

  async #finish(delivery: Delivery, change: Pick<DeliveryChange, 'status' | 'failureReason' | 'attempt'>): Promise<void> {
    const updated = await this.#deps.log.update(delivery.id, { ...change, nextAttemptAt: null, updatedAt: this.#deps.clock.now() });
    // With a shared queue the delivery is settled once acknowledged (#acknowledge).
    if (this.#shared) this.#faultPlans.forget(delivery.id);
    else this.#settle(delivery.id);
    this.#publish(change.status === 'delivered' ? 'webhook.delivered' : 'webhook.failed', updated ?? delivery);
  }

  /** This process is done with the delivery (the drain no longer waits for it); `forgetPlan`: its fault plan too. */
  #settle(id: string, forgetPlan = true): void {
    if (forgetPlan) this.#faultPlans.forget(id);
    this.#drain.settle(id);
  }

  #publish(type: DeliveryEventType, delivery: Delivery, attempt?: DeliveryAttempt): void {
    this.#deps.bus.publish({ id: delivery.id, type, occurredAt: this.#deps.clock.now(), delivery, ...(attempt === undefined ? {} : { attempt }) });
  }
}

function notReplayable(delivery: Delivery): DomainError {
  return new DomainError('INVALID_STATE', `Webhook delivery ${delivery.id} is ${delivery.status}; only a delivered or failed delivery can be replayed.`);
}
