import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { changedDelivery, isFinished, type Delivery, type DeliveryChange } from '../../core/deliveries.ts';
import type { AcceptOutcome, DeliveryHandler, DeliveryQueue, HeldEntry, RequeueOutcome } from '../../core/ports.ts';
import type { RedisDeliveryLog } from './deliveries.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { BEGIN, ENQUEUE, FORGET_CONSUMERS, HAND_BACK, REFRESH, WAITING } from './delivery-queue-lua.ts';
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

/** The consumer group every replica's dispatcher reads the delivery stream in. */
export const DELIVERY_GROUP = 'dispatchers';
/** The longest a blocking read waits before the loop looks again (and the longest `stop` waits for it). */
const MAX_BLOCK_MS = 1000;
/** Waits after a failed read: doubling from the first, up to the last. */
const READ_RETRY_MS = [50, 1000] as const;
/** How often `stop` asks Redis again to cut the blocking read short (the read may reach Redis after the first ask). */
const UNBLOCK_EVERY_MS = 20;
/** `stop` gives up on a read that neither returns nor can be cut short (its connection is down) after the longest block and this. */
const STOP_GRACE_MS = 1000;
/**
 * The suffix of the consumer that holds a consumer's entries whose attempt has started (`begin`):
 * they are moved to it (XCLAIM), so the group's own counts tell what is in flight from what waits.
 */
export const BUSY_SUFFIX = ':busy';

/** How many times per claim idle time a consumer refreshes the idle time of the entries it holds. */
const REFRESHES_PER_CLAIM_IDLE = 3;
/**
 * A hand-back Redis could not take is tried again this long after (doubling up to
 * HAND_BACK_RETRY_MAX_MS), while the queue runs and for at most `claimIdleMs` (by then another
 * consumer may take the entry over as idle, which it would otherwise wait for: h76d, a delivery sent
 * again 37 s after a 5 s Redis restart, every other at once).
 */
const HAND_BACK_RETRY_MS = 250;
const HAND_BACK_RETRY_MAX_MS = 4000;

/** A consumer that holds nothing and has not read for this many claim idle times is forgotten. */
const FORGET_AFTER_CLAIM_IDLES = 2;

type StreamEntry = [id: string, fields: string[] | null];

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
 * @see https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM)
 * @see https://redis.io/docs/latest/commands/client-unblock/
 */
export class RedisDeliveryQueue implements DeliveryQueue {
  readonly shared = true;
  readonly consumer: string;
  readonly #busy: string;
  readonly #client: Redis;
  readonly #reader: Redis;
  readonly #log: RedisDeliveryLog;
  readonly #options: RedisDeliveryQueueOptions;
  readonly #key: string;
  readonly #enqueue: Script;
  readonly #forgetConsumers: Script;
  readonly #handBackScript: Script;
  readonly #refreshScript: Script;
  readonly #beginScript: Script;
  readonly #waitingScript: Script;
  #refresher: NodeJS.Timeout | undefined;
  #refreshing = false;
  /** Entries handed to the dispatcher and not yet acknowledged or released. */
  readonly #held = new Set<string>();
  /** Of those, the entries whose attempt has started (`begin`). */
  readonly #started = new Set<string>();
  /** Hand-backs under way (`stop` waits for them). */
  readonly #handingBack = new Set<Promise<void>>();
  /** Hand-backs to try again (`#handBack`), by entry: the timer of the next try. */
  readonly #handBackRetries = new Map<string, NodeJS.Timeout>();
  #handler: DeliveryHandler | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeLoop: (() => void) | undefined;
  /**
   * The reader connection's client id (for CLIENT UNBLOCK); unknown until read after each connect;
   * null when Redis refuses CLIENT ID to this user (an ACL without it, or the command renamed away,
   * as some hosted Redis have it): the reader reads all the same, and `stop` waits for its read.
   */
  #readerId: number | null | undefined;
  /** Redis refused CLIENT UNBLOCK to this user (an ACL without `@admin`): `stop` waits for the read instead of asking again. */
  #unblockRefused = false;
  #claimCursor = '0-0';
  #nextClaimAt = 0;

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
    // No command time-out: its blocking read is bounded by its BLOCK, and a read timed out while
    // Redis is silent would still run when Redis answers, taking entries whose reply nobody reads.
    this.#reader = client.duplicate({ commandTimeout: undefined });
    // Without a listener ioredis prints every failed reconnect of this connection to stderr. An
    // outage is logged once by the shared client's listener (src/adapters/redis/watched-client.ts), and a
    // failed read is reported through `onError`.
    this.#reader.on('error', () => undefined);
    this.#reader.on('close', () => (this.#readerId = undefined));
    this.#log = log;
    this.#options = options;
    this.#key = `${options.keyPrefix}whq`;
    this.consumer = options.consumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#busy = `${this.consumer}${BUSY_SUFFIX}`;
    this.#enqueue = defineScript(client, 'paysimDeliveryEnqueue', keepingReply("KEYS[1] .. ':tok:'", ENQUEUE));
    this.#forgetConsumers = defineScript(client, 'paysimDeliveryForgetConsumers', FORGET_CONSUMERS);
    this.#handBackScript = defineScript(client, 'paysimDeliveryHandBack', HAND_BACK);
    this.#refreshScript = defineScript(client, 'paysimDeliveryRefresh', REFRESH);
    this.#beginScript = defineScript(client, 'paysimDeliveryBegin', BEGIN);
    this.#waitingScript = defineScript(client, 'paysimDeliveryWaiting', WAITING);
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
    this.#loop = this.#run();
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
    this.#wakeLoop?.();
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
    this.#handBack(ticket);
  }

  /**
   * Stops reading: a blocking read is cut short (CLIENT UNBLOCK), and what the last read or claim
   * brought is handed back to the group. Entries handed over before stay held until acknowledged
   * or released (or taken over, if this process dies).
   */
  async stop(): Promise<void> {
    this.#running = false;
    // Hand-backs waiting to be tried again are left to be taken over once idle.
    for (const timer of this.#handBackRetries.values()) clearTimeout(timer);
    this.#handBackRetries.clear();
    this.#wakeLoop?.();
    if (this.#loop !== undefined) await this.#cutReadShort(this.#loop);
    await Promise.all(this.#handingBack);
    this.#reader.disconnect();
    this.#refreshDone();
  }

  /** Asks Redis to end the reader's blocking read until the loop is over; disconnects the reader if it never is (its connection down). */
  async #cutReadShort(loop: Promise<void>): Promise<void> {
    let over = false;
    void loop.finally(() => (over = true));
    const giveUpAt = Date.now() + MAX_BLOCK_MS + STOP_GRACE_MS;
    while (!over && Date.now() < giveUpAt) {
      const readerId = this.#readerId;
      if (readerId !== undefined && readerId !== null && !this.#unblockRefused) {
        await this.#client.call('CLIENT', 'UNBLOCK', readerId).catch((error: unknown) => {
          if (isRefusedToUser(error)) this.#unblockRefused = true;
        });
      }
      await Promise.race([loop, sleep(this.#unblockRefused || readerId === null ? giveUpAt - Date.now() : UNBLOCK_EVERY_MS)]);
    }
    if (over) return;
    // What that read brought, if anything, stays pending under this consumer: taken over after the claim idle time.
    this.#reader.disconnect();
    await loop;
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
    if (this.#held.delete(ticket)) this.#wakeLoop?.();
    if (!this.#running) this.#refreshDone();
  }

  /**
   * Hands an entry back to the group. One Redis cannot take (away, or refusing) is reported once and
   * tried again (HAND_BACK_RETRY_MS, doubling) while the queue runs, for up to `claimIdleMs` from the
   * first failure; then, or when the queue stops, it is taken over once idle. A try that finds the
   * entry another consumer's by then leaves it to that one (the script's own check); one held here
   * again (this consumer's claim took it back) is not tried. Left: a try already sent when this
   * consumer's claim, sent before it, takes the entry back hands back an entry being attempted here
   * (the two scripts' order on the connection; a window of one round trip, after an outage of about
   * `claimIdleMs`).
   */
  #handBack(id: string, firstFailedAt?: number, delayMs = HAND_BACK_RETRY_MS): void {
    const done: Promise<void> = this.#handBackScript([this.#key], [DELIVERY_GROUP, id, this.consumer, this.#busy]).then(
      () => undefined,
      (error: unknown) => {
        const failedAt = firstFailedAt ?? Date.now();
        if (firstFailedAt === undefined) this.#options.onError(error, `handing back delivery stream entry ${id} (tried again until Redis takes it, else taken over once idle)`);
        if (!this.#running || this.#held.has(id) || Date.now() - failedAt + delayMs >= this.#options.claimIdleMs) return;
        // One retry per entry: a later hand-back of it replaces the earlier's (rev76g: an overwritten timer outlived stop()).
        this.#cancelHandBackRetry(id);
        // stop() clears it, and so does #handOver for an entry held here again.
        const timer = setTimeout(() => {
          this.#handBackRetries.delete(id);
          this.#handBack(id, failedAt, Math.min(HAND_BACK_RETRY_MAX_MS, delayMs * 2));
        }, delayMs).unref();
        this.#handBackRetries.set(id, timer);
      },
    );
    this.#handingBack.add(done);
    void done.finally(() => this.#handingBack.delete(done));
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

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        if (this.#room() <= 0) {
          await new Promise<void>((resolve) => (this.#wakeLoop = resolve));
          this.#wakeLoop = undefined;
          continue;
        }
        if (Date.now() >= this.#nextClaimAt) await this.#claim();
        const room = this.#room();
        if (room > 0 && this.#running) await this.#read(room);
        failures = 0;
      } catch (error) {
        if (!this.#running) return;
        if (isNoGroup(error)) {
          // The group again, on the stream as it is; a stream deleted (a namespace reset) is not
          // made again here, where a replica about to close would leave it behind: the next
          // enqueue or accept makes it, and the read carries on then.
          if (!(await this.#createGroup(false))) await sleep(READ_RETRY_MS[0]);
          continue;
        }
        if (failures === 0) this.#options.onError(error, 'reading the webhook delivery stream');
        failures++;
        await sleep(Math.min(READ_RETRY_MS[1], READ_RETRY_MS[0] * 2 ** (failures - 1)));
      }
    }
  }

  async #read(room: number): Promise<void> {
    if (this.#readerId === undefined) {
      this.#readerId = (await this.#reader.call('CLIENT', 'ID').catch((error: unknown) => (isRefusedToUser(error) ? null : Promise.reject(error)))) as number | null;
    }
    if (!this.#running) return;
    const block = Math.max(1, Math.min(MAX_BLOCK_MS, this.#nextClaimAt - Date.now()));
    const reply = (await this.#reader.xreadgroup('GROUP', DELIVERY_GROUP, this.consumer, 'COUNT', room, 'BLOCK', block, 'STREAMS', this.#key, '>')) as
      | Array<[string, StreamEntry[]]>
      | null;
    if (reply === null) return;
    const takeovers: Array<Promise<unknown>> = [];
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        const delivery = this.#decode(id, fields);
        // Handed back by a consumer: like a takeover, its attempt may have been recorded meanwhile.
        if (isHandedBack(fields)) takeovers.push(this.#takeOver(id, delivery));
        else this.#handOver(id, delivery);
      }
    }
    await Promise.all(takeovers);
  }

  /** Takes over entries other consumers have held for `claimIdleMs`, as many as there is room for; forgets consumers gone. */
  async #claim(): Promise<void> {
    this.#nextClaimAt = Date.now() + Math.max(1, Math.floor(this.#options.claimIdleMs / 2));
    await this.#forgetConsumers([this.#key], [DELIVERY_GROUP, FORGET_AFTER_CLAIM_IDLES * this.#options.claimIdleMs]);
    const taken = { toSend: 0, recorded: 0 };
    try {
      await this.#claimRounds(taken);
    } finally {
      if (taken.toSend + taken.recorded > 0) this.#options.onTakenOver?.(taken);
    }
  }

  async #claimRounds(taken: { toSend: number; recorded: number }): Promise<void> {
    for (;;) {
      const room = this.#room();
      if (room <= 0 || !this.#running) return;
      const [cursor, entries] = (await this.#client.xautoclaim(this.#key, DELIVERY_GROUP, this.consumer, this.#options.claimIdleMs, this.#claimCursor, 'COUNT', room)) as [
        string,
        StreamEntry[],
      ];
      this.#claimCursor = cursor;
      // An entry this consumer already holds (a slow attempt) is still its own: nothing to hand over again.
      const outcomes = await Promise.all(entries.filter(([id]) => !this.#held.has(id)).map(([id, fields]) => this.#takeOver(id, this.#decode(id, fields))));
      for (const outcome of outcomes) if (outcome !== undefined) taken[outcome]++;
      if (cursor === '0-0') return;
    }
  }

  /** An entry another consumer held: attempted here (`toSend`), or only acknowledged (`recorded`). */
  async #takeOver(id: string, queued: Delivery | undefined): Promise<'toSend' | 'recorded' | undefined> {
    if (queued === undefined) return undefined;
    const current = await this.#log.get(queued.id);
    if (current?.status === 'pending' && current.attempts.length === queued.attempts.length) {
      this.#handOver(id, current);
      return 'toSend';
    }
    // Its attempt was recorded before its consumer died (or the delivery left the log): nothing to send.
    await this.#client.xack(this.#key, DELIVERY_GROUP, id);
    if (current !== undefined && isFinished(current)) this.#options.onFinishedElsewhere?.(current);
    return 'recorded';
  }

  #handOver(id: string, delivery: Delivery | undefined): void {
    if (delivery === undefined) return;
    if (this.#handler === undefined || !this.#running) {
      // Read as the queue stopped: nobody here will attempt it, so it goes back to the group now.
      this.#handBack(id);
      return;
    }
    let origin: string;
    try {
      origin = new URL(delivery.url).origin;
    } catch (error) {
      // Never queued so (a URL the parser refuses fails before), but an entry nobody can attempt must not come back forever.
      this.#options.onError(error, `delivery stream entry ${id}`);
      void this.#client.xack(this.#key, DELIVERY_GROUP, id).catch(() => undefined);
      return;
    }
    // Held here again (this consumer's claim took it back as idle while its hand-back waited to be
    // tried again): the retry is dropped, or it would hand back an entry being attempted here, and
    // the delivery be sent twice at once (rev76g).
    this.#cancelHandBackRetry(id);
    this.#held.add(id);
    this.#handler(delivery, origin, id);
  }

  #cancelHandBackRetry(id: string): void {
    clearTimeout(this.#handBackRetries.get(id));
    this.#handBackRetries.delete(id);
  }

  /** The delivery of an entry; one that cannot be read is reported and acknowledged (it could never be attempted). */
  #decode(id: string, fields: string[] | null): Delivery | undefined {
    const at = fields === null ? -1 : fields.indexOf('d');
    try {
      if (fields === null || at === -1 || at % 2 !== 0) throw new Error('no delivery in the entry');
      return JSON.parse(fields[at + 1] as string) as Delivery;
    } catch (error) {
      this.#options.onError(error, `reading delivery stream entry ${id}`);
      void this.#client.xack(this.#key, DELIVERY_GROUP, id).catch(() => undefined);
      return undefined;
    }
  }
}

/** Whether an entry was handed back by a consumer (field `h`, see HAND_BACK). */
function isHandedBack(fields: string[] | null): boolean {
  if (fields === null) return false;
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'h') return true;
  return false;
}

/** The stream or its group is gone (a flush, the key deleted): a blocked read is cut short with UNBLOCKED then. */
function isNoGroup(error: unknown): boolean {
  return error instanceof Error && (error.message.startsWith('NOGROUP') || error.message.startsWith('UNBLOCKED the stream key no longer exists'));
}

/** 0 for a count asked of a stream or group that is gone (it holds nothing); any other failure as it was. */
function noneWithoutGroup(error: unknown): 0 {
  if (isNoGroup(error)) return 0;
  throw error;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Redis' refusal of a command to this connection's user, not a failure of Redis: an ACL without it
 * (`NOPERM`), or a command renamed away in its configuration (`ERR unknown command`).
 */
function isRefusedToUser(error: unknown): boolean {
  return error instanceof Error && /^(NOPERM |ERR unknown command)/.test(error.message);
}
