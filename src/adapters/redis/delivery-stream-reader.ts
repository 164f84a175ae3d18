import type { Redis } from 'ioredis';
import { isFinished, type Delivery } from '../../core/deliveries.ts';
import type { DeliveryHandler } from '../../core/ports.ts';
import type { RedisDeliveryLog } from './deliveries.ts';
import { defineScript, type Script } from './connection.ts';
import type { RedisDeliveryQueueOptions } from './delivery-queue.ts';
import { FORGET_CONSUMERS, HAND_BACK } from './delivery-queue-lua.ts';

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

/** What the reader asks of its queue, which keeps the entries this consumer holds. */
export interface DeliveryStreamReaderHost {
  /** The queue reads (between `start` and `stop`). */
  running(): boolean;
  /** Entries this consumer may take now. */
  room(): number;
  /** The dispatcher's handler, once the queue has started. */
  handler(): DeliveryHandler | undefined;
  /** Makes the consumer group (see RedisDeliveryQueue's `#createGroup`). */
  createGroup(makeStream: boolean): Promise<boolean>;
}

/**
 * The reading side of RedisDeliveryQueue (./delivery-queue.ts: the writes, the counts, the entries
 * this consumer holds and their refresh, `begin`, `ack`, `release`): the read loop on a connection
 * of its own (XREADGROUP), the claim that takes over entries idle for `claimIdleMs` (XAUTOCLAIM,
 * reading the log first), the hand-over of each entry to the dispatcher, the hand-back of those
 * nobody here will attempt (retried while Redis cannot take it), and `stop`'s cut of a blocking
 * read (CLIENT UNBLOCK).
 * @see https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM)
 * @see https://redis.io/docs/latest/commands/client-unblock/
 */
export class DeliveryStreamReader {
  readonly consumer: string;
  readonly #busy: string;
  readonly #client: Redis;
  readonly #reader: Redis;
  readonly #log: RedisDeliveryLog;
  readonly #options: RedisDeliveryQueueOptions;
  readonly #key: string;
  readonly #forgetConsumers: Script;
  readonly #handBackScript: Script;
  readonly #host: DeliveryStreamReaderHost;
  /** The queue's entries handed to the dispatcher and not yet acknowledged or released (the hand-over adds them). */
  readonly #held: Set<string>;
  /** Hand-backs under way (`stop` waits for them). */
  readonly #handingBack = new Set<Promise<void>>();
  /** Hand-backs to try again (`#handBack`), by entry: the timer of the next try. */
  readonly #handBackRetries = new Map<string, NodeJS.Timeout>();
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

  constructor(client: Redis, log: RedisDeliveryLog, options: RedisDeliveryQueueOptions, key: string, consumer: string, busy: string, held: Set<string>, host: DeliveryStreamReaderHost) {
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
    this.#key = key;
    this.consumer = consumer;
    this.#busy = busy;
    this.#held = held;
    this.#host = host;
    this.#forgetConsumers = defineScript(client, 'paysimDeliveryForgetConsumers', FORGET_CONSUMERS);
    this.#handBackScript = defineScript(client, 'paysimDeliveryHandBack', HAND_BACK);
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Lets a loop that waits for room look again. */
  wake(): void {
    this.#wakeLoop?.();
  }

  /** Stops reading: see RedisDeliveryQueue's `stop`. */
  async stop(): Promise<void> {
    // Hand-backs waiting to be tried again are left to be taken over once idle.
    for (const timer of this.#handBackRetries.values()) clearTimeout(timer);
    this.#handBackRetries.clear();
    this.#wakeLoop?.();
    if (this.#loop !== undefined) await this.#cutReadShort(this.#loop);
    await Promise.all(this.#handingBack);
    this.#reader.disconnect();
  }

  /** Closes the reading connection. */
  disconnect(): void {
    this.#reader.disconnect();
  }

  get #running(): boolean {
    return this.#host.running();
  }

  get #handler(): DeliveryHandler | undefined {
    return this.#host.handler();
  }

  #room(): number {
    return this.#host.room();
  }

  #createGroup(makeStream: boolean): Promise<boolean> {
    return this.#host.createGroup(makeStream);
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
   * Hands an entry back to the group. One Redis cannot take (away, or refusing) is reported once and
   * tried again (HAND_BACK_RETRY_MS, doubling) while the queue runs, for up to `claimIdleMs` from the
   * first failure; then, or when the queue stops, it is taken over once idle. A try that finds the
   * entry another consumer's by then leaves it to that one (the script's own check); one held here
   * again (this consumer's claim took it back) is not tried. Left: a try already sent when this
   * consumer's claim, sent before it, takes the entry back hands back an entry being attempted here
   * (the two scripts' order on the connection; a window of one round trip, after an outage of about
   * `claimIdleMs`).
   */
  handBack(id: string, firstFailedAt?: number, delayMs = HAND_BACK_RETRY_MS): void {
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
          this.handBack(id, failedAt, Math.min(HAND_BACK_RETRY_MAX_MS, delayMs * 2));
        }, delayMs).unref();
        this.#handBackRetries.set(id, timer);
      },
    );
    this.#handingBack.add(done);
    void done.finally(() => this.#handingBack.delete(done));
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
      this.handBack(id);
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
export function isNoGroup(error: unknown): boolean {
  return error instanceof Error && (error.message.startsWith('NOGROUP') || error.message.startsWith('UNBLOCKED the stream key no longer exists'));
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
