import PQueue from 'p-queue';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { Clock } from '../core/clock.ts';
import { backToPending, isFinished, type Delivery, type DeliveryAttempt, type DeliveryChange } from '../core/deliveries.ts';
import { DomainError, isStoreUnavailable, notFound } from '../core/errors.ts';
import type { DeliveryEvent, DeliveryEventType, EventBus } from '../core/events.ts';
import type { IdFactory } from '../core/ids.ts';
import type { DeliveryLogStore, DeliveryQueue, DisabledUrlStore, RequeueOutcome } from '../core/ports.ts';
import { MemoryDeliveryQueue } from '../adapters/memory/delivery-queue.ts';
import type { RandomSource } from '../core/random.ts';
import type { Scheduler } from '../core/scheduler.ts';
import { AttemptRunner, RETRY_JOB } from './attempt-runner.ts';
import { Drain } from './drain.ts';
import { FaultPlans, type WebhookFaults } from './fault-plans.ts';
import { QueueHoldings } from './holdings.ts';
import { Intake, type WebhookRequest } from './intake.ts';
import { Lanes } from './lanes.ts';
import type { RetrySettings } from './retry-policy.ts';
import { SharedReorder } from './shared-reorder.ts';
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
 * shared by every replica (`rateCap`). Each attempt and the record of its result are
 * ./attempt-runner.ts's (AttemptRunner), to which the lanes hand every delivery they let go.
 * @see issue 3, issue 7 "Webhooks", issue 14 "Webhook delivery"
 */

export { RETRY_JOB } from './attempt-runner.ts';
export type { WebhookFaults } from './fault-plans.ts';
export type { WebhookRequest } from './intake.ts';
export { REORDER_BACKSTOP_JOB } from './shared-reorder.ts';

/** How much later a closing dispatcher's retry job is due again when it hands it back. */
const HAND_BACK_MS = 1_000;

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
  /**
   * Told of each delivery taken from a shared queue whose attempt here was not the one to count
   * (`why`: NOT_RECORDED, made here while the log moved on, its result not recorded).
   */
  onSuperseded?: ((id: string, why: string) => void) | undefined;
  /** Told of the URLs a 410's disable re-enabled to keep WEBHOOK_MAX_DISABLED_URLS (those disabled first), and the delivery that met the 410. */
  onUrlsReenabled?: ((urls: readonly string[], byDelivery: string) => void) | undefined;
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
  /** Each attempt and the record of its result. */
  readonly #attempts: AttemptRunner;
  #closed = false;
  /** With a shared queue: the deliveries held for reordering, marked in the log with their backstops. */
  readonly #sharedReorder: SharedReorder;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    const { settings } = deps;
    this.#pool = new PQueue({ concurrency: settings.concurrency });
    this.#lanes = new Lanes(this.#pool, settings.originConcurrency, (delivery) => this.#attempts.attempt(delivery));
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
    this.#faultPlans = new FaultPlans({
      clock: deps.clock,
      faults: deps.faults,
      shared: this.#shared,
      maxPlans: deps.maxFaultPlans ?? settings.queueMax,
      release: (delivery) => void (this.#shared ? this.#sharedReorder.release(delivery) : this.#intake.enqueue(delivery, new URL(delivery.url).origin, 0)),
    });
    const { clock, ids, log, signers, faults, onError } = deps;
    this.#sharedReorder = new SharedReorder({
      clock,
      log,
      scheduler: deps.scheduler,
      faultPlans: this.#faultPlans,
      onError,
      onBackstopQueued: deps.onBackstopQueued,
      closed: () => this.#closed,
      requeue: (read, change) => this.#requeue(read, change),
      markWithJob: (id, change, job) => this.#attempts.markWithJob(id, change, job),
      handBack: (kind, id) => this.#handBack(kind, id),
    });
    this.#intake = new Intake(
      { clock, ids, log, signers, faults, queue: this.#queue, queueMax: settings.queueMax, drain: this.#drain, faultPlans: this.#faultPlans, onError },
      {
        closed: () => this.#closed,
        waitingToStart: () => this.waitingToStart,
        holdShared: (delivery, windowMs) => this.#sharedReorder.hold(delivery, windowMs),
        retryAt: (id, change) => this.#attempts.retryAt(id, change),
        finish: async (delivery, change) => void (await this.#attempts.finish(delivery, change)),
        settle: (id) => this.#settle(id),
        publish: (type, delivery) => this.#publish(type, delivery),
      },
    );
    const { disabled, agent, onSuperseded, onUrlsReenabled } = deps;
    this.#attempts = new AttemptRunner(
      { clock, log, disabled, scheduler: deps.scheduler, agent, signers, settings, onError, onSuperseded, onUrlsReenabled, queue: this.#queue, holdings: this.#holdings, drain: this.#drain, bucket: this.#bucket, jitter: this.#jitter, faultPlans: this.#faultPlans },
      {
        closed: () => this.#closed,
        settle: (id, forgetPlan) => this.#settle(id, forgetPlan),
        publish: (type, delivery, attempt) => this.#publish(type, delivery, attempt),
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
    return this.#attempts.inFlight;
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
    const outcome = await this.#requeue(found, { ...backToPending(clock.now()), newSeries: true });
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
    const change = backToPending(clock.now());
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
   * With a shared queue, lets every delivery held for reordering go now and waits until each is
   * queued (or left to its backstop): a drain alone then sends them from the stream.
   */
  releaseHeld(): Promise<void> {
    return this.#sharedReorder.releaseAll();
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

  /** This process is done with the delivery (the drain no longer waits for it); `forgetPlan`: its fault plan too. */
  #settle(id: string, forgetPlan = true): void {
    if (forgetPlan) this.#faultPlans.forget(id);
    this.#drain.settle(id);
  }

  #publish(type: DeliveryEventType, delivery: Delivery, attempt?: DeliveryAttempt): void {
    // Accepted when it was logged (its updatedAt), not once queued: with a shared queue another
    // replica may attempt it first, and its `webhook.attempted` must not come earlier (a user test).
    const occurredAt = type === 'webhook.accepted' ? delivery.updatedAt : this.#deps.clock.now();
    this.#deps.bus.publish({ id: delivery.id, type, occurredAt, delivery, ...(attempt === undefined ? {} : { attempt }) });
  }
}

/**
 * The end of a delivery another consumer recorded, told again (RedisDeliveryQueue's
 * `onFinishedElsewhere`): at the time it was recorded (its updatedAt), the same fact at the same
 * time, as every event made again (a review: the takeover's time told a replayed delivery's ends apart from nothing).
 */
export function finishedAgain(delivery: Delivery): DeliveryEvent {
  return { id: delivery.id, type: delivery.status === 'delivered' ? 'webhook.delivered' : 'webhook.failed', occurredAt: delivery.updatedAt, delivery, again: true };
}

function notReplayable(delivery: Delivery): DomainError {
  return new DomainError('INVALID_STATE', `Webhook delivery ${delivery.id} is ${delivery.status}; only a delivered or failed delivery can be replayed.`);
}
