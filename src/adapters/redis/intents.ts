import type { Redis } from 'ioredis';
import type { IdempotencyNote } from '../../core/idempotency.ts';
import { INTENT_STATUSES, type Intent, type IntentStatus } from '../../core/intents/intent.ts';
import type { InsertOutcome, IntentPatch, IntentQuery, IntentStore, Job, Page, RefundOutcome, StoreStats, Transition } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { CANCEL_SCHEDULED, COUNTS, DECIDE, GET, INSERT, INSERT_SCHEDULED, LIST, REFUND, REFUND_SCHEDULED, STATS, SWEEP, TRANSITION } from './intents-lua.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import type { RedisSchedulerStore } from './scheduler.ts';

export interface RedisIntentStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  ttlMs: number;
  maxIntents: number;
  /** The scheduler store on the same Redis: with it, `insertScheduled`, `cancelScheduled` and `refundScheduled` write an intent and its job in one script run. */
  scheduler?: RedisSchedulerStore | undefined;
}

/**
 * The intents port in Redis, one Lua script per operation (a guarded transition, a refund that
 * checks what is left, an insert that evicts to make room: each one atomic). Indexes are sorted
 * sets with one score, so ids sort lexically, which for ULIDs is creation order: one of all ids,
 * one per reservation and one per final status (PENDING has none, as with memory: a PENDING list
 * walks all ids or the reservation's); a filtered list walks the narrowest and checks the other
 * filter on each record, at most `SCAN_BUDGET` records a page, as memory does.
 *
 * Bounds: PENDING intents are never evicted; final ones wait in a sorted set by creation time,
 * which both the TTL sweep and the size bound take from the front. Differences from memory: memory
 * evicts in the order intents were decided, this in the order they were created (the same give or
 * take the decision delay); TTLs follow the callers' clock (`now`, `createdAt`), not Redis key
 * expiry; an insert sweeps at most 500 intents past the TTL (`sweep` takes them all).
 */
export class RedisIntentStore implements IntentStore {
  readonly #options: RedisIntentStoreOptions;
  readonly #keys: [string, string];
  readonly #p: string;
  readonly #client: Redis;
  readonly #insert: Script;
  readonly #get: Script;
  readonly #decide: Script;
  readonly #transition: Script;
  readonly #refund: Script;
  readonly #list: Script;
  readonly #counts: Script;
  readonly #stats: Script;
  readonly #sweep: Script;
  /** The decisions asked for in this tick, sent together at its end (`decide`). */
  #decisions: PendingDecision[] = [];

  constructor(client: Redis, options: RedisIntentStoreOptions) {
    this.#options = options;
    this.#client = client;
    this.#p = `${options.keyPrefix}int:`;
    this.#keys = [`${this.#p}all`, `${this.#p}evict`];
    this.#insert = defineScript(client, 'paysimIntentInsert', INSERT);
    this.#get = defineScript(client, 'paysimIntentGet', GET);
    this.#decide = defineScript(client, 'paysimIntentDecide', DECIDE);
    this.#transition = defineScript(client, 'paysimIntentTransition', TRANSITION);
    this.#refund = defineScript(client, 'paysimIntentRefund', REFUND);
    this.#list = defineScript(client, 'paysimIntentList', LIST);
    this.#counts = defineScript(client, 'paysimIntentCounts', COUNTS);
    this.#stats = defineScript(client, 'paysimIntentStats', STATS);
    this.#sweep = defineScript(client, 'paysimIntentSweep', SWEEP);
    const { scheduler } = options;
    if (scheduler !== undefined) {
      const insertScheduled = scheduler.withJob(defineScript(client, 'paysimIntentInsertScheduled', INSERT_SCHEDULED));
      this.insertScheduled = async (intent, job, note) => insertOutcome(await insertScheduled(this.#keys, this.#insertArgs(intent), job, note === undefined ? ['', ''] : [note.entry, note.claim]));
      const cancelScheduled = scheduler.withJob(defineScript(client, 'paysimIntentCancelScheduled', CANCEL_SCHEDULED));
      this.cancelScheduled = async (id, now, job) => toTransition((await cancelScheduled(this.#keys, [this.#p, id, now, callToken()], job)) as [number, string]);
      const refundScheduled = scheduler.withJob(defineScript(client, 'paysimIntentRefundScheduled', REFUND_SCHEDULED));
      this.refundScheduled = async (id, amount, now, job, token) => refundOutcome(await refundScheduled(this.#keys, [this.#p, id, amount ?? '', now, token ?? callToken()], job));
    }
  }

  /**
   * Removes the index of PENDING intents that earlier versions kept (`int:st:PENDING`), which this
   * one neither reads nor updates; true when there was one. UNLINK frees it in the background,
   * however many ids it holds. As with the scheduler's layout, replicas are upgraded together: an
   * earlier version still running would count and list PENDING intents from an index no longer kept
   * (and write it again: `sweep` unlinks it as well).
   */
  async dropEarlierIndex(): Promise<boolean> {
    return (await this.#client.unlink(`${this.#p}st:PENDING`)) === 1;
  }

  async insert(intent: Intent): Promise<InsertOutcome> {
    return insertOutcome(await this.#insert(this.#keys, this.#insertArgs(intent)));
  }

  /**
   * The intent and its job (its decision) in one script run, so neither is ever stored without the
   * other and a create is one command; only with the scheduler's store (`options.scheduler`).
   */
  readonly insertScheduled?: (intent: Intent, job: Job, note?: IdempotencyNote) => Promise<InsertOutcome>;

  /** A cancel and its event's backstop job in one script run; only with the scheduler's store. */
  readonly cancelScheduled?: (id: string, now: number, job: Job) => Promise<Transition<Intent>>;

  /** A refund and its event's backstop job (keyed by `refundJobKey`) in one script run; only with the scheduler's store. */
  readonly refundScheduled?: (id: string, amount: number | undefined, now: number, job: Job, token?: string) => Promise<RefundOutcome>;

  #insertArgs(intent: Intent): Array<string | number> {
    const { ttlMs, maxIntents } = this.#options;
    return [
      this.#p,
      intent.id,
      JSON.stringify(intent),
      intent.status,
      JSON.stringify(intent.failureCode),
      intent.refundedAmount,
      intent.updatedAt,
      JSON.stringify(intent.decidedAt),
      intent.amount,
      intent.planned.status,
      JSON.stringify(intent.planned.failureCode),
      intent.reservationId,
      intent.createdAt,
      maxIntents,
      ttlMs,
      SWEEP_BATCH,
    ];
  }

  async get(id: string): Promise<Intent | undefined> {
    return decodeIntent((await this.#get(this.#keys, [this.#p, id])) as string);
  }

  /**
   * Decisions asked for in one tick (the scheduler runs a batch's jobs in lanes, so a batch's
   * decisions come together) go to Redis in one script run, which decides each as its own guarded
   * transition, in order: one command for up to `DECIDE_BATCH` decisions instead of one each.
   */
  decide(id: string, now: number): Promise<Transition<Intent>> {
    return new Promise((resolve, reject) => {
      if (this.#decisions.length === 0) process.nextTick(this.#sendDecisions);
      this.#decisions.push({ id, now, resolve, reject });
      if (this.#decisions.length >= DECIDE_BATCH) this.#sendDecisions();
    });
  }

  readonly #sendDecisions = (): void => {
    const batch = this.#decisions;
    if (batch.length === 0) return;
    this.#decisions = [];
    const args: Array<string | number> = [this.#p];
    for (const { id, now } of batch) args.push(id, now);
    this.#decide(this.#keys, args).then(
      (reply) => {
        const flat = reply as Array<number | string>;
        batch.forEach((decision, i) => {
          try {
            decision.resolve(toTransition([flat[2 * i] as number, flat[2 * i + 1] as string]));
          } catch (error) {
            decision.reject(error);
          }
        });
      },
      (error: unknown) => {
        for (const decision of batch) decision.reject(error);
      },
    );
  };

  async transition(id: string, from: readonly IntentStatus[], patch: IntentPatch): Promise<Transition<Intent>> {
    const failureCode = patch.failureCode === undefined ? '' : JSON.stringify(patch.failureCode);
    const decidedAt = patch.decidedAt === undefined ? '' : JSON.stringify(patch.decidedAt);
    return toTransition((await this.#transition(this.#keys, [this.#p, id, patch.status, failureCode, decidedAt, patch.updatedAt, ...from])) as [number, string]);
  }

  /**
   * Each call carries a token of its own, kept with its refund beside the record (`rts:<id>`, the
   * intent's last `REFUND_TOKENS` refunds): a call whose reply was lost, which ioredis sends again
   * after reconnecting, then answers that refund, with the intent as it left it, instead of refunding
   * a second time (the same for `cancelScheduled`, whose token is `ct`).
   */
  async refund(id: string, amount: number | undefined, now: number, token?: string): Promise<RefundOutcome> {
    return refundOutcome(await this.#refund(this.#keys, [this.#p, id, amount ?? '', now, token ?? callToken()]));
  }

  async list(query: IntentQuery): Promise<Page<Intent>> {
    const [cursor, records] = (await this.#list(this.#keys, [this.#p, query.limit, query.cursor ?? '', query.reservationId ?? '', query.status ?? '', SCAN_BUDGET])) as [string, string[]];
    return { data: records.map((encoded) => decodeIntent(encoded) as Intent), nextCursor: cursor === '' ? null : cursor };
  }

  async counts(): Promise<Record<IntentStatus, number>> {
    const flat = (await this.#counts(this.#keys, [this.#p, ...FINAL_STATUSES])) as Array<string | number>;
    const counts = Object.fromEntries(INTENT_STATUSES.map((status) => [status, 0])) as Record<IntentStatus, number>;
    for (let i = 0; i < flat.length; i += 2) counts[flat[i] as IntentStatus] = Number(flat[i + 1]);
    return counts;
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#stats(this.#keys, [])), max: this.#options.maxIntents };
  }

  /** Also unlinks an earlier version's index of PENDING intents, which one such replica still running during an upgrade would write again. */
  async sweep(now: number): Promise<number> {
    await this.dropEarlierIndex();
    return sweepInBatches(async () => (await this.#sweep(this.#keys, [this.#p, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

/** The statuses with an index of their own (PENDING has none). */
const FINAL_STATUSES = INTENT_STATUSES.filter((status) => status !== 'PENDING');

/** At most this many decisions go in one script run. */
const DECIDE_BATCH = 128;

interface PendingDecision {
  id: string;
  now: number;
  resolve: (transition: Transition<Intent>) => void;
  reject: (error: unknown) => void;
}

function toTransition([ok, encoded]: [number, string]): Transition<Intent> {
  const record = decodeIntent(encoded);
  return ok === 1 ? { ok: true, record: record as Intent } : { ok: false, current: record };
}

/** A record as the scripts' `encode` answers it (its fields b, s, fc, ra, ua and da joined by NUL bytes) as an intent; undefined for '' (none). */
function decodeIntent(encoded: string): Intent | undefined {
  if (encoded === '') return undefined;
  const [b, s, fc, ra, ua, da] = encoded.split('\0') as [string, string, string, string, string, string];
  const base = JSON.parse(b) as Intent;
  return {
    ...base,
    status: s as IntentStatus,
    failureCode: JSON.parse(fc) as string | null,
    refundedAmount: Number(ra),
    updatedAt: Number(ua),
    decidedAt: JSON.parse(da) as number | null,
    metadata: base.metadata === null ? null : Object.freeze(base.metadata),
    planned: Object.freeze(base.planned),
  };
}

/** What the insert scripts answer (1 stored, 0 full, 3 its Idempotency-Key taken by another request) as the port's outcome. */
function insertOutcome(stored: unknown): InsertOutcome {
  if (stored === 3) return { ok: false, reason: 'key_lost' };
  return stored === 1 ? { ok: true } : { ok: false, reason: 'full' };
}

function refundOutcome(reply: unknown): RefundOutcome {
  const [kind, encoded, figure, at] = reply as [string, string?, number?, string?];
  if (kind === 'not_found') return { kind };
  const intent = decodeIntent(encoded as string) as Intent;
  if (kind === 'invalid_state') return { kind, intent };
  if (kind === 'exceeds') return { kind, intent, left: figure as number };
  return { kind: 'refunded', intent, amount: figure as number, at: Number(at) };
}
