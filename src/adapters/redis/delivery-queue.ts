import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Delivery } from '../../core/deliveries.ts';
import type { AcceptOutcome, DeliveryHandler, DeliveryQueue } from '../../core/ports.ts';
import type { RedisDeliveryLog } from './deliveries.ts';
import { defineScript, type Script } from './connection.ts';

export interface RedisDeliveryQueueOptions {
  /** Prefix of every key this queue writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** An entry a consumer has held unacknowledged for this long is taken over by another (WEBHOOK_CLAIM_IDLE_MS). */
  claimIdleMs: number;
  /** Deliveries this consumer holds at most: taken from the stream ahead of its workers, not yet acknowledged. */
  readAhead: number;
  /** This consumer's name in the group; default: host, process id and a random suffix (one per start). */
  consumer?: string | undefined;
  /** Told when reading the stream starts failing (once per outage; the loop keeps trying) or an entry cannot be read. */
  onError: (error: unknown, context: string) => void;
}

/** The consumer group every replica's dispatcher reads the delivery stream in. */
export const DELIVERY_GROUP = 'dispatchers';
/** The longest a blocking read waits before the loop looks again (and the longest `stop` waits for it). */
const MAX_BLOCK_MS = 1000;
/** Waits after a failed read: doubling from the first, up to the last. */
const READ_RETRY_MS = [50, 1000] as const;

/*
 * KEYS[1]: the stream (P .. 'whq'). ARGV: group, max (0: no bound), the delivery (JSON).
 * Refuses (0) when `max` deliveries are waiting (not yet read: the group's lag) or held (read, not
 * acknowledged: its pending count). Trims, with the same XADD, the entries older than both the
 * oldest pending entry and the last entry read: those have all been acknowledged, so trimming
 * never drops a delivery that is waiting or held (`~`: only whole nodes go, cheaply).
 */
export const ENQUEUE = `
local group
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if g[2] == ARGV[1] then group = g end
end
if not group then return redis.error_reply('NOGROUP the delivery stream has no group ' .. ARGV[1]) end
local info = {}
for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
local pending, lag = info['pending'], info['lag']
-- Lag is unknown after some deletions: then the whole stream counts as waiting (erring towards refusing).
if not lag then lag = redis.call('XLEN', KEYS[1]) end
local max = tonumber(ARGV[2])
if max > 0 and lag + pending >= max then return 0 end
local floor = info['last-delivered-id']
if pending > 0 then floor = redis.call('XPENDING', KEYS[1], ARGV[1])[2] end
redis.call('XADD', KEYS[1], 'MINID', '~', floor, '*', 'd', ARGV[3])
return 1
`;

/*
 * KEYS[1]: the stream. ARGV: group, idle (ms). Removes the consumers that hold nothing and have not
 * read for `idle` (replicas gone: each start is a new consumer), in one step, so none can take an
 * entry between the check and the removal. A live consumer removed while idle is made again by its
 * next read. Answers how many went.
 */
const FORGET_CONSUMERS = `
local gone = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    gone = gone + 1
  end
end
return gone
`;

/** A consumer that holds nothing and has not read for this many claim idle times is forgotten. */
const FORGET_AFTER_CLAIM_IDLES = 2;

type StreamEntry = [id: string, fields: string[] | null];

/**
 * Webhook deliveries waiting to be attempted, in a Redis Stream read by one consumer group: every
 * replica's dispatcher is a consumer, takes entries as it has room for them (`readAhead`), and
 * acknowledges (XACK) an entry once its attempt is over and the result is in the delivery log. An
 * entry its consumer has held for `claimIdleMs` (it died, or stalled) is taken over by whichever
 * consumer looks first (XAUTOCLAIM, every half of that time): the taker reads the delivery in the
 * log first, and attempts it only if it is still pending with the attempts it was queued with;
 * otherwise the dead consumer had recorded its attempt, and the entry is just acknowledged. So a
 * delivery is attempted once, unless a consumer dies between sending and recording (then at least
 * once, with the same event id).
 *
 * Each entry carries the delivery as queued (field `d`, JSON), so a fresh entry needs no read of
 * the log. Blocking reads use a connection of their own (`client.duplicate()`), so they never hold
 * up the commands of the shared client. Idle times are Redis's own, in real time.
 * @see https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM)
 */
export class RedisDeliveryQueue implements DeliveryQueue {
  readonly shared = true;
  readonly consumer: string;
  readonly #client: Redis;
  readonly #reader: Redis;
  readonly #log: RedisDeliveryLog;
  readonly #options: RedisDeliveryQueueOptions;
  readonly #key: string;
  readonly #enqueue: Script;
  readonly #forgetConsumers: Script;
  /** Entries handed to the dispatcher and not yet acknowledged or released. */
  readonly #held = new Set<string>();
  #handler: DeliveryHandler | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeLoop: (() => void) | undefined;
  #claimCursor = '0-0';
  #nextClaimAt = 0;

  /** Makes the stream and its group when missing, then the queue (not yet reading: `start`). */
  static async create(client: Redis, log: RedisDeliveryLog, options: RedisDeliveryQueueOptions): Promise<RedisDeliveryQueue> {
    const queue = new RedisDeliveryQueue(client, log, options);
    await queue.#createGroup();
    return queue;
  }

  private constructor(client: Redis, log: RedisDeliveryLog, options: RedisDeliveryQueueOptions) {
    this.#client = client;
    this.#reader = client.duplicate();
    // Without a listener ioredis prints every failed reconnect of this connection to stderr. An
    // outage is logged once by the shared client's listener (src/plugins/app/stores.ts), and a
    // failed read is reported through `onError`.
    this.#reader.on('error', () => undefined);
    this.#log = log;
    this.#options = options;
    this.#key = `${options.keyPrefix}whq`;
    this.consumer = options.consumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#enqueue = defineScript(client, 'paysimDeliveryEnqueue', ENQUEUE);
    this.#forgetConsumers = defineScript(client, 'paysimDeliveryForgetConsumers', FORGET_CONSUMERS);
  }

  /** The stream's key. */
  get key(): string {
    return this.#key;
  }

  /** Deliveries this consumer holds (taken, not acknowledged). */
  get held(): number {
    return this.#held.size;
  }

  start(handler: DeliveryHandler): void {
    if (this.#handler !== undefined) throw new Error('the delivery queue is already started');
    this.#handler = handler;
    this.#running = true;
    this.#loop = this.#run();
  }

  async enqueue(delivery: Delivery, _origin: string, max: number): Promise<boolean> {
    const args = [DELIVERY_GROUP, max, JSON.stringify(delivery)];
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
    const stream = { key: this.#key, group: DELIVERY_GROUP, max };
    try {
      return await this.#log.insertOnceAndQueue(delivery, stream);
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      await this.#createGroup();
      return this.#log.insertOnceAndQueue(delivery, stream);
    }
  }

  async ack(ticket: string): Promise<void> {
    this.#free(ticket);
    await this.#client.xack(this.#key, DELIVERY_GROUP, ticket);
  }

  release(ticket: string): void {
    this.#free(ticket);
  }

  /** Stops reading (a blocking read is cut short); entries held stay pending until acknowledged or taken over. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#reader.disconnect();
    this.#wakeLoop?.();
    await this.#loop;
  }

  #free(ticket: string): void {
    if (this.#held.delete(ticket)) this.#wakeLoop?.();
  }

  async #createGroup(): Promise<void> {
    try {
      await this.#client.xgroup('CREATE', this.#key, DELIVERY_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        if (this.#held.size >= this.#options.readAhead) {
          await new Promise<void>((resolve) => (this.#wakeLoop = resolve));
          this.#wakeLoop = undefined;
          continue;
        }
        if (Date.now() >= this.#nextClaimAt) await this.#claim();
        if (this.#held.size < this.#options.readAhead) await this.#read(this.#options.readAhead - this.#held.size);
        failures = 0;
      } catch (error) {
        if (!this.#running) return;
        if (isNoGroup(error)) {
          await this.#createGroup().catch(() => undefined);
          continue;
        }
        if (failures === 0) this.#options.onError(error, 'reading the webhook delivery stream');
        failures++;
        await sleep(Math.min(READ_RETRY_MS[1], READ_RETRY_MS[0] * 2 ** (failures - 1)));
      }
    }
  }

  async #read(room: number): Promise<void> {
    const block = Math.max(1, Math.min(MAX_BLOCK_MS, this.#nextClaimAt - Date.now()));
    const reply = (await this.#reader.xreadgroup('GROUP', DELIVERY_GROUP, this.consumer, 'COUNT', room, 'BLOCK', block, 'STREAMS', this.#key, '>')) as
      | Array<[string, StreamEntry[]]>
      | null;
    if (reply === null || !this.#running) return;
    for (const [, entries] of reply) for (const [id, fields] of entries) this.#handOver(id, this.#decode(id, fields));
  }

  /** Takes over entries other consumers have held for `claimIdleMs`, as many as there is room for; forgets consumers gone. */
  async #claim(): Promise<void> {
    this.#nextClaimAt = Date.now() + Math.max(1, Math.floor(this.#options.claimIdleMs / 2));
    await this.#forgetConsumers([this.#key], [DELIVERY_GROUP, FORGET_AFTER_CLAIM_IDLES * this.#options.claimIdleMs]);
    for (;;) {
      const room = this.#options.readAhead - this.#held.size;
      if (room <= 0 || !this.#running) return;
      const [cursor, entries] = (await this.#client.xautoclaim(this.#key, DELIVERY_GROUP, this.consumer, this.#options.claimIdleMs, this.#claimCursor, 'COUNT', room)) as [
        string,
        StreamEntry[],
      ];
      this.#claimCursor = cursor;
      // An entry this consumer already holds (a slow attempt) is still its own: nothing to hand over again.
      await Promise.all(entries.filter(([id]) => !this.#held.has(id)).map(([id, fields]) => this.#takeOver(id, this.#decode(id, fields))));
      if (cursor === '0-0') return;
    }
  }

  async #takeOver(id: string, queued: Delivery | undefined): Promise<void> {
    if (queued === undefined) return;
    const current = await this.#log.get(queued.id);
    if (current?.status === 'pending' && current.attempts.length === queued.attempts.length) {
      this.#handOver(id, current);
      return;
    }
    // Its attempt was recorded before its consumer died (or the delivery left the log): nothing to send.
    await this.#client.xack(this.#key, DELIVERY_GROUP, id);
  }

  #handOver(id: string, delivery: Delivery | undefined): void {
    if (delivery === undefined || this.#handler === undefined || !this.#running) return;
    let origin: string;
    try {
      origin = new URL(delivery.url).origin;
    } catch (error) {
      // Never queued so (a URL the parser refuses fails before), but an entry nobody can attempt must not come back forever.
      this.#options.onError(error, `delivery stream entry ${id}`);
      void this.#client.xack(this.#key, DELIVERY_GROUP, id).catch(() => undefined);
      return;
    }
    this.#held.add(id);
    this.#handler(delivery, origin, id);
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

function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
