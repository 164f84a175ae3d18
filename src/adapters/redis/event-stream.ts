import type { Redis } from 'ioredis';
import type { DomainEvent, EventBus } from '../../core/events.ts';

export interface RedisEventStreamOptions {
  /** Prefix of every key this stream writes (REDIS_KEY_PREFIX): the stream is `<prefix>events`. */
  keyPrefix: string;
  /** Entries kept, about (EVENTS_STREAM_MAX_LEN): `MAXLEN ~` trims whole nodes, so up to a node more stay. */
  maxLen: number;
  /** Told when appending starts failing (once per outage) and how many events were missed when it works again. */
  onError: (error: unknown, context: string) => void;
}

/**
 * Every domain event of the bus, also appended to a capped Redis Stream (`<prefix>events`) that
 * other systems read with consumer groups of their own: the role source document 002 gives Kafka.
 * One XADD per event, in the order the bus publishes them (the client pipelines commands in
 * order), never awaited by the publisher. An entry has the fields `id`, `type`, `occurred_at`
 * (ISO 8601 UTC with milliseconds) and `data` (the event as the bus carries it, JSON). The stream
 * is an outbound copy, not a store of record: events published while Redis is unreachable are
 * not in it (counted in `missed`, and said once it works again).
 * @see issue 14 "Outbound event stream"; README "The outbound event stream"
 */
export class RedisEventStream {
  readonly #client: Redis;
  readonly #options: RedisEventStreamOptions;
  readonly #key: string;
  #missed = 0;
  #failing = 0;

  constructor(client: Redis, options: RedisEventStreamOptions) {
    this.#client = client;
    this.#options = options;
    this.#key = `${options.keyPrefix}events`;
  }

  get key(): string {
    return this.#key;
  }

  /** Events that could not be appended (Redis unreachable), since start. */
  get missed(): number {
    return this.#missed;
  }

  /** Appends every event `bus` publishes from now on; returns the unsubscribe. */
  attach(bus: EventBus): () => void {
    return bus.subscribe((event) => this.append(event));
  }

  append(event: DomainEvent): void {
    const fields = ['id', event.id, 'type', event.type, 'occurred_at', new Date(event.occurredAt).toISOString(), 'data', JSON.stringify(event)];
    this.#client.xadd(this.#key, 'MAXLEN', '~', this.#options.maxLen, '*', ...fields).then(
      () => {
        if (this.#failing === 0) return;
        this.#options.onError(new Error(`${this.#failing} event(s) were not appended while Redis was unreachable`), 'appending to the event stream');
        this.#failing = 0;
      },
      (error: unknown) => {
        this.#missed++;
        if (this.#failing++ === 0) this.#options.onError(error, 'appending to the event stream');
      },
    );
  }
}
