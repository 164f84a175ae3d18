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
 * Real timers, not the core's clock: this is about a browser on the wall clock, and a test's
 * manual clock must not hold back what a person watches.
 * @see issue 13 "Live"
 */

/** Changes reach the pages within this (plus the page's own fetch): well under the second the issue asks. */
export const FLUSH_MS = 150;
/** A comment line this often keeps proxies and the browser from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** How long a browser waits before reconnecting a dropped stream. */
const RETRY_MS = 2000;

export interface FeedClient {
  write(chunk: string): void;
  end(): void;
}

export class LiveFeed {
  readonly #bus: EventBus;
  readonly #topicsOf: (event: DomainEvent) => readonly Topic[];
  readonly #clients = new Set<FeedClient>();
  readonly #pending = new Set<Topic>();
  #unsubscribe: (() => void) | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(bus: EventBus, topicsOf: (event: DomainEvent) => readonly Topic[]) {
    this.#bus = bus;
    this.#topicsOf = topicsOf;
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
    this.#clients.add(client);
    client.write(`retry: ${RETRY_MS}\nevent: hello\ndata: {}\n\n`);
    if (this.#unsubscribe === undefined) {
      this.#unsubscribe = this.#bus.subscribe((event) => this.#onEvent(event));
      this.#heartbeat = setInterval(() => this.#send(': ping\n\n'), HEARTBEAT_MS).unref();
    }
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
    clearTimeout(this.#flushTimer);
    this.#heartbeat = undefined;
    this.#flushTimer = undefined;
    this.#pending.clear();
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
