import type { Redis } from 'ioredis';
import type { DisabledUrlStore } from '../../core/ports.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';

/**
 * A disable and an enable keep their replies under their call's token (lua.ts `keepingReply`, in
 * `<prefix>disabled-urls:kept:<token>`): sent again after a lost reply (ioredis sends every
 * unanswered command again after a reconnect), a disable would undo an operator's enable made
 * meanwhile, and an enable a 410 that came since.
 */
const DISABLE = keepingReply("KEYS[1] .. ':kept:'", `return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])`);
const ENABLE = keepingReply("KEYS[1] .. ':kept:'", `return redis.call('HDEL', KEYS[1], ARGV[1])`);

/**
 * URLs that answered 410 Gone, shared by every replica: one hash, URL → when it was disabled.
 * A disable keeps the first time (HSETNX) and an enable says whether the URL was there (HDEL),
 * each in a script that keeps its reply (above).
 */
export class RedisDisabledUrls implements DisabledUrlStore {
  readonly #client: Redis;
  readonly #key: string;
  readonly #disable: Script;
  readonly #enable: Script;

  constructor(client: Redis, options: { keyPrefix: string }) {
    this.#client = client;
    this.#key = `${options.keyPrefix}disabled-urls`;
    this.#disable = defineScript(client, 'paysimUrlsDisable', DISABLE);
    this.#enable = defineScript(client, 'paysimUrlsEnable', ENABLE);
  }

  async disable(url: string, at: number): Promise<void> {
    await this.#disable([this.#key], [url, at, callToken()]);
  }

  async enable(url: string): Promise<boolean> {
    return (await this.#enable([this.#key], [url, callToken()])) === 1;
  }

  async isDisabled(url: string): Promise<boolean> {
    return (await this.#client.hexists(this.#key, url)) === 1;
  }

  async list(): Promise<Array<{ url: string; disabledAt: number }>> {
    const urls = await this.#client.hgetall(this.#key);
    return Object.entries(urls).map(([url, disabledAt]) => ({ url, disabledAt: Number(disabledAt) }));
  }
}
