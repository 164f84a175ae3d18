import type { Redis } from 'ioredis';

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

export interface NoticeListener {
  /** A notice on the channel, with its message. */
  onNotice: (message: string) => void;
  /** The connection was (re)subscribed: notices sent meanwhile were lost. Also at the first subscription. */
  onResubscribed: () => void;
}

class NoticeHub {
  readonly #client: Redis;
  readonly #listeners = new Map<string, Set<NoticeListener>>();
  #subscriber: Redis | undefined;

  constructor(client: Redis) {
    this.#client = client;
  }

  listen(channel: string, listener: NoticeListener): () => void {
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
      // A channel added while connected is subscribed now; otherwise at the next 'ready', with the others.
      if (this.#subscriber?.status === 'ready') this.#subscribe([channel]);
    }
    listeners.add(listener);
    this.#subscriber ??= this.#connect();
    const own = listeners;
    return () => {
      own.delete(listener);
      if (own.size > 0 || this.#listeners.get(channel) !== own) return;
      this.#listeners.delete(channel);
      if (this.#listeners.size === 0) {
        this.#subscriber?.disconnect();
        this.#subscriber = undefined;
      } else if (this.#subscriber?.status === 'ready') {
        void this.#subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  #connect(): Redis {
    // Subscribed at each connection by this code, not by ioredis' autoResubscribe, which leaves a
    // refused SUBSCRIBE (NOPERM) as an unhandled rejection, and the process exits.
    const subscriber = this.#client.duplicate({ autoResubscribe: false });
    // Its failures are the reconnects' to handle (the main connection's watch reports outages).
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.#listeners.get(channel) ?? []) listener.onNotice(message);
    });
    subscriber.on('ready', () => this.#subscribe([...this.#listeners.keys()]));
    return subscriber;
  }

  /** Subscribes `channels`; once that is done, their listeners are told that notices may have been missed. */
  #subscribe(channels: string[]): void {
    const subscriber = this.#subscriber;
    if (subscriber === undefined || channels.length === 0) return;
    subscriber.subscribe(...channels).then(
      () => {
        for (const channel of channels) for (const listener of this.#listeners.get(channel) ?? []) listener.onResubscribed();
      },
      () => undefined,
    );
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

/** Sends a notice; never fails (a notice is a hint: see above), and resolves once Redis has taken it or refused it. */
export async function sendNotice(client: Redis, channel: string, message: string): Promise<void> {
  await client.publish(channel, message).catch(() => undefined);
}
