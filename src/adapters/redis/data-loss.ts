import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { everyIntervalOnce } from './periodic.ts';

/**
 * Tells when the Redis under a deployment lost its data (FLUSHALL, FLUSHDB, a restart without
 * persistence, a key evicted): every process of a key prefix keeps one mark there, `<prefix>meta:epoch`,
 * a random value the first to start stores and the others take. Every DATA_LOSS_CHECK_MS each
 * process stores a new one where the mark is missing (`SET … NX GET`, one command) and warns, and
 * a process that finds another value than the one it knew (another saw the loss first) warns too:
 * each replica says so once per loss, and counts it (`redis_data_losses_total`). Before 2026-12-03
 * nothing said so: intents, bookings and due work were simply gone, and their reads answered 404.
 * Failed checks (Redis away) are not reported: the outage is, elsewhere.
 */

/** How often a process looks at the mark. */
export const DATA_LOSS_CHECK_MS = 5000;

/** The mark's key under a prefix. */
export function epochKey(keyPrefix: string): string {
  return `${keyPrefix}meta:epoch`;
}

export interface DataLossWatch {
  /** Losses this process saw since it started. */
  readonly losses: number;
  /** Stops the checks. */
  stop(): void;
}

function newEpoch(): string {
  return randomBytes(12).toString('base64url');
}

/** Stores the mark (or takes the one there), then checks it every `checkMs` (DATA_LOSS_CHECK_MS; tests shorten it). */
export async function watchDataLoss(client: Redis, keyPrefix: string, log: FastifyBaseLogger, checkMs = DATA_LOSS_CHECK_MS): Promise<DataLossWatch> {
  const key = epochKey(keyPrefix);
  const first = newEpoch();
  let known = ((await client.call('SET', key, first, 'NX', 'GET')) as string | null) ?? first;
  let losses = 0;
  const lost = (how: string): void => {
    losses++;
    log.warn(
      { key, losses },
      `Redis lost paysim's data (${how}: FLUSHALL or FLUSHDB, a restart without persistence, or eviction): the intents, bookings, payments, due work and webhook deliveries made before are gone, and their reads answer 404; keep Redis' data with an AOF (appendonly yes) and maxmemory-policy noeviction (README: "Redis memory")`,
    );
  };
  const check = async (): Promise<void> => {
    const mine = newEpoch();
    const found = (await client.call('SET', key, mine, 'NX', 'GET')) as string | null;
    if (found === null) {
      known = mine;
      lost(`${key} was missing`);
    } else if (found !== known) {
      known = found;
      lost(`${key} was made anew by another process`);
    }
  };
  const stop = everyIntervalOnce(checkMs, check);
  return {
    get losses() {
      return losses;
    },
    stop,
  };
}
