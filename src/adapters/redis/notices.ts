import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { ListeningTold } from '../../core/ports.ts';

/**
 * Notices that replicas send each other over Redis pub/sub ("this changed, read it again": a
 * namespace reset, a fault rule changed), on one subscribed connection per client for every channel
 * listened on: each namespace has stores of its own (their own channels), and a connection each
 * would be one per namespace (NAMESPACE_LIMIT of them). A notice is a hint, never the only way a change is learnt: one sent
 * while the connection was down is lost, and a Redis user whose ACL has no channels (Redis 7's
 * default for a new user, `resetchannels`) or no `@pubsub` is refused both SUBSCRIBE and PUBLISH;
 * each listener's caller reads the shared state on a timer of its own all the same, and is told
 * `onResubscribed` whenever the connection is subscribed again (notices may have been missed).
 */

/**
 * How a notice's sending ended: `echoed`, come back on this process's subscribed connection;
 * `timed_out`, taken by Redis and not back within ECHO_WAIT_MS; `sent`, taken by Redis (this process
 * does not listen on the channel); `refused`, not taken (an ACL without the channel, Redis away).
 */
export type NoticeSent = 'echoed' | 'timed_out' | 'sent' | 'refused';

/**
 * A listener of a channel, told of its notices and (`ListeningTold`) of Redis refusing or allowing
 * again this replica's SUBSCRIBE (`NOPERM`: an ACL without the channel, or without `@pubsub`; tried
 * again every REFUSED_RETRY_MS, so an ACL mended takes effect without a reconnect; told once until
 * then, not at every reconnect or try) and its PUBLISH (sent again with the next change).
 */
export interface NoticeListener extends ListeningTold {
  /** A notice on the channel, with its message. */
  onNotice: (message: string) => void;
  /** The connection was (re)subscribed: notices sent meanwhile were lost. Also at the first subscription. */
  onResubscribed: () => void;
}

/** How often the channels Redis refused are subscribed again, while they have listeners. */
export const REFUSED_RETRY_MS = 10_000;

/** How refused notices are mended: the Redis user needs `@pubsub` and the channels under the key prefix. */
const NOTICES_ACL = 'give the Redis user @pubsub and the channels under REDIS_KEY_PREFIX (ACL +@pubsub &<REDIS_KEY_PREFIX>*)';

/** What a replica logs of its `notices` (e.g. `fault-rule change notices`) being refused or allowed again, each an effect in a few words. */
export interface NoticesLines {
  notices: string;
  /** How the other replicas' changes arrive here while the subscription is refused. */
  meanwhile: string;
  /** How they arrive once it is allowed again. */
  again: string;
  /** How this replica's changes reach the others while its notices (PUBLISH) are refused. */
  othersMeanwhile: string;
  /** How they reach them once a notice is taken again. */
  othersAgain: string;
}

/**
 * A listener's `ListeningTold` as log lines: a warning, with Redis' answer, the channel and how to
 * mend the ACL, once this replica's subscription to `notices`, or its notice, is refused, and a
 * line at info once it is allowed again.
 */
export function loggedListening(log: Pick<FastifyBaseLogger, 'warn' | 'info'>, fields: Record<string, unknown>, lines: NoticesLines): Required<ListeningTold> {
  const { notices } = lines;
  return {
    onRefused: (reason, channel) =>
      log.warn({ ...fields, channel, redis_error: reason }, `Redis refused this replica's subscription to ${notices}: ${lines.meanwhile}; ${NOTICES_ACL}; it is tried again every ${REFUSED_RETRY_MS / 1000} s`),
    onAllowed: (channel) => log.info({ ...fields, channel }, `Redis lets this replica subscribe to ${notices} now: ${lines.again}`),
    onSendRefused: (reason, channel) =>
      log.warn({ ...fields, channel, redis_error: reason }, `Redis refused this replica's ${notices} (PUBLISH): ${lines.othersMeanwhile}; ${NOTICES_ACL}; the next change sends one again`),
    onSendAllowed: (channel) => log.info({ ...fields, channel }, `Redis takes this replica's ${notices} now: ${lines.othersAgain}`),
  };
}

/**
 * How long a notice's sender waits at most for its own notice to come back on its subscribed
 * connection (`NoticeHub.send`).
 */
const ECHO_WAIT_MS = 100;

class NoticeHub {
  readonly #client: Redis;
  readonly #listeners = new Map<string, Set<NoticeListener>>();
  #subscriber: Redis | undefined;
  /** The channels the current connection is subscribed to (acknowledged). */
  readonly #subscribed = new Set<string>();
  /** The channels whose last SUBSCRIBE Redis refused, their listeners told (`onRefused`). */
  readonly #refused = new Set<string>();
  /** The channels whose last notice (PUBLISH) Redis refused, their listeners told (`onSendRefused`). */
  readonly #sendRefused = new Set<string>();
  /** The next try of the refused channels (REFUSED_RETRY_MS), while there are any. */
  #retry: NodeJS.Timeout | undefined;
  /** Senders waiting for their notice to come back, by channel, in the order they sent. */
  readonly #echoes = new Map<string, Array<{ message: string; done: () => void }>>();

  constructor(client: Redis) {
    this.#client = client;
  }

  listen(channel: string, listener: NoticeListener): () => void {
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
      // A channel added while connected is subscribed now; otherwise at the next 'ready', with the others.
      if (this.#subscriber?.status === 'ready') this.#subscribe(channel);
    }
    listeners.add(listener);
    this.#subscriber ??= this.#connect();
    const own = listeners;
    return () => {
      own.delete(listener);
      if (own.size > 0 || this.#listeners.get(channel) !== own) return;
      this.#listeners.delete(channel);
      this.#refused.delete(channel);
      this.#sendRefused.delete(channel);
      if (this.#listeners.size === 0) {
        clearTimeout(this.#retry);
        this.#retry = undefined;
        this.#subscriber?.disconnect();
        this.#subscriber = undefined;
        this.#subscribed.clear();
      } else if (this.#subscriber?.status === 'ready') {
        this.#subscribed.delete(channel);
        void this.#subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  /**
   * Publishes a notice and, when this process listens on the channel, waits (at most ECHO_WAIT_MS)
   * for it to come back on the subscribed connection: Redis writes a message to every subscriber
   * in one pass, so by then the other replicas' connections have it too, before this replica
   * answers the call that made the change and the client sends its next request to one of them.
   * A replica that handles that request a moment before the notice uses the rules it had: 14 in
   * 2,800 next requests on a busy machine without the wait, 4 in 5,700 with it (this stop's runs).
   */
  async send(channel: string, message: string): Promise<NoticeSent> {
    const listening = this.#subscribed.has(channel);
    const echoed = Promise.withResolvers<'echoed'>();
    const echo = { message, done: () => echoed.resolve('echoed') };
    if (listening) this.#echoes.set(channel, [...(this.#echoes.get(channel) ?? []), echo]);
    const sent = await this.#client.publish(channel, message).then(
      () => true,
      (error: unknown) => {
        this.#sendFailed(channel, error);
        return false;
      },
    );
    if (sent && this.#sendRefused.delete(channel)) for (const listener of this.#listeners.get(channel) ?? []) listener.onSendAllowed?.(channel);
    if (!listening) return sent ? 'sent' : 'refused';
    let timer: NodeJS.Timeout | undefined;
    const ended = sent ? await Promise.race([echoed.promise, new Promise<'timed_out'>((resolve) => (timer = setTimeout(() => resolve('timed_out'), ECHO_WAIT_MS)))]) : 'refused';
    clearTimeout(timer);
    this.#forgetEcho(channel, echo);
    return ended;
  }

  /**
   * A PUBLISH refused by Redis' ACL (`NOPERM`, an answer: Redis away is the store's outage, told by
   * the connection's watch): its listeners told once until one is taken, unless the
   * channel's subscription is refused already, whose warning says how to mend both. Redis drops a
   * subscriber whose channels an ACL change takes away, but not one whose `@pubsub` it takes:
   * that replica stays subscribed and only its PUBLISH tells (rev77b: nothing did until the next reconnect).
   */
  #sendFailed(channel: string, error: unknown): void {
    if (!(error instanceof Error) || error.name !== 'ReplyError' || !error.message.startsWith('NOPERM') || this.#refused.has(channel) || this.#sendRefused.has(channel)) return;
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined) return;
    this.#sendRefused.add(channel);
    for (const listener of listeners) listener.onSendRefused?.(error.message, channel);
  }

  #forgetEcho(channel: string, echo: { message: string; done: () => void }): void {
    const waiting = this.#echoes.get(channel)?.filter((e) => e !== echo) ?? [];
    if (waiting.length === 0) this.#echoes.delete(channel);
    else this.#echoes.set(channel, waiting);
  }

  #connect(): Redis {
    // Subscribed at each connection by this code, not by ioredis' autoResubscribe, which leaves a
    // refused SUBSCRIBE (NOPERM) as an unhandled rejection, and the process exits.
    const subscriber = this.#client.duplicate({ autoResubscribe: false });
    // Its failures are the reconnects' to handle (the main connection's watch reports outages).
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.#listeners.get(channel) ?? []) listener.onNotice(message);
      // The first sender still waiting for this very message, told after the listeners (this
      // replica's own compiled rules are marked first), and taken off the list: each copy releases
      // one sender (left on it, every copy of one read found the same one, and the other senders of
      // a namespace's changes made at once waited ECHO_WAIT_MS: rev76e, 27 of 30 concurrent creates).
      const waiting = this.#echoes.get(channel);
      const at = waiting?.findIndex((echo) => echo.message === message) ?? -1;
      if (waiting !== undefined && at >= 0) waiting.splice(at, 1)[0]?.done();
    });
    subscriber.on('ready', () => {
      for (const channel of this.#listeners.keys()) this.#subscribe(channel);
    });
    // Not subscribed from now until the next 'ready' has subscribed again.
    subscriber.on('close', () => {
      if (this.#subscriber === subscriber) this.#subscribed.clear();
    });
    return subscriber;
  }

  /**
   * Subscribes `channel` with a SUBSCRIBE of its own: Redis refuses a whole SUBSCRIBE when an ACL
   * forbids any one of its channels, and one channel refused must not cost the others (rev76f: a
   * user allowed the namespace resets' channel alone lost their notices too). Once it is done, its
   * listeners are told that notices may have been missed.
   */
  #subscribe(channel: string): void {
    const subscriber = this.#subscriber;
    if (subscriber === undefined) return;
    subscriber.subscribe(channel).then(
      () => {
        // Its last listener left meanwhile (while the connection was being made again, when no
        // UNSUBSCRIBE could go, and ioredis sent the SUBSCRIBE again): unsubscribed now, or it
        // stayed subscribed for nothing (rev76e).
        if (!this.#listeners.has(channel)) {
          if (this.#subscriber === subscriber) void subscriber.unsubscribe(channel).catch(() => undefined);
          return;
        }
        // Answered on a connection no longer in use (closed with its last listener, the channel
        // listened on again since, on a new one): that one's own SUBSCRIBE tells (rev77b: its
        // listener was told twice, once before it was subscribed).
        if (this.#subscriber !== subscriber) return;
        this.#subscribed.add(channel);
        const allowed = this.#refused.delete(channel);
        for (const listener of this.#listeners.get(channel) ?? []) {
          if (allowed) listener.onAllowed?.(channel);
          listener.onResubscribed();
        }
      },
      (error: unknown) => {
        // Refused by Redis (an answer, not the connection lost: that one is subscribed again at the
        // next 'ready'), for a channel still listened on, on the connection in use (rev77a: one
        // whose last listener had left was kept as refused, and never told when listened on again).
        if (!(error instanceof Error) || error.name !== 'ReplyError' || !this.#listeners.has(channel) || this.#subscriber !== subscriber) return;
        this.#retryRefused();
        if (this.#refused.has(channel)) return;
        this.#refused.add(channel);
        for (const listener of this.#listeners.get(channel) ?? []) listener.onRefused?.(error.message, channel);
      },
    );
  }

  /**
   * Subscribes the refused channels again REFUSED_RETRY_MS from now (once for all of them): an ACL
   * that allows them since takes effect without a reconnect (rev77a: notices stayed off until one).
   * A connection not ready then subscribes every channel at its 'ready'.
   */
  #retryRefused(): void {
    if (this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#subscriber?.status !== 'ready') return;
      for (const channel of this.#refused) if (this.#listeners.has(channel)) this.#subscribe(channel);
    }, REFUSED_RETRY_MS).unref();
  }

}

const hubs = new WeakMap<Redis, NoticeHub>();

/** Listens for notices on `channel` over `client`'s one subscribed connection; answers how to stop (the connection closes with its last listener). */
export function listenForNotices(client: Redis, channel: string, listener: NoticeListener): () => void {
  let hub = hubs.get(client);
  if (hub === undefined) {
    hub = new NoticeHub(client);
    hubs.set(client, hub);
  }
  return hub.listen(channel, listener);
}

/**
 * Sends a notice; never fails (a notice is a hint: see above). Resolves once Redis has refused it,
 * or has taken it and, when this process listens on the channel, sent it back (`NoticeHub.send`),
 * with how it ended.
 */
export async function sendNotice(client: Redis, channel: string, message: string): Promise<NoticeSent> {
  const hub = hubs.get(client);
  if (hub !== undefined) return hub.send(channel, message);
  return client.publish(channel, message).then(
    () => 'sent' as const,
    () => 'refused' as const,
  );
}
