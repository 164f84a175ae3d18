import type { DomainEvent, EventBus } from '../core/events.ts';
import type { Topic } from './sources.ts';

/**
 * The console's live feed: Server-Sent Events that tell open pages which topics changed
 * (`payments`, `webhooks`, `bookings`, …), so each refreshes only the regions that show them.
 *
 * Costs nothing while nobody watches: the feed subscribes to the bus when its first client
 * connects and unsubscribes when its last one leaves, so with no console open a published event
 * meets no console code at all (issue 13 "no measurable cost to make bench").
 * Under load it stays small: events are coalesced into at most one message per FLUSH_MS naming
 * the topics touched, never one message per event.
 * The store's availability goes on it too: with Redis away no event may be published for as long
 * as the outage lasts, and a page would go on saying "Live" over figures nobody can refresh (a
 * user test). While a client is connected the feed checks it every STORE_CHECK_MS and sends
 * `store` (`{"available":false}`, then `true` when it is back) on each change; a page refreshes at
 * once, which says the store is away, or clears that.
 * Real timers, not the core's clock: this is about a browser on the wall clock, and a test's
 * manual clock must not hold back what a person watches.
 * @see issue 13 "Live"
 */

/** Changes reach the pages within this (plus the page's own fetch): well under the second the issue asks. */
export const FLUSH_MS = 150;
/** A comment line this often keeps proxies and the browser from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** How often the feed checks the store's availability while a client is connected. */
export const STORE_CHECK_MS = 1000;
/** How long a browser waits before reconnecting a dropped stream. */
const RETRY_MS = 2000;

const STORE_AWAY = 'event: store\ndata: {"available":false}\n\n';
const STORE_BACK = 'event: store\ndata: {"available":true}\n\n';

export interface FeedClient {
  write(chunk: string): void;
  end(): void;
}

export class LiveFeed {
  readonly #bus: EventBus;
  readonly #topicsOf: (event: DomainEvent) => readonly Topic[];
  readonly #storeAvailable: () => boolean;
  readonly #clients = new Set<FeedClient>();
  readonly #pending = new Set<Topic>();
  #unsubscribe: (() => void) | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #storeCheck: NodeJS.Timeout | undefined;
  /** The availability the clients were last told (at their hello, or by `store`). */
  #available = true;

  /** `storeAvailable`: whether the store answers (/readyz's check); always, by default. */
  constructor(bus: EventBus, topicsOf: (event: DomainEvent) => readonly Topic[], storeAvailable: () => boolean = () => true) {
    this.#bus = bus;
    this.#topicsOf = topicsOf;
    this.#storeAvailable = storeAvailable;
  }

  /** Whether the feed is subscribed to the bus (only while a client is connected). */
  get subscribed(): boolean {
    return this.#unsubscribe !== undefined;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Adds a connected client; returns what removes it. */
  add(client: FeedClient): () => void {
    if (this.#unsubscribe === undefined) {
      this.#unsubscribe = this.#bus.subscribe((event) => this.#onEvent(event));
      this.#heartbeat = setInterval(() => this.#send(': ping\n\n'), HEARTBEAT_MS).unref();
      this.#storeCheck = setInterval(() => this.#checkStore(), STORE_CHECK_MS).unref();
      this.#available = this.#storeAvailable();
    }
    this.#clients.add(client);
    client.write(`retry: ${RETRY_MS}\nevent: hello\ndata: {}\n\n`);
    if (!this.#available) client.write(STORE_AWAY);
    return () => this.#remove(client);
  }

  /** Ends every stream (the app is closing). */
  close(): void {
    for (const client of [...this.#clients]) {
      this.#remove(client);
      client.end();
    }
  }

  #remove(client: FeedClient): void {
    if (!this.#clients.delete(client) || this.#clients.size > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    clearInterval(this.#storeCheck);
    clearTimeout(this.#flushTimer);
    this.#heartbeat = undefined;
    this.#storeCheck = undefined;
    this.#flushTimer = undefined;
    this.#pending.clear();
  }

  #checkStore(): void {
    const available = this.#storeAvailable();
    if (available === this.#available) return;
    this.#available = available;
    this.#send(available ? STORE_BACK : STORE_AWAY);
  }

  #onEvent(event: DomainEvent): void {
    for (const topic of this.#topicsOf(event)) this.#pending.add(topic);
    if (this.#pending.size > 0 && this.#flushTimer === undefined) this.#flushTimer = setTimeout(() => this.#flush(), FLUSH_MS).unref();
  }

  #flush(): void {
    this.#flushTimer = undefined;
    const topics = [...this.#pending];
    this.#pending.clear();
    if (topics.length > 0) this.#send(`event: change\ndata: ${JSON.stringify({ topics })}\n\n`);
  }

  #send(chunk: string): void {
    for (const client of this.#clients) client.write(chunk);
  }
}
