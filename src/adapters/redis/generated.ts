import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { defineScript } from './connection.ts';
import { everyIntervalOnce } from './periodic.ts';

/**
 * Values a process draws at random when they are not configured (the webhook secret without
 * WEBHOOK_SECRET, the console's session key without CONSOLE_TOKEN), shared on Redis by every
 * process of one key prefix: the first to start stores its own, the others (replicas, workers,
 * restarts while Redis keeps its data) take that one, so a receiver can verify every replica's
 * webhooks with one secret and a console session is good on each.
 */
const GET_OR_SET = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

export type GeneratedName = 'webhook-secret' | 'console-session-key';

/** Where the value `name` is kept on Redis (also named in logs and /readyz). */
export function generatedKey(keyPrefix: string, name: GeneratedName): string {
  return `${keyPrefix}generated:${name}`;
}

/** The value stored under `generatedKey`, or `candidate`, stored there first when there is none (one atomic script). */
export async function sharedGenerated(client: Redis, keyPrefix: string, name: GeneratedName, candidate: string): Promise<string> {
  const script = defineScript(client, 'paysimGeneratedGetOrSet', GET_OR_SET);
  return String(await script([generatedKey(keyPrefix, name)], [candidate]));
}

/** How often a process makes sure its generated values are still on Redis (`keepGenerated`). */
export const GENERATED_CHECK_MS = 5000;

/** What each generated value is, and what a replica with another one breaks, for the warnings. */
const WHAT: Record<GeneratedName, { what: string; split: string }> = {
  'webhook-secret': { what: 'webhook secret', split: 'replicas sign webhooks with different secrets until they restart; set WEBHOOK_SECRET' },
  'console-session-key': { what: 'console session key', split: "a console session made on one replica is refused by another until they restart; set CONSOLE_TOKEN" },
};

/**
 * Keeps this process' generated values on Redis: every GENERATED_CHECK_MS, each is stored again
 * where it is missing (`SET … NX GET`, one command), so that a Redis that lost its data (FLUSHALL,
 * a restart without persistence) gets the running replicas' value back before a replica started
 * since draws its own; warned of once per loss. A value found that is not this process' (a replica
 * started meanwhile drew its own) is warned of once: the split stays until the replicas restart.
 * Failed checks (Redis away) are not reported. Answers the function that stops it. `checkMs`:
 * GENERATED_CHECK_MS, which tests shorten.
 */
export function keepGenerated(client: Redis, keyPrefix: string, values: ReadonlyMap<GeneratedName, string>, log: FastifyBaseLogger, checkMs = GENERATED_CHECK_MS): () => void {
  const split = new Set<GeneratedName>();
  const check = async (): Promise<void> => {
    for (const [name, value] of values) {
      const key = generatedKey(keyPrefix, name);
      const found = (await client.call('SET', key, value, 'NX', 'GET')) as string | null;
      if (found === null) {
        log.warn({ key }, `the generated ${WHAT[name].what} was missing from Redis (${key}: Redis lost its data?): this process stored its own again, which replicas started from now on take`);
        split.delete(name);
      } else if (found !== value && !split.has(name)) {
        split.add(name);
        log.warn({ key }, `the generated ${WHAT[name].what} on Redis (${key}) is not this process' (Redis lost it, and another process stored its own): ${WHAT[name].split}`);
      } else if (found === value) split.delete(name);
    }
  };
  return everyIntervalOnce(checkMs, check);
}
