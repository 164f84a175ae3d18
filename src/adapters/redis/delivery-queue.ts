import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { changedDelivery, type Delivery, type DeliveryChange } from '../../core/deliveries.ts';
import type { AcceptOutcome, DeliveryHandler, DeliveryQueue, HeldEntry, RequeueOutcome } from '../../core/ports.ts';
import type { RedisDeliveryLog } from './deliveries.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { BEGIN, ENQUEUE, REFRESH, WAITING } from './delivery-queue-lua.ts';
import { DELIVERY_GROUP, DeliveryStreamReader, isNoGroup } from './delivery-stream-reader.ts';
import { keepingReply } from './lua.ts';

export interface RedisDeliveryQueueOptions {
  /** Prefix of every key this queue writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** An entry a consumer has held unacknowledged for this long is taken over by another (WEBHOOK_CLAIM_IDLE_MS). */
  claimIdleMs: number;
  /** Deliveries this consumer holds at most that wait for their attempt to start (taken from the stream ahead of its workers). */
  readAhead: number;
  /** This consumer's name in the group; default: host, process id and a random suffix (one per start). */
  consumer?: string | undefined;
  /** Told when reading the stream starts failing (once per outage; the loop keeps trying) or an entry cannot be read. */
  onError: (error: unknown, context: string) => void;
  /**
   * Told after a claim took over entries another consumer had held for `claimIdleMs` (it died or
   * stalled): how many this one will attempt, and how many were only acknowledged, their attempt
   * already recorded.
   */
  onTakenOver?: ((taken: { toSend: number; recorded: number }) => void) | undefined;
  /**
   * Told of each entry taken over (or handed back) whose delivery the log has ended (delivered or
   * failed): the consumer that recorded it may not have told anyone (it died between its write and
   * its event, or its write's reply was lost as Redis went silent, so it took the write for failed),
   * so the end is told again (`finishedAgain`: at least once). Before 2026-12-07 nobody told it: an
   * `/api/v2` payment whose callback was acknowledged stayed PENDING for good (a user test).
   */
  onFinishedElsewhere?: ((delivery: Delivery) => void) | undefined;
}

/**
 * The suffix of the consumer that holds a consumer's entries whose attempt has started (`begin`):
 * they are moved to it (XCLAIM), so the group's own counts tell what is in flight from what waits.
 */
export const BUSY_SUFFIX = ':busy';

/** How many times per claim idle time a consumer refreshes the idle time of the entries it holds. */
const REFRESHES_PER_CLAIM_IDLE = 3;

/**
 * Webhook deliveries waiting to be attempted, in a Redis Stream read by one consumer group: every
 * replica's dispatcher is a consumer, takes entries as it has room for them (fewer than
 * `readAhead` waiting to start: those whose attempt has started, and those waiting behind their
 * origin's concurrency, do not fill the room, so a receiver that never answers cannot keep a
 * healthy receiver's deliveries in the stream), and acknowledges (XACK) an entry once its attempt
 * is over and the result is in the delivery log. An entry whose attempt starts moves to the
 * consumer's busy consumer (`<consumer>:busy`), so the bound of `enqueue` counts only what waits.
 * A live consumer refreshes the idle time of every entry it holds three times per `claimIdleMs`
 * (REFRESH), whether or not its read loop runs; an entry its consumer has held for `claimIdleMs`
 * without that (it died, or its process stalled that long) is taken over by whichever consumer
 * looks first (XAUTOCLAIM, every half of that time): the taker reads the
 * delivery in the log first, and attempts it only if it is still pending with the attempts it was
 * queued with; otherwise the dead consumer had recorded its attempt, and the entry is just
 * acknowledged. So a delivery is attempted once, unless a consumer dies between sending and
 * recording (then at least once, with the same event id).
 *
 * An entry this consumer read but will not attempt (it was read as the queue stopped, or the
 * dispatcher closed before its attempt started: `release`) is handed back to the group at once
 * (acknowledged and appended again, one script), for any consumer to take without waiting for
 * the claim idle time. `stop` cuts a blocking read short with CLIENT UNBLOCK, which makes it
 * return as if it had timed out or with what it read, never lose it.
 *
 * Each entry carries the delivery as queued (field `d`, JSON), so a fresh entry needs no read of
 * the log. Blocking reads use a connection of their own (`client.duplicate()`), so they never hold
 * up the commands of the shared client. Idle times are Redis's own, in real time.
 *
 * This file keeps the writes (`enqueue`, `accept`, `requeue`), the counts, the entries this
 * consumer holds (`begin`, `ack`, `release`, their refresh) and `start`/`stop`; the reading side
 * (the read loop, the claim and takeover, the hand-over and the hand-back) is DeliveryStreamReader's
 * (./delivery-stream-reader.ts).
 * @see https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM)
 * @see https://redis.io/docs/latest/commands/client-unblock/
 */
export class RedisDeliveryQueue implements DeliveryQueue {
  readonly shared = true;
  readonly consumer: string;
  readonly #busy: string;
  readonly #client: Redis;
  readonly #reader: DeliveryStreamReader;
  readonly #log: RedisDeliveryLog;
  readonly #options: RedisDeliveryQueueOptions;
  readonly #key: string;
  readonly #enqueue: Script;
  readonly #refreshScript: Script;
  readonly #beginScript: Script;
  readonly #waitingScript: Script;
  #refresher: NodeJS.Timeout | undefined;
  #refreshing = false;
  /** Entries handed to the dispatcher and not yet acknowledged or released. */
  readonly #held = new Set<string>();
  /** Of those, the entries whose attempt has started (`begin`). */
  readonly #started = new Set<string>();
  #handler: DeliveryHandler | undefined;
  #running = false;

  /** Makes the stream and its group when missing, then the queue (not yet reading: `start`). */
  static async create(client: Redis, log: RedisDeliveryLog, options: RedisDeliveryQueueOptions): Promise<RedisDeliveryQueue> {
    const queue = new RedisDeliveryQueue(client, log, options);
    try {
      await queue.#createGroup();
    } catch (error) {
      // A start that fails here (a namespace's, say) must not leave the reading connection open.
      queue.#reader.disconnect();
      throw error;
    }
    return queue;
  }

  private constructor(client: Redis, log: RedisDeliveryLog, options: RedisDeliveryQueueOptions) {
    this.#client = client;
    this.#log = log;
    this.#options = options;
    this.#key = `${options.keyPrefix}whq`;
    this.consumer = options.consumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#busy = `${this.consumer}${BUSY_SUFFIX}`;
    this.#enqueue = defineScript(client, 'paysimDeliveryEnqueue', keepingReply("KEYS[1] .. ':tok:'", ENQUEUE));
    this.#refreshScript = defineScript(client, 'paysimDeliveryRefresh', REFRESH);
    this.#beginScript = defineScript(client, 'paysimDeliveryBegin', BEGIN);
    this.#waitingScript = defineScript(client, 'paysimDeliveryWaiting', WAITING);
    this.#reader = new DeliveryStreamReader(client, log, options, this.#key, this.consumer, this.#busy, this.#held, {
      running: () => this.#running,
      room: () => this.#room(),
      handler: () => this.#handler,
      createGroup: (makeStream) => this.#createGroup(makeStream),
    });
  }

  /** The stream's key. */
  get key(): string {
    return this.#key;
  }

  /**
   * Deliveries waiting to start across every consumer of the group (queued and not read yet, or read
   * and not started): what `enqueue`'s `max` bounds, the same whichever replica asks. None when the
   * stream or its group is gone (a flush, the key deleted) until the next accept makes them again:
   * before 2026-12-06 that was an error, which a drain's end line told as Redis unavailable (a user test).
   */
  async waiting(): Promise<number> {
    return (await this.#waitingScript([this.#key], [DELIVERY_GROUP, BUSY_SUFFIX]).catch(noneWithoutGroup)) as number;
  }

  /**
   * Deliveries whose attempt another consumer has begun and not acknowledged (its busy consumer's
   * entries): in flight on a live replica, or left by a dead one until a claim takes them over. None
   * when the stream or its group is gone, as `waiting`.
   */
  async inFlightElsewhere(): Promise<number> {
    const pending = await this.#client.xpending(this.#key, DELIVERY_GROUP).catch(noneWithoutGroup);
    if (pending === 0) return 0;
    const summary = pending as [number, string | null, string | null, Array<[string, string]> | null];
    let count = 0;
    for (const [consumer, entries] of summary[3] ?? []) if (consumer.endsWith(BUSY_SUFFIX) && consumer !== this.#busy) count += Number(entries);
    return count;
  }

  /** Deliveries this consumer holds (taken, not acknowledged). */
  get held(): number {
    return this.#held.size;
  }

  /** Of those, the ones whose attempt has not begun: `waiting` counts them too. */
  get heldUnbegun(): number {
    return this.#held.size - this.#started.size;
  }

  start(handler: DeliveryHandler): void {
    if (this.#handler !== undefined) throw new Error('the delivery queue is already started');
    this.#handler = handler;
    this.#running = true;
    this.#reader.start();
    this.#refresher = setInterval(() => this.#refresh(), Math.max(1, Math.floor(this.#options.claimIdleMs / REFRESHES_PER_CLAIM_IDLE))).unref();
  }

  async enqueue(delivery: Delivery, _origin: string, max: number): Promise<boolean> {
    const args = [DELIVERY_GROUP, max, JSON.stringify(delivery), BUSY_SUFFIX, callToken()];
    try {
      return (await this.#enqueue([this.#key], args)) === 1;
    } catch (error) {
      // The stream was deleted (a flush): make it again and queue once more.
      if (!isNoGroup(error)) throw error;
      await this.#createGroup();
      return (await this.#enqueue([this.#key], args)) === 1;
    }
  }

  /** The log's insert-once and this queue's ENQUEUE in one script (the log's `insertOnceAndQueue`). */
  async accept(delivery: Delivery, _origin: string, max: number): Promise<AcceptOutcome> {
    const stream = { key: this.#key, group: DELIVERY_GROUP, max, busySuffix: BUSY_SUFFIX };
    try {
      return await this.#log.insertOnceAndQueue(delivery, stream);
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      await this.#createGroup();
      return this.#log.insertOnceAndQueue(delivery, stream);
    }
  }

  /** The log's \`updateIf\` and this queue's ENQUEUE in one script (the log's \`updateIfAndQueue\`). */
  async requeue(read: Delivery, change: DeliveryChange): Promise<RequeueOutcome> {
    const expect = { statuses: [read.status], attempts: read.attempts.length };
    const queued = changedDelivery(read, change);
    const stream = { key: this.#key, group: DELIVERY_GROUP, busySuffix: BUSY_SUFFIX };
    let updated;
    try {
      updated = await this.#log.updateIfAndQueue(read.id, expect, change, queued, stream);
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      await this.#createGroup();
      updated = await this.#log.updateIfAndQueue(read.id, expect, change, queued, stream);
    }
    if (updated === undefined) return { kind: 'gone' };
    return { kind: updated.changed ? 'queued' : 'moved', delivery: updated.delivery };
  }

  /**
   * The entry's attempt starts: it leaves the room for others, and moves to the busy consumer, once
   * BEGIN found it still this consumer's. When another consumer took it over (this process stalled,
   * or was cut off from Redis, for `claimIdleMs`), it is held here no longer (not refreshed): false.
   * The dispatcher does not wait for this (see `holdings.begin`).
   */
  async begin(ticket: string): Promise<boolean> {
    if (!this.#held.has(ticket)) return false;
    if (this.#started.has(ticket)) return true;
    this.#started.add(ticket);
    this.#reader.wake();
    let owned: unknown;
    try {
      owned = await this.#beginScript([this.#key], [DELIVERY_GROUP, ticket, this.consumer, this.#busy]);
    } catch {
      // Redis unreachable: the attempt goes ahead (its record then fails, and the entry is taken over once idle).
      return true;
    }
    if (owned === 1) return true;
    this.#free(ticket);
    return false;
  }

  forget(ticket: string): void {
    this.#free(ticket);
  }

  heldAs(ticket: string): HeldEntry {
    return { stream: this.#key, group: DELIVERY_GROUP, entry: ticket, consumers: [this.consumer, this.#busy] };
  }

  async ack(ticket: string): Promise<void> {
    this.#free(ticket);
    await this.#client.xack(this.#key, DELIVERY_GROUP, ticket);
  }

  /** Hands the entry back to the group (any consumer takes it, checking the log first); if Redis cannot, it is taken over once idle. */
  release(ticket: string): void {
    if (!this.#held.has(ticket)) return;
    this.#free(ticket);
    this.#reader.handBack(ticket);
  }

  /**
   * Stops reading: a blocking read is cut short (CLIENT UNBLOCK), and what the last read or claim
   * brought is handed back to the group. Entries handed over before stay held until acknowledged
   * or released (or taken over, if this process dies).
   */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#reader.stop();
    this.#refreshDone();
  }

  /**
   * Keeps what this consumer holds its own (REFRESH), also after `stop` while a drain finishes what
   * it holds; ends once nothing is held after `stop`, or the client is closed for good. A refresh
   * that fails is not reported: the entries are then taken over once idle, which the claim handles.
   */
  #refresh(): void {
    if (this.#refreshDone()) return;
    if (this.#held.size === 0 || this.#refreshing) return;
    this.#refreshing = true;
    void this.#refreshScript([this.#key], [DELIVERY_GROUP, this.consumer, this.#busy, ...this.#held])
      .catch(() => undefined)
      .finally(() => (this.#refreshing = false));
  }

  /** Ends the refreshes once they have nothing left to do (at `stop`, or when a drain frees the last entry), so a closed queue is not kept alive by its timer; true when ended. */
  #refreshDone(): boolean {
    if (this.#refresher === undefined) return true;
    if (this.#client.status !== 'end' && (this.#running || this.#held.size > 0)) return false;
    clearInterval(this.#refresher);
    this.#refresher = undefined;
    return true;
  }

  #free(ticket: string): void {
    this.#started.delete(ticket);
    if (this.#held.delete(ticket)) this.#reader.wake();
    if (!this.#running) this.#refreshDone();
  }
  /** Entries this consumer may take now: fewer than `readAhead` waiting to start. */
  #room(): number {
    return this.#options.readAhead - (this.#held.size - this.#started.size);
  }

  /**
   * Makes the consumer group (one already there is fine). For a write (`makeStream`), the stream
   * too when it is missing; for the read loop, on the stream as it is: false when there is none
   * (or the call failed), since a stream deleted by a namespace reset must not be made again by a
   * replica about to close.
   */
  async #createGroup(makeStream = true): Promise<boolean> {
    try {
      if (makeStream) await this.#client.xgroup('CREATE', this.#key, DELIVERY_GROUP, '0', 'MKSTREAM');
      else await this.#client.xgroup('CREATE', this.#key, DELIVERY_GROUP, '0');
      return true;
    } catch (error) {
      if (String((error as Error).message).startsWith('BUSYGROUP')) return true;
      if (makeStream) throw error;
      return false;
    }
  }
}

/** 0 for a count asked of a stream or group that is gone (it holds nothing); any other failure as it was. */
function noneWithoutGroup(error: unknown): 0 {
  if (isNoGroup(error)) return 0;
  throw error;
}
