import type { DisabledUrlStore } from '../../core/ports.ts';

export interface MemoryDisabledUrlsOptions {
  /** WEBHOOK_MAX_DISABLED_URLS: URLs held at most; a new one past it re-enables the URL disabled first. */
  maxUrls: number;
}

/**
 * URLs that answered 410 Gone, in one process's memory: deliveries to them fail until re-enabled.
 * Bounded, since an `/api/v2` callback URL names its transaction, so each payment may add one: past
 * `maxUrls` the URL disabled first is re-enabled (deliveries to it are attempted again).
 */
export class MemoryDisabledUrls implements DisabledUrlStore {
  /** URL → when it was disabled, in the order they were disabled (a Map keeps insertion order). */
  readonly #urls = new Map<string, number>();
  readonly #maxUrls: number;

  constructor(options: MemoryDisabledUrlsOptions) {
    this.#maxUrls = options.maxUrls;
  }

  disable(url: string, at: number): Promise<string[]> {
    const reenabled: string[] = [];
    if (!this.#urls.has(url)) {
      this.#urls.set(url, at);
      for (const first of this.#urls.keys()) {
        if (this.#urls.size <= this.#maxUrls) break;
        this.#urls.delete(first);
        reenabled.push(first);
      }
    }
    return Promise.resolve(reenabled);
  }

  enable(url: string): Promise<boolean> {
    return Promise.resolve(this.#urls.delete(url));
  }

  isDisabled(url: string): Promise<boolean> {
    return Promise.resolve(this.#urls.has(url));
  }

  list(): Promise<Array<{ url: string; disabledAt: number }>> {
    return Promise.resolve([...this.#urls].map(([url, disabledAt]) => ({ url, disabledAt })));
  }
}
