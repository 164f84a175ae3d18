import type { Redis } from 'ioredis';
import type { DisabledUrlStore } from '../../core/ports.ts';

/**
 * URLs that answered 410 Gone, shared by every replica: one hash, URL → when it was disabled.
 * Each operation is a single Redis command (HSETNX keeps the first time, HDEL says whether the URL
 * was there), atomic without a script.
 */
export class RedisDisabledUrls implements DisabledUrlStore {
  readonly #client: Redis;
  readonly #key: string;

  constructor(client: Redis, options: { keyPrefix: string }) {
    this.#client = client;
    this.#key = `${options.keyPrefix}disabled-urls`;
  }

  async disable(url: string, at: number): Promise<void> {
    await this.#client.hsetnx(this.#key, url, at);
  }

  async enable(url: string): Promise<boolean> {
    return (await this.#client.hdel(this.#key, url)) === 1;
  }

  async isDisabled(url: string): Promise<boolean> {
    return (await this.#client.hexists(this.#key, url)) === 1;
  }

  async list(): Promise<Array<{ url: string; disabledAt: number }>> {
    const urls = await this.#client.hgetall(this.#key);
    return Object.entries(urls).map(([url, disabledAt]) => ({ url, disabledAt: Number(disabledAt) }));
  }
}
