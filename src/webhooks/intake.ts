import { currentTraceparent } from '../trace-context.ts';
import type { Clock } from '../core/clock.ts';
import type { Delivery, DeliveryChange, Subject } from '../core/deliveries.ts';
import { duplicatePlan, firstSend, NO_WEBHOOK_FAULTS, type WebhookFaultPlan } from '../core/faults/webhook-policy.ts';
import type { DeliveryEventType } from '../core/events.ts';
import type { IdFactory } from '../core/ids.ts';
import type { DeliveryLogStore, DeliveryQueue } from '../core/ports.ts';
import type { Drain } from './drain.ts';
import { heldBy, type FaultPlans, type WebhookFaults } from './fault-plans.ts';
import type { SignerRegistry } from './signers/registry.ts';

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export interface WebhookRequest {
  eventId: string;
  type: string;
  url: string;
  body: string;
  /** The signers' names; every one must be registered. */
  schemes: readonly string[];
  subject?: Subject | null | undefined;
  headers?: Record<string, string> | undefined;
  test?: boolean | undefined;
}

export interface IntakeDeps {
  clock: Clock;
  ids: IdFactory;
  log: DeliveryLogStore;
  signers: SignerRegistry;
  faults: WebhookFaults | undefined;
  queue: DeliveryQueue;
  /** Deliveries waiting to start at most (`DispatcherSettings.queueMax`). */
  queueMax: number;
  drain: Drain;
  faultPlans: FaultPlans;
  onError: (error: unknown, context: string) => void;
}

/** What the intake asks of its dispatcher, whose attempts and retries it hands deliveries to. */
export interface IntakeHost {
  /** The dispatcher has closed: a new delivery fails `shutting_down`. */
  closed(): boolean;
  /** Deliveries waiting to start in this process, those being accepted included: what `queueMax` bounds. */
  waitingToStart(): number;
  /**
   * With a shared queue, holds a delivery for reordering durably (its hold's backstop on the shared
   * schedule, so that a replica that dies holding it leaves it to the others); undefined.
   */
  holdShared(delivery: Delivery, windowMs: number): Promise<undefined>;
  /** Marks a delivery retrying with its retry's job due at its `nextAttemptAt`. */
  retryAt(id: string, change: DeliveryChange & { nextAttemptAt: number }): Promise<Delivery | undefined>;
  /** Ends a delivery (delivered or failed) in the log, and publishes it. */
  finish(delivery: Delivery, change: Pick<DeliveryChange, 'status' | 'failureReason' | 'attempt'>): Promise<void>;
  /** This process is done with the delivery (the drain no longer waits for it), its fault plan too. */
  settle(id: string): void;
  publish(type: DeliveryEventType, delivery: Delivery): void;
}

/**
 * How a dispatcher takes a new webhook in: the bound on deliveries waiting to start
 * (WEBHOOK_QUEUE_MAX), the log, the queue, and what webhook fault rules do to a delivery before
 * its first attempt. From the queue on, a delivery is the dispatcher's attempts' and retries'.
 */
export class Intake {
  readonly #deps: IntakeDeps;
  readonly #host: IntakeHost;
  /** The queue is shared by several processes (Redis). */
  readonly #shared: boolean;
  /** Deliveries between their bound check and their queueing (their log insert is being awaited). */
  #accepting = 0;

  constructor(deps: IntakeDeps, host: IntakeHost) {
    this.#deps = deps;
    this.#host = host;
    this.#shared = deps.queue.shared;
  }

  /** Deliveries being accepted: between their bound check and their queueing (their log insert is being awaited). */
  get accepting(): number {
    return this.#accepting;
  }

  /**
   * Accepts a webhook: logs it and queues its first attempt. A URL that cannot be parsed, a full
   * queue or a closing dispatcher make it a delivery that has `failed` with that reason.
   *
   * With a shared queue, logging and queueing are one step (`accept`), once per event and URL:
   * the work that made the webhook may run again (its replica died before it was done), and then
   * finds the delivery made the first time, answered as it is, with nothing sent twice. A
   * rejection means nothing was logged nor queued (the store failed): that work runs again.
   * @see issue 14 "kill -9"
   */
  async deliver(req: WebhookRequest): Promise<Delivery> {
    const plan = this.#deps.faults === undefined ? NO_WEBHOOK_FAULTS : await this.#deps.faults.plan(req.url);
    const delivery = await this.#deliver(req, plan, false);
    // `duplicate`: the same event, with the same id, as a second delivery (which is not duplicated
    // again); made with the first, so not when the first was found made already.
    if (plan.duplicate !== null && delivery.status !== 'failed' && !FOUND.has(delivery)) await this.#deliver(req, duplicatePlan(plan), true);
    return delivery;
  }

  /** `copy`: the second delivery of a `duplicate` rule, logged even though its event has one to the URL. */
  async #deliver(req: WebhookRequest, plan: WebhookFaultPlan, copy: boolean): Promise<Delivery> {
    const { clock, ids, log, signers } = this.#deps;
    const unknown = req.schemes.find((name) => !signers.has(name));
    if (unknown !== undefined) throw new Error(`unknown signature scheme ${unknown}`);
    const now = clock.now();
    let reason: string | null = null;
    let origin = '';
    try {
      origin = new URL(req.url).origin;
    } catch (error) {
      reason = `invalid_url: ${(error as Error).message}`;
    }
    if (reason === null && this.#host.closed()) reason = 'shutting_down';
    else if (reason === null && this.#host.waitingToStart() >= this.#deps.queueMax) reason = 'queue_full';
    const delivery: Delivery = {
      id: ids('whd'),
      eventId: req.eventId,
      type: req.type,
      url: req.url,
      subject: req.subject ?? null,
      test: req.test ?? false,
      body: req.body,
      extraHeaders: req.headers ?? NO_HEADERS,
      // Shared when frozen (the configured list): a copy per delivery would be memory for nothing.
      schemes: Object.isFrozen(req.schemes) ? req.schemes : Object.freeze([...req.schemes]),
      status: reason === null ? 'pending' : 'failed',
      attempts: [],
      seriesStart: 0,
      nextAttemptAt: null,
      failureReason: reason,
      createdAt: now,
      updatedAt: now,
    };
    // Logged with the delivery, so that every replica's attempts follow it (a property only where a rule sets it).
    if (plan.dropAttempts !== null) delivery.dropAttempts = plan.dropAttempts;
    // Likewise its trace, so that its attempts join it wherever they run (a property only with tracing).
    const traceparent = currentTraceparent();
    if (traceparent !== undefined) delivery.traceparent = traceparent;
    if (this.#shared && reason === null && !copy && !heldBy(plan)) return this.#accept(delivery, origin);
    // The slot is taken before the store is awaited and held until the queue counts the delivery
    // (or it goes elsewhere), so concurrent calls cannot overshoot the bound: released when the
    // log's insert ended, a decision run right behind this one found the delivery counted nowhere.
    let holding = reason === null;
    const release = (): void => {
      if (holding) this.#accepting--;
      holding = false;
    };
    if (reason === null) {
      if (!this.#shared) this.#deps.drain.add(delivery.id);
      this.#accepting++;
    }
    let inserted: Awaited<ReturnType<typeof log.insert>> | Awaited<ReturnType<typeof log.insertOnce>>;
    try {
      inserted = await (this.#shared && !copy ? log.insertOnce(delivery) : log.insert(delivery));
    } catch (error) {
      release();
      throw error;
    }
    if (!inserted.ok) {
      release();
      return inserted.reason === 'exists' ? found(inserted.existing) : this.#logFull(delivery);
    }
    this.#host.publish('webhook.accepted', delivery);
    if (reason !== null) this.#host.publish('webhook.failed', delivery);
    else if (plan !== NO_WEBHOOK_FAULTS) {
      release();
      return this.#sendFaulty(delivery, origin, plan);
    } else {
      // Inline rather than through #enqueue: the memory hot path awaits its resolved promise and nothing more.
      let failure: string | null;
      try {
        // The queue counts it from the call on (memory hands it to a lane at once).
        const queued = this.#deps.queue.enqueue(delivery, origin, this.#deps.queueMax);
        release();
        failure = (await queued) ? null : 'queue_full';
      } catch (error) {
        release();
        failure = unavailable(error);
      }
      if (failure !== null) return (await this.#failUnqueued(delivery, failure)) ?? delivery;
    }
    return delivery;
  }

  /**
   * A new delivery into a shared queue: logged once per event and URL and queued, in one step; with
   * a `drop_attempts` or `duplicate` plan too (before 2026-12-04 a delivery that any webhook rule
   * shaped was logged, then queued: a replica that died in between left it pending, queued nowhere,
   * and the work run again found it made).
   */
  async #accept(delivery: Delivery, origin: string): Promise<Delivery> {
    this.#accepting++;
    const outcome = await this.#deps.queue.accept(delivery, origin, this.#deps.queueMax).finally(() => {
      this.#accepting--;
    });
    switch (outcome.kind) {
      case 'exists':
        return found(outcome.delivery);
      case 'log_full':
        return this.#logFull(delivery);
      case 'queued':
        this.#host.publish('webhook.accepted', delivery);
        return delivery;
      case 'queue_full':
        this.#host.publish('webhook.accepted', delivery);
        this.#host.publish('webhook.failed', outcome.delivery);
        return outcome.delivery;
    }
  }

  /** Dropped: the log holds only unfinished deliveries. Logged by the event-logs plugin (the first of each minute at error, then a count). */
  #logFull(delivery: Delivery): Delivery {
    this.#host.settle(delivery.id);
    const failed = { ...delivery, status: 'failed' as const, failureReason: 'log_full' };
    this.#host.publish('webhook.failed', failed);
    return failed;
  }

  /**
   * Queues a delivery the log holds as pending; one the queue refuses (`max` reached) or cannot
   * take (its store failed) ends failed with that reason. Answers the delivery as failed then.
   */
  async enqueue(delivery: Delivery, origin: string, max: number): Promise<Delivery | undefined> {
    let failure: string;
    try {
      if (await this.#deps.queue.enqueue(delivery, origin, max)) return undefined;
      failure = 'queue_full';
    } catch (error) {
      failure = unavailable(error);
    }
    return this.#failUnqueued(delivery, failure);
  }

  async #failUnqueued(delivery: Delivery, reason: string): Promise<Delivery | undefined> {
    try {
      await this.#host.finish(delivery, { status: 'failed', failureReason: reason });
      return { ...delivery, status: 'failed', failureReason: reason };
    } catch (error) {
      this.#host.settle(delivery.id);
      this.#deps.onError(error, `failing webhook delivery ${delivery.id} (${reason})`);
      return undefined;
    }
  }

  /** The first attempt of a delivery that webhook rules shape: later (`delay`), held and shuffled with its target's others (`reorder`), or now. */
  async #sendFaulty(delivery: Delivery, origin: string, plan: WebhookFaultPlan): Promise<Delivery> {
    const { clock } = this.#deps;
    this.#deps.faultPlans.keep(delivery.id, plan);
    const { at } = firstSend(plan, delivery.createdAt);
    if (at > delivery.createdAt) {
      // Waits like a retry does (due work), so the delay shows as its next_attempt_at.
      return (await this.#host.retryAt(delivery.id, { status: 'retrying', nextAttemptAt: at, failureReason: null, updatedAt: clock.now() })) ?? delivery;
    }
    return (await this.firstAttempt(delivery, origin, this.#deps.queueMax)) ?? delivery;
  }

  /** Holds the delivery for reordering when its plan says so, else queues it (answers it failed when the queue did not take it). */
  async firstAttempt(delivery: Delivery, origin: string, max: number): Promise<Delivery | undefined> {
    const windowMs = this.#shared ? this.#deps.faultPlans.reorderWindowMs(delivery.id) : undefined;
    if (windowMs !== undefined) return this.#host.holdShared(delivery, windowMs);
    if (this.#deps.faultPlans.hold(delivery)) return undefined;
    return this.enqueue(delivery, origin, max);
  }
}

/** Deliveries `deliver` found made already (the work that made them ran again), rather than made. */
const FOUND = new WeakSet<Delivery>();

function found(delivery: Delivery): Delivery {
  FOUND.add(delivery);
  return delivery;
}

/** The reason of a delivery its queue could not take (its store failed). */
function unavailable(error: unknown): string {
  return `queue_unavailable: ${error instanceof Error ? error.message : String(error)}`;
}
