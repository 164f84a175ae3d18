import type { Redis } from 'ioredis';
import type { DomainEvent, EventBus } from '../../core/events.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';

/** The events of one turn of the event loop, appended by one script run (at most this many a run). */
const APPEND_BATCH = 256;

/** Its reply kept under its call's token (lua.ts `keepingReply`): run again, it would append the batch a second time. */
const APPEND = keepingReply(
  "KEYS[1] .. ':kept:'",
  `
-- ARGV: maxLen, then id, type, occurred_at, data of each event, in order, then the call token
for i = 2, #ARGV - 1, 4 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[i], 'type', ARGV[i + 1], 'occurred_at', ARGV[i + 2], 'data', ARGV[i + 3])
end
return (#ARGV - 2) / 4
`,
);

export interface RedisEventStreamOptions {
  /** Prefix of every key this stream writes (REDIS_KEY_PREFIX): the stream is `<prefix>events`. */
  keyPrefix: string;
  /** Entries kept, about (EVENTS_STREAM_MAX_LEN): `MAXLEN ~` trims whole nodes, so up to a node more stay. */
  maxLen: number;
  /** Told when appending starts failing (once per outage). */
  onError: (error: unknown, context: string) => void;
  /** Told, once appending works again after it failed, how many events were not appended meanwhile. */
  onMissed: (count: number) => void;
}

/**
 * Every domain event of the bus, also appended to a capped Redis Stream (`<prefix>events`) that
 * other systems read with consumer groups of their own: the role source document 002 gives Kafka.
 * One XADD per event, in the order the bus publishes them, never awaited by the publisher: the
 * events of one turn of the event loop are appended together at its end, by one script run (two
 * events per intent made two commands of the client's own per intent, a measurable share of a
 * create on Redis). An entry has the fields `id`, `type`, `occurred_at`
 * (ISO 8601 UTC with milliseconds) and `data` (the event as the bus carries it, JSON). The stream
 * is an outbound copy, not a store of record: events published while Redis is unreachable are
 * not in it (counted in `missed`, and said once it works again).
 * @see issue 14 "Outbound event stream"; README "The outbound event stream"
 */
export class RedisEventStream {
  readonly #append: Script;
  readonly #options: RedisEventStreamOptions;
  readonly #key: string;
  readonly #keys: [string];
  /** The next script run's arguments: the stream's cap, then the waiting events' fields (4 each); its call token is added as it goes. */
  #args: string[];
  #waiting = 0;
  #missed = 0;
  #failing = 0;

  constructor(client: Redis, options: RedisEventStreamOptions) {
    this.#append = defineScript(client, 'paysimEventsAppend', APPEND);
    this.#options = options;
    this.#key = `${options.keyPrefix}events`;
    this.#keys = [this.#key];
    this.#args = [String(options.maxLen)];
  }

  get key(): string {
    return this.#key;
  }

  /** Events that could not be appended (Redis unreachable), since start. */
  get missed(): number {
    return this.#missed;
  }

  /** Appends every event `bus` publishes from now on; returns the unsubscribe, which sends what is waiting at once. */
  attach(bus: EventBus): () => void {
    const unsubscribe = bus.subscribe((event) => this.append(event));
    return () => {
      unsubscribe();
      this.flush();
    };
  }

  append(event: DomainEvent): void {
    if (this.#waiting === 0) setImmediate(this.#flush);
    this.#args.push(event.id, event.type, new Date(event.occurredAt).toISOString(), JSON.stringify(event));
    if (++this.#waiting >= APPEND_BATCH) this.flush();
  }

  /** Sends the waiting events now (they go at the end of the turn without it). */
  flush(): void {
    const count = this.#waiting;
    if (count === 0) return;
    const args = this.#args;
    args.push(callToken());
    this.#args = [String(this.#options.maxLen)];
    this.#waiting = 0;
    this.#append(this.#keys, args).then(
      () => {
        if (this.#failing === 0) return;
        this.#options.onMissed(this.#failing);
        this.#failing = 0;
      },
      (error: unknown) => {
        this.#missed += count;
        if (this.#failing === 0) this.#options.onError(error, 'appending to the event stream');
        this.#failing += count;
      },
    );
  }

  readonly #flush = (): void => this.flush();
}
