import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { markReplica, replicasKey } from '../../src/adapters/redis/replicas.ts';
import { withRedisServer } from '../helpers/redis.ts';

/*
 * The replicas' marks of life (adapters/redis/replicas.ts), which a drain asks to learn whether it
 * may leave its shared work to others: counted while renewed, gone at a leave, lapsed when no
 * longer renewed (a replica killed), set again after Redis lost them.
 */
withRedisServer('replica marks on Redis', (server) => {
  const fast = { beatMs: 50, markMs: 200 };

  it('a leave takes the mark away and counts the others alive; two leaves at once never both count the other', async () => {
    const prefix = server().newPrefix();
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => markReplica(server().client, prefix, { ...fast, id: `r${n}` })));
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual(['r1', 'r2', 'r3']);
    expect(await a!.leave()).toBe(2);
    const counts = await Promise.all([b!.leave(), c!.leave()]);
    expect(counts.sort()).toEqual([0, 1]);
    expect(await server().client.exists(replicasKey(prefix))).toBe(0);
  });

  it('a mark no longer renewed (its replica killed) lapses after markMs and is not counted; one renewed stays', async () => {
    const prefix = server().newPrefix();
    const killed = await markReplica(server().client, prefix, { ...fast, id: 'killed' });
    const alive = await markReplica(server().client, prefix, { ...fast, id: 'alive' });
    killed.stop();
    await sleep(fast.markMs + 150);
    const leaving = await markReplica(server().client, prefix, { ...fast, id: 'leaving' });
    expect(await leaving.leave()).toBe(1);
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual(['alive']);
    alive.stop();
  });

  it('a mark Redis lost (FLUSHDB) is set again at the next beat', async () => {
    const prefix = server().newPrefix();
    const mark = await markReplica(server().client, prefix, { ...fast, id: 'back' });
    await server().client.del(replicasKey(prefix));
    await sleep(fast.beatMs * 3);
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual(['back']);
    mark.stop();
  });
});
