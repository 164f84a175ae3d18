import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { defineScript, type Script } from './connection.ts';
import { everyIntervalOnce } from './periodic.ts';

/**
 * The replicas serving one key prefix of a Redis: each keeps a mark of life in `<prefix>replicas`
 * (a sorted set: its id, scored with the time its mark lapses), renewed every REPLICA_BEAT_MS of
 * real time. A replica that begins its drain (SIGTERM) takes its mark away and counts the others
 * alive in the same script run: with one or more, its drain leaves its shared work (due decisions,
 * the delivery stream) to them instead of waiting for it (`Lifecycle.handOffWhen`). Two replicas
 * stopped at once never both leave theirs to the other: the second script run sees the first
 * one's mark gone. A replica killed without a drain stays counted until its mark lapses
 * (REPLICA_MARK_MS): a drain then may leave its work to a dead replica, which the next start does
 * (the shared scheduler's jobs and the stream's entries wait for whichever replica runs). Times are
 * the callers' clocks: replicas' clocks must agree to well within a second, as for the leases.
 */

/** How often a replica renews its mark. */
export const REPLICA_BEAT_MS = 1000;
/** How long a mark lasts unless renewed: a few beats, so that a late beat (a busy event loop) does not make a live replica look dead. */
export const REPLICA_MARK_MS = 3000;

/** Takes this replica's mark away and answers how many others are alive (their marks not lapsed). */
const LEAVE = `
-- KEYS: the set; ARGV: this replica's id, now
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return redis.call('ZCARD', KEYS[1])
`;

/** Renews this replica's mark, drops lapsed ones (of replicas that died), and answers how many marks there are, its own included. */
const BEAT = `
-- KEYS: the set; ARGV: this replica's id, now, mark's end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return redis.call('ZCARD', KEYS[1])
`;

export interface ReplicaMarks {
  /** This replica's id in the set. */
  readonly id: string;
  /** Stops renewing the mark, takes it away, and answers the number of other replicas alive. */
  leave(): Promise<number>;
  /** Stops renewing the mark for good (it lapses unless `leave` takes it away). */
  stop(): void;
  /** How many other replicas were alive at the last beat (at most REPLICA_BEAT_MS ago). */
  others(): number;
}

export interface ReplicaMarkOptions {
  /** Default: host, process id and a random suffix. */
  id?: string | undefined;
  /** Tests shorten these. */
  beatMs?: number | undefined;
  markMs?: number | undefined;
}

export function replicasKey(keyPrefix: string): string {
  return `${keyPrefix}replicas`;
}

/** Sets this replica's mark (once at once, then every `beatMs`). */
export async function markReplica(client: Redis, keyPrefix: string, options: ReplicaMarkOptions = {}): Promise<ReplicaMarks> {
  const id = options.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const markMs = options.markMs ?? REPLICA_MARK_MS;
  const keys = [replicasKey(keyPrefix)];
  const beat: Script = defineScript(client, 'paysimReplicaBeat', BEAT);
  const leave: Script = defineScript(client, 'paysimReplicaLeave', LEAVE);
  let left = false;
  /** The beat in flight: a leave waits for it (a beat sent again after NOSCRIPT would land after the leave and set the mark again). */
  let beating: Promise<unknown> = Promise.resolve();
  /** Marks at the last beat, this one's included. */
  let alive = 1;
  const renew = async (): Promise<void> => {
    if (left) return;
    const now = Date.now();
    beating = beat(keys, [id, now, now + markMs]);
    alive = Number(await beating);
  };
  await renew();
  const stopBeating = everyIntervalOnce(options.beatMs ?? REPLICA_BEAT_MS, renew);
  const stop = (): void => {
    left = true;
    stopBeating();
  };
  return {
    id,
    async leave() {
      stop();
      await beating.catch(() => undefined);
      return Number(await leave(keys, [id, Date.now()]));
    },
    stop,
    others: () => Math.max(0, alive - 1),
  };
}

/** The replicas alive (their marks not lapsed), for a process that keeps no mark of its own (its scheduler does not poll). */
export async function othersAlive(client: Redis, keyPrefix: string): Promise<number> {
  return client.zcount(replicasKey(keyPrefix), Date.now(), '+inf');
}
