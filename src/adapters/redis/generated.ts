import type { Redis } from 'ioredis';
import { defineScript } from './connection.ts';

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
