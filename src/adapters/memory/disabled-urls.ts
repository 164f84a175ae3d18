import type { DisabledUrlStore } from '../../core/ports.ts';

/** URLs that answered 410 Gone, in one process's memory: deliveries to them fail until re-enabled. */
export class MemoryDisabledUrls implements DisabledUrlStore {
  readonly #urls = new Map<string, number>();

  disable(url: string, at: number): Promise<void> {
    if (!this.#urls.has(url)) this.#urls.set(url, at);
    return Promise.resolve();
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
