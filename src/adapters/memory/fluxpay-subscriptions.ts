import type { CreateOutcome, FluxPaySubscriptionStore, WebhookSubscription } from '../../core/fluxpay/ports.ts';

export interface MemoryFluxPaySubscriptionOptions {
  maxSubscriptions: number;
}

/** FluxPay's webhook subscriptions in one process's memory, in creation order; bounded (a full store refuses, nothing is evicted). */
export class MemoryFluxPaySubscriptionStore implements FluxPaySubscriptionStore {
  readonly #subscriptions = new Map<string, WebhookSubscription>();
  readonly #options: MemoryFluxPaySubscriptionOptions;

  constructor(options: MemoryFluxPaySubscriptionOptions) {
    this.#options = options;
  }

  add(subscription: WebhookSubscription): Promise<CreateOutcome<WebhookSubscription>> {
    // An id already there is written again, never refused at the bound (as the Redis store: there, an add run twice).
    if (this.#subscriptions.size >= this.#options.maxSubscriptions && !this.#subscriptions.has(subscription.subscriptionId)) return Promise.resolve({ kind: 'full' });
    const stored = copy(subscription);
    this.#subscriptions.set(stored.subscriptionId, stored);
    return Promise.resolve({ kind: 'created', record: copy(stored) });
  }

  get(subscriptionId: string): Promise<WebhookSubscription | undefined> {
    const found = this.#subscriptions.get(subscriptionId);
    return Promise.resolve(found === undefined ? undefined : copy(found));
  }

  list(): Promise<WebhookSubscription[]> {
    return Promise.resolve([...this.#subscriptions.values()].map(copy));
  }

  remove(subscriptionId: string): Promise<WebhookSubscription | undefined> {
    const found = this.#subscriptions.get(subscriptionId);
    this.#subscriptions.delete(subscriptionId);
    return Promise.resolve(found === undefined ? undefined : copy(found));
  }
}

function copy(subscription: WebhookSubscription): WebhookSubscription {
  return { ...subscription, events: Object.freeze([...subscription.events]) };
}
