import type { Redis } from 'ioredis';
import type { DomainEvent, EventBus } from '../../core/events.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';
import { wasWritten } from './unavailable.ts';

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
  /** Told when appending starts failing (once per outage), with the count of events of the append that failed. */
  onError: (error: unknown, context: string, count: number) => void;
  /**
   * Told, once appending has worked again for `quietMs` after it failed (or at once after a detach),
   * how many events were not appended meanwhile (`count`), and how many more were in appends cut off
   * after they were sent (`uncertain`: Redis went silent with them unanswered, and runs what it
   * received once it answers again, so they may be in the stream; before 2026-12-07 they were
   * counted as missed, and most were there: a user test).
   */
  onMissed: (count: number, uncertain: number) => void;
  /**
   * How long appends must work again before an outage is over (QUIET_MS; tests shorten it): a
   * failure within it belongs to the same outage, told by no new line. A Redis at its maxmemory
   * refuses some appends and takes others as memory frees: each flip was a pair of lines, five pairs
   * within 30 ms (a user test).
   */
  quietMs?: number | undefined;
}

/** How long appends must work again before an outage of the stream is over (`quietMs`). */
export const QUIET_MS = 10_000;

/**
 * Every domain event of the bus, also appended to a capped Redis Stream (`<prefix>events`) that
 * other systems read with consumer groups of their own: the role source document 002 gives Kafka.
 * One XADD per event, in the order the bus publishes them, never awaited by the publisher: the
 * events of one turn of the event loop are appended together at its end, by one script run (two
 * events per intent made two commands of the client's own per intent, a measurable share of a
 * create on Redis). An entry has the fields `id`, `type`, `occurred_at`
 * (ISO 8601 UTC with milliseconds) and `data` (the event as the bus carries it, JSON). The stream
 * is an outbound copy, not a store of record: events published while Redis is unreachable (or
 * refuses writes) are not in it (counted in `missed`, and said once it has worked again for
 * `quietMs`); those whose append was sent as Redis went silent may be (`uncertain`).
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
  #uncertain = 0;
  /** Events missed, or maybe missed, in the outage under way (0 and 0: none is). */
  #failing = 0;
  #failingUncertain = 0;
  /** Armed by an append that worked during an outage: the outage is over when it fires. */
  #quiet: NodeJS.Timeout | undefined;
  #detached = false;

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

  /** Events whose append was cut off after it was sent (Redis silent), since start: in the stream or not. */
  get uncertain(): number {
    return this.#uncertain;
  }

  /** Appends every event `bus` publishes from now on; returns the unsubscribe, which sends what is waiting at once. */
  attach(bus: EventBus): () => void {
    const unsubscribe = bus.subscribe((event) => this.append(event));
    return () => {
      unsubscribe();
      // From now on an outage that is over is told at once: no line comes after the app has closed.
      this.#detached = true;
      this.flush();
      if (this.#quiet !== undefined) this.#endOutage();
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
        if (!this.#inOutage) return;
        if (this.#detached) this.#endOutage();
        else this.#quiet ??= setTimeout(() => this.#endOutage(), this.#options.quietMs ?? QUIET_MS).unref();
      },
      (error: unknown) => {
        clearTimeout(this.#quiet);
        this.#quiet = undefined;
        if (!this.#inOutage) this.#options.onError(error, 'appending to the event stream', count);
        if (wasWritten(error)) {
          this.#uncertain += count;
          this.#failingUncertain += count;
        } else {
          this.#missed += count;
          this.#failing += count;
        }
      },
    );
  }

  /** Whether appends failed in the outage under way (missed or maybe missed events to tell of). */
  get #inOutage(): boolean {
    return this.#failing + this.#failingUncertain > 0;
  }

  #endOutage(): void {
    clearTimeout(this.#quiet);
    this.#quiet = undefined;
    if (!this.#inOutage) return;
    this.#options.onMissed(this.#failing, this.#failingUncertain);
    this.#failing = 0;
    this.#failingUncertain = 0;
  }

  readonly #flush = (): void => this.flush();
}
