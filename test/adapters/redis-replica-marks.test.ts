import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it, vi } from 'vitest';
import { markReplica, replicasKey } from '../../src/adapters/redis/replicas.ts';
import { withRedisServer } from '../helpers/redis.ts';

/*
 * The replicas' marks of life (adapters/redis/replicas.ts), which a drain asks to learn whether it
 * may leave its shared work to others: counted while renewed, gone at a leave, lapsed when no
 * longer renewed (a replica killed), set again after Redis lost them.
 */
withRedisServer('replica marks on Redis', (server) => {
  // A mark lasts 12 beats: a stall of a busy machine does not make a live replica look dead here.
  const fast = { beatMs: 50, markMs: 600 };

  it('a leave takes the mark away and counts the others alive; two leaves at once never both count the other', async () => {
    const prefix = server().newPrefix();
    // Each on a connection of its own, as replicas are.
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => markReplica(server().connect(), prefix, { ...fast, id: `r${n}` })));
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual(['r1', 'r2', 'r3']);
    expect(await a!.leave()).toBe(2);
    const counts = await Promise.all([b!.leave(), c!.leave()]);
    expect(counts.sort()).toEqual([0, 1]);
    expect(await server().client.exists(replicasKey(prefix))).toBe(0);
  });

  it('each counts the others alive at its beats (others()): a new replica within a beat, one that left or lapsed no longer', async () => {
    const prefix = server().newPrefix();
    const a = await markReplica(server().connect(), prefix, { ...fast, id: 'a' });
    expect(a.others()).toBe(0);
    const b = await markReplica(server().connect(), prefix, { ...fast, id: 'b' });
    expect(b.others()).toBe(1);
    await vi.waitFor(() => expect(a.others()).toBe(1), { timeout: 2_000, interval: 20 });
    const killed = await markReplica(server().connect(), prefix, { ...fast, id: 'killed' });
    await vi.waitFor(() => expect([a.others(), b.others(), killed.others()]).toEqual([2, 2, 2]), { timeout: 2_000, interval: 20 });
    killed.stop();
    await b.leave();
    // b's leave at once, the killed one's mark once it lapses (markMs).
    await vi.waitFor(() => expect(a.others()).toBe(0), { timeout: fast.markMs + 2_000, interval: 20 });
    await a.leave();
  });

  it('a mark no longer renewed (its replica killed) lapses after markMs and is not counted; one renewed stays', async () => {
    const prefix = server().newPrefix();
    const killed = await markReplica(server().client, prefix, { ...fast, id: 'killed' });
    const alive = await markReplica(server().client, prefix, { ...fast, id: 'alive' });
    killed.stop();
    await sleep(fast.markMs + 300);
    const leaving = await markReplica(server().client, prefix, { ...fast, id: 'leaving' });
    expect(await leaving.leave()).toBe(1);
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual(['alive']);
    alive.stop();
  });

  it('a leave waits for the beat in flight: a beat whose reply comes after the leave began (sent again after NOSCRIPT) does not set the mark again after it (a code review)', async () => {
    const prefix = server().newPrefix();
    const client = server().connect();
    const send = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let beatHeld = false;
    const mark = await markReplica(client, prefix, { beatMs: 20, markMs: 600, id: 'leaving' });
    // The next beat is held in flight (its script sent, no reply yet); then Redis has forgotten the script (NOSCRIPT: EVAL follows).
    const spy = vi.spyOn(client, 'evalsha').mockImplementation((async (...args: unknown[]) => {
      if (args.length === 6 && !beatHeld) {
        beatHeld = true;
        await held;
        await server().client.script('FLUSH');
      }
      return send(...args);
    }) as never);
    await vi.waitFor(() => expect(beatHeld).toBe(true));
    const leaving = mark.leave();
    await sleep(50);
    release?.();
    expect(await leaving).toBe(0);
    await sleep(100);
    spy.mockRestore();
    expect(await server().client.zrange(replicasKey(prefix), '0', '-1')).toEqual([]);
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
