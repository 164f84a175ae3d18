import type { Clock, Timer } from './clock.ts';
import { isStoreUnavailable, ShuttingDownError, StoreFullError } from './errors.ts';
import { FailureCounts } from './failure-counts.ts';
import type { ClaimedJob, Job, SchedulerStore } from './ports.ts';
import { currentTraceparent, inTrace } from '../trace-context.ts';

/**
 * Runs due work: intent decisions, seat-hold expiry, inbox processing, webhook retries. Jobs live
 * in the scheduler store (ordered by due time); this service keeps one timer on the injected
 * clock, armed for the earliest due time, instead of one timer per pending thing. When it fires,
 * due jobs are claimed in batches (earliest first) and handed to the handler registered for their
 * kind: one after another, or up to `concurrency` at once for a store whose every call is a round
 * trip (Redis), where one job at a time decided intents more slowly than they were created. The
 * batch's finished jobs are completed together, in one store call. A batch that fills up re-arms
 * the timer at once rather than looping, so a burst of due work never holds the event loop away
 * from requests.
 *
 * A handler that throws is retried with a growing delay (its work must be idempotent), up to
 * `MAX_ATTEMPTS`, then reported and dropped. A run that failed because the store could not be
 * reached (`StoreUnavailableError`, Redis away), or that a store full of unfinished work refused
 * (`StoreFullError`), says nothing about the job (`waitsForTheStore`): it does not count towards
 * `MAX_ATTEMPTS` (its delay still grows, to at most `RETRY_MAX_MS`), so minutes of a flapping Redis
 * cannot make the scheduler give up a saga's compensation or a booking's expiry, nor a full store a
 * subscription's renewal.
 * A claimed job is completed only after its handler has finished (with the rest of its batch),
 * so with a store shared by several processes, a job whose process died is claimed again when
 * its lease lapses.
 *
 * With a store shared by several processes (`pollMs` > 0), this process's timer only knows the
 * work it scheduled itself: a poll on the injected clock also claims what other processes
 * scheduled, and claims whose lease lapsed (their process died). A run that cannot reach the store
 * is reported (`onRunError`) and tried again; it never rejects, so an unreachable store cannot
 * take the process down.
 * @see issue 7 "Store ports" (scheduler of due work), issue 14 "Scheduler"
 */

export type JobHandler = (key: string) => Promise<void> | void;

export interface SchedulerDeps {
  clock: Clock;
  store: SchedulerStore;
  /** Told about a handler that failed; `final` when it will not be retried. */
  onError: (error: unknown, job: ClaimedJob, final: boolean) => void;
  /** Told when a run could not claim or look up due work (the store is unreachable); the run is tried again. */
  onRunError?: ((error: unknown) => void) | undefined;
  /** How often to look for due work this process was not told about (0 or unset: never; a store of this process alone needs none). */
  pollMs?: number | undefined;
  /** How long a claimed job is this process's before another may claim it (default LEASE_MS): longer than any handler runs. */
  leaseMs?: number | undefined;
  /**
   * Jobs of a batch run at once (default 1: one after another, in due order). More suits a store
   * whose calls are round trips: their waits overlap (and a Redis client pipelines them).
   */
  concurrency?: number | undefined;
}

/** Jobs claimed at once. */
export const BATCH = 512;
/** How long a claimed job is another worker's by default (SCHEDULER_LEASE_MS): longer than any handler runs. */
export const LEASE_MS = 30_000;
export const MAX_ATTEMPTS = 8;
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 30_000;
/** After a run that could not reach the store, the next one is this much later (when no poll comes sooner). */
export const FAILED_RUN_RETRY_MS = 1000;

export class Scheduler {
  readonly #deps: SchedulerDeps;
  readonly #handlers = new Map<string, JobHandler>();
  /**
   * Failed runs per job (kind + key): all of them (for the retry delay) and those that count
   * towards MAX_ATTEMPTS. Kept until the job succeeds here, or twice as long as its retry and
   * another process's lease of it could take after its last failure here (done elsewhere, or cancelled).
   */
  readonly #failures: FailureCounts<Failures>;
  #timer: Timer | undefined;
  #pollTimer: Timer | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  /** The run in progress: it resolves with the error that ended it, if any (runs never reject). */
  #running: Promise<unknown> | undefined;
  /** A run queued behind the one in progress, for callers that came after its claim. */
  #next: Promise<unknown> | undefined;
  #started = false;
  /** Set by `quiesce`: runs claim nothing, and take no further job of a batch. */
  #stopping = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#failures = new FailureCounts(2 * (RETRY_MAX_MS + this.leaseMs));
  }

  /** True when the store is shared by several processes (`pollMs` > 0): a job left unfinished here is run by another. */
  get shared(): boolean {
    return (this.#deps.pollMs ?? 0) > 0;
  }

  /** True while a run of this process is claiming or running jobs (or one is queued behind it): what it claimed is not done yet. */
  get running(): boolean {
    return this.#running !== undefined || this.#next !== undefined;
  }

  /** How long a claimed job is this process's before another may claim it. */
  get leaseMs(): number {
    return this.#deps.leaseMs ?? LEASE_MS;
  }

  /** The handler of one kind of job. */
  register(kind: string, handler: JobHandler): void {
    if (this.#handlers.has(kind)) throw new Error(`a handler for ${kind} is already registered`);
    this.#handlers.set(kind, handler);
  }

  /**
   * A job of `kind` for `key` at `dueAt`, in the active trace (a request's) when there is one: the
   * store keeps the trace with the job, and whichever process runs it (another replica's, on a
   * shared store) runs it in that trace (see trace-context.ts).
   */
  job(kind: string, key: string, dueAt: number): Job {
    const trace = currentTraceparent();
    return trace === undefined ? { kind, key, dueAt } : { kind, key, dueAt, trace };
  }

  /**
   * Runs the handler of `kind` for `key` at `dueAt` (epoch ms on the injected clock); replaces an
   * earlier schedule of the same job, or with `earliest` keeps one waiting to run by `dueAt`.
   */
  schedule(kind: string, key: string, dueAt: number, options?: { earliest?: boolean }): Promise<void> {
    return this.add(this.job(kind, key, dueAt), options);
  }

  /** `schedule` of a job made by `job`. */
  add(job: Job, options?: { earliest?: boolean }): Promise<void> {
    return this.#deps.store.schedule(job, options).then(() => this.#arm(job.dueAt));
  }

  /** A job a store scheduled with its own write (`IntentStore.insertScheduled`; made by `job`): runs it when due, as `schedule` would. */
  scheduled(job: Job): void {
    this.#arm(job.dueAt);
  }

  cancel(kind: string, key: string): Promise<boolean> {
    return this.#deps.store.cancel(kind, key);
  }

  /** Jobs still to run, of the given kinds. */
  async pending(...kinds: string[]): Promise<number> {
    // Asked together: on a shared store one batch, beside whatever else the caller reads at once.
    const counts = await Promise.all(kinds.map((kind) => this.#deps.store.count(kind)));
    return counts.reduce((total, count) => total + count, 0);
  }

  /** The keys of up to `limit` jobs still to run of a kind (for the shutdown's log). */
  pendingKeys(kind: string, limit: number): Promise<string[]> {
    return this.#deps.store.keys(kind, limit);
  }

  /** When the earliest job falls due (claimed ones at their lease's end), on this scheduler's clock; undefined when there is none. */
  nextDueAt(): Promise<number | undefined> {
    return this.#deps.store.nextDueAt();
  }

  /** Starts running due work (jobs already in the store included). */
  async start(): Promise<void> {
    this.#started = true;
    this.#armPoll();
    const next = await this.#deps.store.nextDueAt();
    if (next !== undefined) this.#arm(next);
  }

  /**
   * For good: `stop`, and on a shared store no run claims anything from now on (a caller's `runDueOrFail` rejects with
   * a ShuttingDownError, 503 SHUTTING_DOWN, its client told to retry elsewhere; before 2026-12-04 STORE_UNAVAILABLE), the runs in progress or queued take no
   * further job of what they claimed (each left is given back as it was, free for another replica
   * at once, unless cancelled or rescheduled since), and waits for them, at most `waitMs`. The close, before the webhook
   * dispatcher closes: before 2026-12-03 the timers ran on until the scheduler's own close, after
   * the dispatcher's, and a decision made then could not queue its webhook (on Redis its job waited
   * out the lease, 30 s, before another replica made it again).
   */
  async quiesce(waitMs: number): Promise<void> {
    this.stop();
    // In memory nothing outlives the process: a caller's run still runs (its answer stays right).
    this.#stopping = this.shared;
    const runs = [this.#running, this.#next].filter((run) => run !== undefined);
    if (runs.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  stop(): void {
    this.#started = false;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#pollTimer?.cancel();
    this.#pollTimer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  /**
   * For a caller about to do due work itself (a booking freeing lapsed holds before their jobs
   * run): a ShuttingDownError once `quiesce` stopped the runs of a shared store, as `runDueOrFail`.
   */
  refuseWhenQuiesced(): void {
    if (this.#stopping) throw new ShuttingDownError();
  }

  /**
   * Runs every job due now. Callers that must see due work done before they go on await it;
   * concurrent calls share one run.
   */
  runDue(): Promise<void> {
    return this.#queue().then(() => undefined);
  }

  /**
   * `runDue` for a caller whose next step needs the store: rejects with the run's error when the
   * run could not reach the store (`StoreUnavailableError`), so the caller answers its 503 at once
   * instead of waiting for a call of its own to fail the same way.
   */
  async runDueOrFail(): Promise<void> {
    const error = await this.#queue();
    if (isStoreUnavailable(error)) throw error;
  }

  /** A run of its own for this caller (the one in progress, if it has not claimed yet, or the next); resolves with the error that ended it. */
  #queue(): Promise<unknown> {
    if (this.#running === undefined) {
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#next ??= this.#running.then(() => {
      this.#next = undefined;
      return this.#queue();
    });
    return this.#next;
  }

  #arm(dueAt: number): void {
    if (!this.#started || dueAt >= this.#armedAt) return;
    this.#timer?.cancel();
    this.#armedAt = dueAt;
    this.#timer = this.#deps.clock.schedule(Math.max(0, dueAt - this.#deps.clock.now()), () => {
      this.#timer = undefined;
      this.#armedAt = Number.POSITIVE_INFINITY;
      // Returned for a manual clock to wait on (runs never reject).
      return this.runDue();
    });
  }

  /** The next poll, one interval after the previous run ended (runs never overlap). */
  #armPoll(): void {
    const { pollMs, clock } = this.#deps;
    if (pollMs === undefined || pollMs <= 0 || !this.#started) return;
    this.#pollTimer = clock.schedule(pollMs, () => {
      this.#pollTimer = undefined;
      return this.runDue().then(() => this.#armPoll());
    });
  }

  async #run(): Promise<unknown> {
    const { clock, store } = this.#deps;
    if (this.#stopping) return new ShuttingDownError();
    try {
      const jobs = await store.claimDue(clock.now(), BATCH, this.leaseMs);
      const finished: ClaimedJob[] = [];
      // Lanes (one by default), each taking the next job when its last one is done. A job that
      // cannot reach the store (to retry it later) stops the run: the lanes end, the jobs finished
      // so far are completed, and the run reports it.
      let failure: { error: unknown } | undefined;
      let taken = 0;
      const lane = async (): Promise<void> => {
        while (taken < jobs.length && failure === undefined && !this.#stopping) {
          try {
            await this.#runOne(jobs[taken++] as ClaimedJob, finished);
          } catch (error) {
            failure ??= { error };
          }
        }
      };
      const lanes = Math.max(1, Math.min(this.#deps.concurrency ?? 1, jobs.length));
      if (lanes === 1) await lane();
      else await Promise.all(Array.from({ length: lanes }, lane));
      if (finished.length > 0) await store.complete(finished);
      // Quiesced meanwhile: the jobs not taken are free again, for another replica (or the next start),
      // but for those cancelled or rescheduled since the claim (a cancel made meanwhile stays made).
      if (this.#stopping && taken < jobs.length) await store.release(jobs.slice(taken));
      if (failure !== undefined) throw failure.error;
      // Quiesced while it ran, with due work left undone (given back, or a full batch's next jobs):
      // a caller that needs it done is told, as one queued behind it is.
      if (this.#stopping && (taken < jobs.length || jobs.length === BATCH)) return new ShuttingDownError();
      if (jobs.length === BATCH) {
        // More may be due: continue on a fresh timer turn, so requests get the event loop between batches.
        this.#arm(clock.now());
        return;
      }
      const next = await store.nextDueAt();
      if (next !== undefined) this.#arm(next);
    } catch (error) {
      // Claimed jobs not completed are claimed again when their lease lapses.
      this.#deps.onRunError?.(error);
      if (isStoreUnavailable(error)) this.#failures.keepAll(clock.now());
      this.#arm(clock.now() + FAILED_RUN_RETRY_MS);
      return error;
    }
    return undefined;
  }

  /** Runs one claimed job; a job that is done (or given up) joins `finished`, to be completed with its batch. */
  async #runOne(job: ClaimedJob, finished: ClaimedJob[]): Promise<void> {
    const { store, clock, onError } = this.#deps;
    const handler = this.#handlers.get(job.kind);
    try {
      if (handler === undefined) throw new Error(`no handler for jobs of kind ${job.kind}`);
      // In the trace it was scheduled in, or none: never the context of whatever armed the timer.
      await inTrace(job.trace, () => handler(job.key));
      if (this.#failures.size > 0) this.#failures.delete(failureId(job));
      finished.push(job);
    } catch (error) {
      const id = failureId(job);
      const now = clock.now();
      const before = this.#failures.get(id, now);
      const failures: Failures = {
        runs: (before?.runs ?? 0) + 1,
        counted: (before?.counted ?? 0) + (waitsForTheStore(error) ? 0 : 1),
      };
      const final = failures.counted >= MAX_ATTEMPTS || handler === undefined;
      onError(error, job, final);
      if (final) {
        this.#failures.delete(id);
        finished.push(job);
        return;
      }
      this.#failures.set(id, failures, now);
      const retryAt = now + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(failures.runs - 1, 20));
      // Unless cancelled, rescheduled or claimed again (its lease lapsed) while the handler ran: that stands.
      await store.release([{ ...job, dueAt: retryAt }]);
    }
  }
}

interface Failures {
  /** Failed runs, whatever the cause: the retry delay grows with them. */
  runs: number;
  /** Failed runs that count towards MAX_ATTEMPTS: all but those that wait for the store (`waitsForTheStore`). */
  counted: number;
}

function failureId(job: Pick<Job, 'kind' | 'key'>): string {
  return `${job.kind}\n${job.key}`;
}

/**
 * A run that failed for want of the store, not for anything in the job: the store could not be
 * reached, or it was full of unfinished work (STORE_FULL, which other work ending clears). Such
 * runs do not count towards MAX_ATTEMPTS: the job is retried, at most RETRY_MAX_MS apart, until the
 * store takes it. Before 2026-12-07 a job refused by a full store was given up after its eighth run:
 * a FluxPay subscription's renewal, its order refused while open orders filled the store, stayed
 * ACTIVE with no renewal to come (a user test).
 */
export function waitsForTheStore(error: unknown): boolean {
  return isStoreUnavailable(error) || error instanceof StoreFullError;
}
